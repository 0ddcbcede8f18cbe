"""Record every run of vpod's tools, and hold its encodes until the test lets them go.

vpod runs its tools by name, looked up on ``PATH`` (:func:`vpod.media.tools.tool_path`),
also under ``nice``/``ionice`` (which look their program up on ``PATH`` too). A folder
put first on the ``PATH`` of the vpod under test gets a wrapper per tool that appends
one JSON line ``{"tool", "pid", "args"}`` to ``runs.jsonl`` and then becomes the real
tool (``os.execv``: same pid, so vpod's group kill and parent-death signal,
:mod:`vpod.media.parent_death`, reach the real tool as before).

An **encode** (an ``ffmpeg`` run that reads an input and writes a file: not a decode
check to ``-f null``, not ``-encoders``) finding the file ``hold`` in the folder stops
itself (SIGSTOP) before it becomes ffmpeg, after writing its pid to ``held-PID``: the
test sees a transcode in progress for as long as it wants, without timing anything,
then lets it go with :meth:`ToolRecorder.release` (SIGCONT). Nothing of vpod is
replaced: the encode that runs is the real ffmpeg with vpod's own arguments.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

TOOLS = ("ffmpeg", "ffprobe", "mkvmerge", "mkvpropedit")

_WRAPPER = '''\
#!{python}
import json, os, signal, sys
REAL = {real!r}
FOLDER = {folder!r}
args = sys.argv[1:]
with open(os.path.join(FOLDER, "runs.jsonl"), "a") as note:
    note.write(json.dumps({{"tool": {tool!r}, "pid": os.getpid(), "args": args}}) + "\\n")
encode = {tool!r} == "ffmpeg" and "-i" in args and args[-1] != "-" and not any(
    a == "-f" and b == "null" for a, b in zip(args, args[1:]))
if encode and os.path.exists(os.path.join(FOLDER, "hold")):
    with open(os.path.join(FOLDER, "held-%d" % os.getpid()), "w") as mark:
        mark.write(" ".join(args))
    os.kill(os.getpid(), signal.SIGSTOP)
os.execv(REAL, [REAL, *args])
'''


def is_encode(run: dict[str, Any]) -> bool:
    """Whether a recorded run is an encode (see the module docstring)."""
    args = run["args"]
    return (
        run["tool"] == "ffmpeg"
        and "-i" in args
        and args[-1] != "-"
        and not any(a == "-f" and b == "null" for a, b in zip(args, args[1:]))
    )


class ToolRecorder:
    """The wrapper folder; put :attr:`bin` first on vpod's ``PATH`` (:meth:`env`).

    Args:
        folder: made if missing; holds the wrappers, ``runs.jsonl`` and the hold marks.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool in TOOLS:
            real = shutil.which(tool)
            assert real is not None, f"{tool} is not on PATH"
            path = self.bin / tool
            path.write_text(_WRAPPER.format(python=sys.executable, real=real, folder=str(folder), tool=tool))
            path.chmod(0o755)

    def env(self) -> dict[str, str]:
        """The ``PATH`` that finds the wrappers first."""
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"}

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded run so far, oldest first."""
        log = self.folder / "runs.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def encodes(self) -> list[dict[str, Any]]:
        """Recorded encodes, oldest first."""
        return [r for r in self.runs() if is_encode(r)]

    def hold(self) -> None:
        """Encodes started from now on stop before they run (until :meth:`release`)."""
        (self.folder / "hold").touch()

    def held(self) -> dict[int, str]:
        """Encodes stopped now: pid -> their arguments."""
        found = {}
        for mark in self.folder.glob("held-*"):
            pid = int(mark.name.split("-", 1)[1])
            if _stopped(pid):
                found[pid] = mark.read_text()
        return found

    def wait_held(self, count: int = 1, timeout: float = 60) -> list[int]:
        """Block until ``count`` encodes are stopped; their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.held()
            if len(held) >= count:
                return sorted(held)
            time.sleep(0.02)
        raise AssertionError(f"no {count} encode(s) held within {timeout:.0f} s; runs: {self.runs()}")

    def release(self) -> None:
        """No more holding; every encode held goes on (SIGCONT)."""
        (self.folder / "hold").unlink(missing_ok=True)
        for mark in self.folder.glob("held-*"):
            try:
                os.kill(int(mark.name.split("-", 1)[1]), signal.SIGCONT)
            except ProcessLookupError:
                pass
            mark.unlink()


def _stopped(pid: int) -> bool:
    """Whether ``pid`` exists and is stopped (state ``T`` in ``/proc/PID/stat``, proc(5))."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("T", "t")


def alive(pid: int) -> bool:
    """Whether ``pid`` still exists (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
