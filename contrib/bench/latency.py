"""Latency: from a writer closing a file to processing start (``file_started``) and to done.

A writer thread in this process writes each file in four chunks 20 ms apart, closes
it and notes the wall-clock time. Files come 0.5 s apart, far more slowly than one
worker processes them, so no file waits behind another. The daemon's log timestamps
and the close times come from the same clock (CLOCK_REALTIME).
"""

from __future__ import annotations

import time
from pathlib import Path

from common import BenchFailure, Daemon, MediaSource, Row, parse_ts, percentile

CHUNKS = 4
CHUNK_PAUSE_SECONDS = 0.02
SPACING_SECONDS = 0.5


def write_slowly(path: Path, data: bytes) -> float:
    """Write ``data`` to ``path`` in chunks; returns the wall-clock time right after close."""
    step = -(-len(data) // CHUNKS)
    with open(path, "wb") as handle:
        for offset in range(0, len(data), step):
            handle.write(data[offset : offset + step])
            handle.flush()
            time.sleep(CHUNK_PAUSE_SECONDS)
    return time.time()


def latency(work: Path, media: MediaSource, *, files: int, runs: int, settle_seconds: float) -> list[Row]:
    """p50 and p95 of close → start and close → done per run (nearest rank)."""
    root = work / "watched"
    root.mkdir(parents=True)
    daemon = Daemon(
        work / "daemon",
        [root],
        watch={"settle_seconds": settle_seconds},
        level="debug",  # file_started is a debug event
        events=("file_started", "file_processed", "file_failed"),
    )
    daemon.start().wait_started()
    starts: dict[str, list[float]] = {"p50": [], "p95": []}
    dones: dict[str, list[float]] = {"p50": [], "p95": []}
    try:
        for run in range(runs):
            folder = root / f"run-{run}"
            folder.mkdir()
            time.sleep(0.3)
            closed: dict[str, float] = {}
            for i in range(files):
                path = folder / f"f{i:03d}.mkv"
                closed[str(path)] = write_slowly(path, media.content())
                time.sleep(SPACING_SECONDS)

            def mine(name: str) -> dict[str, float]:
                return {e["path"]: parse_ts(e["timestamp"]) for e in daemon.events(name) if e.get("path") in closed}

            daemon.wait(
                lambda: len(mine("file_processed")) + len(mine("file_failed")) >= files,
                timeout=settle_seconds + 60 + files * 5,
                what=f"{files} files processed in {folder}",
            )
            if mine("file_failed"):
                raise BenchFailure(f"latency: a file failed: {daemon.log_path}")
            started, processed = mine("file_started"), mine("file_processed")
            if len(started) != files:
                raise BenchFailure(f"latency: {len(started)} file_started events for {files} files")
            to_start = [started[p] - closed[p] for p in closed]
            to_done = [processed[p] - closed[p] for p in closed]
            for pct in (50, 95):
                starts[f"p{pct}"].append(percentile(to_start, pct))
                dones[f"p{pct}"].append(percentile(to_done, pct))
    finally:
        daemon.stop()
    goal = settle_seconds + 0.2
    note = f"settle_seconds = {settle_seconds:g}; {files} files per run"
    return [
        Row("latency", "close → processing start, p50", starts["p50"], "s", note=note),
        Row(
            "latency", "close → processing start, p95", starts["p95"], "s",
            goal=f"≤ settle + 0.2 = {goal:g}", check=lambda v: v <= goal, note=note,
        ),
        Row("latency", "close → done, p50", dones["p50"], "s", note=note),
        Row("latency", "close → done, p95", dones["p95"], "s", note=note),
    ]
