"""Burst and memory: 10,000 small files dropped at once into a watched folder.

This process writes copies of the tiny MKV into one folder as fast as it can while
the daemon runs (workers process files meanwhile, as they would). Figures: the time
from the first file written until the last ``file_queued`` (every file recorded in the
durable queue), and the daemon's peak RSS (``VmHWM`` in ``/proc/PID/status``). After
SIGTERM the database must hold exactly one row per dropped file, none failed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from common import BenchFailure, Daemon, MediaSource, Row, parse_ts, remove_tree, status_field


_LIBRARY = "library_id = (SELECT id FROM libraries WHERE path = ?)"  # a file is (library, relpath): schema 6


def rows_of(db: Path, root: Path, folder: bytes) -> dict[str, int]:
    """State → count of the rows of ``folder`` (the harness reads the database directly)."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            f"SELECT state, COUNT(*) FROM files WHERE {_LIBRARY} AND dir = ? GROUP BY state", (str(root), folder)
        ).fetchall()
    return dict(found)


def rows_count(db: Path, root: Path) -> int:
    """Rows of every file under ``root``."""
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM files WHERE {_LIBRARY}", (str(root),)).fetchone()[0]


def distinct_relpaths(db: Path, root: Path, folder: bytes) -> set[bytes]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute(f"SELECT relpath FROM files WHERE {_LIBRARY} AND dir = ?", (str(root), folder))}


def burst(
    work: Path, media: MediaSource, *, files: int, runs: int, settle_seconds: float, profiles: Path | None = None
) -> list[Row]:
    """Rows: time until all are recorded, drop time, peak RSS, files lost."""
    recorded, lag, dropped, rss, lost, rate = [], [], [], [], [], []
    for run in range(runs):
        root = work / f"watched-{run}"
        folder = root / "drop"
        folder.mkdir(parents=True)
        daemon = Daemon(
            work / f"daemon-{run}", [root], watch={"settle_seconds": settle_seconds}, events=("file_queued",),
            profile=profiles / f"burst-{run}.txt" if profiles else None,
        )
        daemon.start().wait_started()
        try:
            time.sleep(0.5)
            names = [f"f{i:05d}.mkv" for i in range(files)]
            contents = [media.content() for _ in names]
            t0 = time.time()
            for name, data in zip(names, contents):
                with open(folder / name, "wb") as handle:
                    handle.write(data)
            t1 = time.time()
            dropped.append(t1 - t0)
            daemon.wait(
                lambda: len(daemon.events("file_queued")) >= files,
                timeout=600,
                what=f"{files} file_queued events",
                interval=0.5,
            )
            last = max(parse_ts(e["timestamp"]) for e in daemon.events("file_queued"))
            recorded.append(last - t0)
            lag.append(last - t1)
            rate.append(files / (last - t0))
            rss.append(status_field(daemon.pid, "VmHWM") / 1024)
        finally:
            status = daemon.stop()
        if status != 0:
            raise BenchFailure(f"burst: vpod exited {status} after SIGTERM; log: {daemon.log_path}")
        states = rows_of(daemon.db_path, root, b"drop")
        relpaths = distinct_relpaths(daemon.db_path, root, b"drop")
        expected = {os.fsencode(f"drop/{n}") for n in names}
        missing = expected - relpaths
        bad = {s: c for s, c in states.items() if s not in ("queued", "processing", "done")}
        lost.append(len(missing))
        if missing or bad:
            raise BenchFailure(f"burst: {len(missing)} files have no row, bad states {bad}; log: {daemon.log_path}")
        remove_tree(root)
    note = f"{files} files of {media.size} bytes, settle_seconds = {settle_seconds:g}, workers 1 processing meanwhile"
    return [
        Row("burst", f"{files} files: writing them (this process)", dropped, "s", note=note),
        Row("burst", "first file written → all recorded (last file_queued)", recorded, "s", note=note),
        Row("burst", "last file written → all recorded", lag, "s", note="the daemon's lag behind the writer"),
        Row("burst", "files recorded per second, from the first written", rate, "files/s", digits=0),
        Row("burst", "peak RSS of the daemon (VmHWM)", rss, "MB", goal="< 150", check=lambda v: v < 150, digits=1),
        Row("burst", "files without a database row after SIGTERM", [float(x) for x in lost], "files", goal="0",
            check=lambda v: v == 0, digits=0),
    ]
