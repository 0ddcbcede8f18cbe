"""Stand-ins for external tools on PATH: to make timing certain, or (``odd_output_tool``)
to print output of a shape vpod does not expect, which drives the "bug in vpod" path;
never to fake a result vpod would accept."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable


def _install(folder: Path, name: str, script: Callable[[str], str]) -> Path:
    """Write ``folder/name``, an executable whose text is ``script(path of the real name)``."""
    real = shutil.which(name)
    assert real, f"{name} not on PATH"
    folder.mkdir(parents=True, exist_ok=True)
    stand_in = folder / name
    stand_in.write_text(script(real))
    stand_in.chmod(0o755)
    return folder


def slow_tool(folder: Path, name: str, seconds: float, *, only_with: str | None = None) -> Path:
    """Put a ``name`` in ``folder`` that sleeps ``seconds``, then execs the real ``name``;
    with ``only_with``, it sleeps only when an argument is that text (``"--output"``: a
    mkvmerge remux, not ``mkvmerge -J``).

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    # One process (sleep, then exec), so killing it kills the whole stand-in.
    when = "True" if only_with is None else f"{only_with!r} in sys.argv[1:]"
    return _install(folder, name, lambda real: (
        f"#!{sys.executable}\nimport os, sys, time\nif {when}:\n    time.sleep({seconds})\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    ))


def hanging_tool(folder: Path, name: str, marker: str, pidfile: Path) -> Path:
    """Put a ``name`` in ``folder`` that, when an argument contains ``marker``, writes its
    pid to ``pidfile`` and then never ends (one process: it execs ``sleep``), and execs
    the real ``name`` otherwise: a tool spinning on a malformed file, as far as vpod can
    tell.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: (
        f'#!/bin/sh\ncase "$*" in *{marker}*) echo $$ > "{pidfile}.tmp"; mv "{pidfile}.tmp" "{pidfile}"; '
        f'exec sleep 3600;; esac\nexec "{real}" "$@"\n'
    ))


def stubborn_tool(folder: Path, name: str, marker: str, pidfile: Path) -> Path:
    """:func:`hanging_tool` that also ignores SIGTERM (the disposition survives its exec of
    ``sleep``): only SIGKILL ends it, and it makes no progress (no CPU, no I/O).

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: (
        f'#!/bin/sh\ncase "$*" in *{marker}*) trap "" TERM; echo $$ > "{pidfile}.tmp"; mv "{pidfile}.tmp" "{pidfile}"; '
        f'exec sleep 3600;; esac\nexec "{real}" "$@"\n'
    ))


def busy_tool(folder: Path, name: str, seconds: float, marker: str) -> Path:
    """Put a ``name`` in ``folder`` that, when an argument contains ``marker``, spins on
    the CPU for ``seconds`` (a slow tool that makes progress), then execs the real ``name``.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: (
        f'#!/bin/sh\ncase "$*" in *{marker}*) end=$(( $(date +%s) + {int(seconds)} )); '
        f'while [ "$(date +%s)" -lt "$end" ]; do :; done;; esac\nexec "{real}" "$@"\n'
    ))


def logging_tool(folder: Path, name: str, log: Path) -> Path:
    """Put a ``name`` in ``folder`` that appends its arguments to ``log``, then execs the
    real ``name``: the test can tell whether vpod ran the tool at all.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexec "{real}" "$@"\n')


def process_ended(pid: int, timeout: float = 10.0) -> bool:
    """Wait up to ``timeout`` seconds for process ``pid`` to end; True when it did (gone
    from ``/proc``, or a zombie: dead, waiting to be reaped by whoever adopted it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def kill_if_running(pid: int) -> None:
    """Test clean-up: SIGKILL ``pid`` unless it is gone already."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def path_with(folder: Path) -> str:
    """``PATH`` with ``folder`` first."""
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def breakable_tool(folder: Path, name: str, flag: Path) -> Path:
    """Put a ``name`` in ``folder`` that fails (exit 2, an error on stderr) while ``flag``
    exists and execs the real ``name`` otherwise: a cause an operator can fix.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: (
        f'#!/bin/sh\nif [ -e "{flag}" ]; then echo "Error: simulated failure ({flag} exists)" >&2; exit 2; fi\n'
        f'exec "{real}" "$@"\n'
    ))


def tool_failing_with(folder: Path, name: str, argument: str) -> Path:
    """Put a ``name`` in ``folder`` that fails (exit 1, "simulated read error" on stderr)
    when one of its arguments is ``argument`` and execs the real ``name`` otherwise: one
    kind of run of a tool fails, every other runs.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: (
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = "{argument}" ] && {{ echo "simulated read error" >&2; exit 1; }}; done\n'
        f'exec "{real}" "$@"\n'
    ))


