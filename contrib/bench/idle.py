"""Idle cost: CPU seconds of a daemon watching 1,000 folders while nothing happens.

Several daemons, each with its own tree of empty folders, idle side by side: each run
is one daemon, so the runs take one window instead of several (an idle daemon does
not disturb another). CPU time is user + system of all threads from
``/proc/PID/stat``; the voluntary context switches of all threads count the wake-ups.
The inotify watch count proves each daemon really watches every folder with inotify.
"""

from __future__ import annotations

import time
from pathlib import Path

from common import BenchFailure, Daemon, Row, context_switches, cpu_seconds, inotify_watches

START_QUIET_SECONDS = 3.0  # after the catch-up scan, before the window opens


def idle(work: Path, *, folders: int, seconds: float, runs: int) -> list[Row]:
    """Rows: idle CPU seconds over ``seconds`` (goal < 0.1 s), and wake-ups per second."""
    daemons = []
    for run in range(runs):
        root = work / f"tree-{run}"
        for i in range(folders):
            (root / f"d{i:04d}").mkdir(parents=True)
        daemons.append(Daemon(work / f"daemon-{run}", [root], name="idle"))
    cpu: list[float] = []
    wakeups: list[float] = []
    try:
        for daemon in daemons:
            daemon.start()
        for daemon in daemons:
            daemon.wait(lambda d=daemon: bool(d.events("scan_completed")), timeout=120, what="scan_completed")
        time.sleep(START_QUIET_SECONDS)
        for daemon in daemons:
            watches = inotify_watches(daemon.pid)
            if watches < folders + 1:
                raise BenchFailure(f"idle: daemon {daemon.pid} holds {watches} inotify watches for {folders + 1} folders")
        before = [(cpu_seconds(d.pid), context_switches(d.pid)) for d in daemons]
        time.sleep(seconds)
        after = [(cpu_seconds(d.pid), context_switches(d.pid)) for d in daemons]
        for (cpu0, ctx0), (cpu1, ctx1) in zip(before, after):
            cpu.append(cpu1 - cpu0)
            wakeups.append((ctx1 - ctx0) / seconds)
    finally:
        for daemon in daemons:
            daemon.stop()
    note = f"{folders} folders ({folders + 1} inotify watches), {seconds:g} s window, one daemon per run"
    return [
        Row("idle", f"CPU seconds over {seconds:g} s while idle", cpu, "s", goal="< 0.1", check=lambda v: v < 0.1,
            note=note, digits=3),
        Row("idle", "wake-ups per second while idle (voluntary context switches)", wakeups, "/s", note=note),
    ]
