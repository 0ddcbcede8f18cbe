"""Catch-up scan: a tree of files present when the daemon starts.

The tree (copies of the tiny MKV, ``folders`` folders of equal size) is made once;
each run starts a daemon with a new database on it, so every file is new to it.
Figures: from spawning ``vpod run`` to the last ``file_queued``, the walk alone
(``scan_completed``), and the ratio to ``find DIR -type f | wc -l`` on the same tree
(warm cache for both; page caches are never dropped on a shared machine).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from burst import rows_count
from common import BenchFailure, Daemon, MediaSource, Row, parse_ts, status_field, timed

BYTES_PER_FILE_ON_DISK = 8192  # a 3 KB file plus its inode, generously


def make_tree(root: Path, media: MediaSource, files: int, folders: int) -> None:
    per_folder = files // folders
    for f in range(folders):
        folder = root / f"d{f:04d}"
        folder.mkdir(parents=True)
        for i in range(per_folder):
            with open(folder / f"f{i:04d}.mkv", "wb") as handle:
                handle.write(media.content())


def enough_disk(path: Path, files: int) -> tuple[bool, str]:
    free = shutil.disk_usage(path).free
    need = files * BYTES_PER_FILE_ON_DISK * 2
    return free >= need, f"needs {need / 1e9:.1f} GB free in {path}, has {free / 1e9:.1f} GB"


def find_seconds(root: Path) -> float:
    """Wall seconds of ``find DIR -type f | wc -l``."""
    seconds, _ = timed(
        lambda: subprocess.run(["bash", "-c", 'find "$1" -type f | wc -l', "find", str(root)], check=True,
                               capture_output=True)
    )
    return seconds


def scan(
    work: Path, media: MediaSource, *, files: int, folders: int, runs: int, settle_seconds: float,
    profiles: Path | None = None,
) -> list[Row]:
    """Rows: time until all are queued (goal < 10 s), the walk, the ratio to find, peak RSS."""
    ok, why = enough_disk(work, files)
    name = f"{files:,} files in {folders:,} folders: vpod run start → all queued"
    if not ok:
        return [Row("scan", name, unit="s", skipped=f"skipped: {why}")]
    root = work / "tree"
    made, _ = timed(lambda: make_tree(root, media, files, folders))
    find = [find_seconds(root) for _ in range(runs)]
    queued, walked, rss, ratio = [], [], [], []
    try:
        for run in range(runs):
            daemon = Daemon(work / f"daemon-{run}", [root], watch={"settle_seconds": settle_seconds},
                            events=("file_queued", "scan_completed"),
                            profile=profiles / f"scan-{run}.txt" if profiles else None)
            try:
                daemon.start()
                daemon.wait(lambda: len(daemon.events("file_queued")) >= files, timeout=900,
                            what=f"{files} file_queued", interval=0.5)
                last = max(parse_ts(e["timestamp"]) for e in daemon.events("file_queued"))
                daemon.wait(lambda: bool(daemon.events("scan_completed")), timeout=60, what="scan_completed")
                walk_end = parse_ts(daemon.events("scan_completed")[0]["timestamp"])
                rss.append(status_field(daemon.pid, "VmHWM") / 1024)
            finally:
                status = daemon.stop()
            if status != 0:
                raise BenchFailure(f"scan: vpod exited {status} after SIGTERM; log: {daemon.log_path}")
            count = rows_count(daemon.db_path, root)
            if count != files:
                raise BenchFailure(f"scan: {count} rows for {files} files; log: {daemon.log_path}")
            queued.append(last - daemon.started_at)
            walked.append(walk_end - daemon.started_at)
            ratio.append(queued[-1] / find[run])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    note = f"settle_seconds = {settle_seconds:g}, workers 1 processing meanwhile; tree made in {made:.0f} s"
    return [
        Row("scan", name, queued, "s", goal="< 10", check=lambda v: v < 10, note=note),
        Row("scan", "start → catch-up walk finished (scan_completed)", walked, "s"),
        Row("scan", "find DIR -type f | wc -l", find, "s", digits=3),
        Row("scan", "all queued ÷ find", ratio, "×", digits=0),
        Row("scan", "peak RSS of the daemon (VmHWM)", rss, "MB", digits=1),
    ]
