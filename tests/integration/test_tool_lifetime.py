"""A vpod that ends takes its tools with it, however it ends (issue 11, item 11).

Tools run in a session of their own (a Ctrl-C meant for vpod must not cut a remux
off), so neither the terminal's signal nor the death of vpod reached them: they ran on
as orphans. Each test starts the real ``vpod`` with a stand-in ``mkvmerge`` on PATH that
hangs (writes its pid, then never ends), ends vpod, and looks in ``/proc`` for the tool.
The daemon killed with -9 during a remux: ``test_daemon_policy.py``; ``vpod process``
killed with -9 during a remux: ``test_temp_sweep.py``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from support.daemon import write_config
from support.tools import hanging_tool, kill_if_running, path_with, process_ended

pytestmark = pytest.mark.integration


def wait_for_pid(pidfile: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while not pidfile.exists():
        assert proc.poll() is None, f"vpod exited ({proc.returncode}) before its tool started"
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.05)
    return int(pidfile.read_text())


@contextmanager
def vpod_with_a_hanging_tool(
    tmp_path: Path, env: dict[str, str], args: list[str]
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run ``vpod ARGS`` with a ``mkvmerge`` that hangs on any file named ``spin.mkv``;
    yields (vpod, the tool's pid) once the tool runs. Both are killed at the end if
    still there."""
    pidfile = tmp_path / "tool.pid"
    bin_dir = hanging_tool(tmp_path / "bin", "mkvmerge", "spin.mkv", pidfile)
    vpod = subprocess.Popen(
        [sys.executable, "-m", "vpod", *args], env={**env, "PATH": path_with(bin_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # As from a terminal: a suite started in the background (`cmd &` in a script) hands
        # its children SIGINT ignored, and Python then installs no KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield vpod, wait_for_pid(pidfile, vpod)
    finally:
        if vpod.poll() is None:
            vpod.kill()
        if pidfile.exists():
            kill_if_running(int(pidfile.read_text()))


def spinning_copy(tmp_path: Path, source: Path) -> str:
    return str(shutil.copyfile(source, tmp_path / "spin.mkv"))


def database_config(tmp_path: Path, **processing: float) -> str:
    sections: dict[str, object] = {"database": {"path": str(tmp_path / "vpod.db")}}
    if processing:
        sections["processing"] = processing
    return str(write_config(tmp_path / "c.toml", sections))


def test_vpod_process_killed_with_sigkill_takes_its_hanging_probe_with_it(tmp_path, env, jpn_eng_mkv):
    """Observed: a killed `vpod process` left its spinning mkvmerge -J running for an hour."""
    args = ["process", "--config", database_config(tmp_path), spinning_copy(tmp_path, jpn_eng_mkv)]
    with vpod_with_a_hanging_tool(tmp_path, env, args) as (vpod, tool):
        vpod.kill()  # SIGKILL: no handler, no clean-up in vpod can run
        vpod.wait(30)
        assert process_ended(tool), f"mkvmerge (pid {tool}) outlived the vpod process that started it"


def test_ctrl_c_on_vpod_inspect_takes_its_tool_with_it(tmp_path, env, jpn_eng_mkv):
    """Observed: Ctrl-C on `vpod inspect` printed "Aborted!" and left mkvmerge -J running."""
    args = ["inspect", spinning_copy(tmp_path, jpn_eng_mkv)]
    with vpod_with_a_hanging_tool(tmp_path, env, args) as (vpod, tool):
        # What a terminal's Ctrl-C delivers to vpod; the tool, in its own session, gets nothing.
        vpod.send_signal(signal.SIGINT)
        _, err = vpod.communicate(timeout=30)
        assert vpod.returncode != 0, err
        assert process_ended(tool), f"mkvmerge (pid {tool}) outlived vpod inspect"


def test_a_tool_is_not_killed_while_its_vpod_lives(tmp_path, env, jpn_eng_mkv):
    """The other half: the parent-death signal must not fire early (it follows the thread
    that started the tool; vpod process's pool threads live on while their tool runs)."""
    config = database_config(tmp_path, probe_timeout_seconds=3.0)
    args = ["process", "--config", config, "--json", "-w", "1", spinning_copy(tmp_path, jpn_eng_mkv)]
    with vpod_with_a_hanging_tool(tmp_path, env, args) as (vpod, _tool):
        _, err = vpod.communicate(timeout=60)
        assert vpod.returncode == 1, err
        # It ran until vpod killed it at its limit: the timeout, not an early parent-death signal.
        assert b"probe_timeout" in err and b"within 3 s" in err, err