def gated_tool(folder: Path, name: str, gate: Path) -> Path:
    """Put a ``name`` in ``folder`` that waits while ``gate`` exists, then execs the real
    ``name``: the test decides when a file in progress may finish, whatever the load.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(
        folder, name, lambda real: f'#!/bin/sh\nwhile [ -e "{gate}" ]; do sleep 0.05; done\nexec "{real}" "$@"\n'
    )


def odd_output_tool(folder: Path, name: str, marker: str, stdout: str) -> Path:
    """Put a ``name`` in ``folder`` that prints ``stdout`` and exits 0 when an argument
    contains ``marker``, and execs the real ``name`` otherwise.

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    return _install(folder, name, lambda real: (
        f'#!/bin/sh\ncase "$*" in *{marker}*) printf "%s" {stdout!r}; exit 0;; esac\nexec "{real}" "$@"\n'
    ))


def disk_filling_tool(folder: Path, name: str, filler: Path, *, then: str = "exec", when: str | None = None) -> Path:
    """Put a ``name`` in ``folder`` that first writes ``filler`` until its filesystem is
    full to the last block (another program taking the space after vpod checked it),
    then runs the real ``name``. ``then``: ``"exec"`` becomes the real tool; ``"exit 2"``
    runs it and exits 2 whatever it did (a tool that changed the file, then failed);
    ``"kill"`` runs it, then dies of SIGKILL. With ``when``, only a run with that
    argument fills the disk (``"--output"``: mkvmerge's remux, not its probe).

    Returns ``folder``; prepend it to ``PATH`` with :func:`path_with`.
    """
    ending = {
        "exec": "os.execv(REAL, [REAL, *sys.argv[1:]])",
        "exit 2": "subprocess.run([REAL, *sys.argv[1:]], stdout=subprocess.DEVNULL)\nsys.exit(2)",
        "kill": "subprocess.run([REAL, *sys.argv[1:]], stdout=subprocess.DEVNULL)\nos.kill(os.getpid(), signal.SIGKILL)",
    }[then]
    return _install(folder, name, lambda real: (
        f"#!{sys.executable}\nimport os, signal, subprocess, sys\nREAL, WHEN = {real!r}, {when!r}\n"
        "if WHEN is None or WHEN in sys.argv:\n"
        f"    fd = os.open({str(filler)!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)\n"
        "    for chunk in (bytes(1 << 16), b'\\0'):  # whole blocks, then the last partial one\n"
        "        try:\n            while True:\n                os.write(fd, chunk)\n"
        "        except OSError:\n            pass\n"
        f"    os.close(fd)\n{ending}\n"
    ))


def flag_dropping_tool(folder: Path, name: str, option: str) -> Path:
    """Put a ``name`` in ``folder`` that turns every ``option TID:1`` argument into
    ``option TID:0``, then execs the real ``name``: a mkvmerge whose output is a good
    file without one flag the plan asked for, which only verification can tell."""
    return _install(folder, name, lambda real: (
        f"#!{sys.executable}\nimport os, sys\nargs = sys.argv[1:]\n"
        f"for i in range(1, len(args)):\n"
        f"    if args[i - 1] == {option!r} and args[i].endswith(':1'):\n"
        f"        args[i] = args[i][:-1] + '0'\n"
        f"os.execv({real!r}, [{real!r}, *args])\n"
    ))
