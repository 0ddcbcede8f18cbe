"""Catch-up scan: a tree of files present when the daemon starts.

The tree (copies of the tiny MKV, `folders` folders of equal size) is made once, and
left alone for `settle_seconds` before each run (a file changed less than that ago
waits for it, by design, which is not what this measures); each run starts a daemon
with a new database on it (workers 1, processing files meanwhile), so every file is
new to it. Figures: from spawning `vpod run` until every file has its queue row: the
time of `scan_completed` when the walk queued them all itself (its `queued` field),
else the moment the harness found the last row in the database; the ratio to
`find DIR -type f | wc -l` on the same tree (warm cache for both; page caches are never
dropped on a shared machine); the daemon's peak RSS and CPU seconds (user + system,
from `/proc/PID/stat`: less sensitive than wall time to a busy machine).

A tree of 1,000,000 files (10,000 folders) is opt-in: set `VPOD_BENCH_SCAN_MILLION` to
a folder outside the checkout (e.g. `/var/tmp/vpod-bench-million`); the tree is made
there once (about 4 GB, a minute or two) and kept for later runs; one run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from burst import rows_count
from common import BenchFailure, Daemon, MediaSource, Row, parse_ts, status_field, timed

BYTES_PER_FILE_ON_DISK = 8192  # a 3 KB file plus its inode, generously
MILLION_ENV = "VPOD_BENCH_SCAN_MILLION"
MILLION_FILES, MILLION_FOLDERS = 1_000_000, 10_000


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (proc(5), fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(work: Path, root: Path, files: int, settle_seconds: float, profile: Path | None) -> tuple[float, float, float]:
    """(start → all queued, peak RSS in MB, CPU seconds) of one daemon on a new database."""
    time.sleep(settle_seconds)  # the tree's last change (making it, a previous run's edits) is a settle time old
    daemon = Daemon(work, [root], watch={"settle_seconds": settle_seconds}, events=("scan_completed",),
                    profile=profile)
    try:
        daemon.start()
        daemon.wait(lambda: bool(daemon.events("scan_completed")), timeout=1800, what="scan_completed", interval=0.2)
        completed = daemon.events("scan_completed")[0]
        end = parse_ts(completed["timestamp"])
        if completed.get("queued") != files:  # some waited in the stabilizer (or an older vpod: no count)
            daemon.wait(lambda: rows_count(daemon.db_path, root) >= files, timeout=900, what=f"{files} rows",
                        interval=0.2)
            end = max(end, time.time())
        rss = status_field(daemon.pid, "VmHWM") / 1024
        # and its child walker's (vpod.watch.walker; scan_completed says, from r2-scanproc on)
        cpu = cpu_seconds(daemon.pid) + float(completed.get("walker_cpu_seconds") or 0.0)
    finally:
        status = daemon.stop()
    if status != 0:
        raise BenchFailure(f"scan: vpod exited {status} after SIGTERM; log: {daemon.log_path}")
    count = rows_count(daemon.db_path, root)
    if count != files:
        raise BenchFailure(f"scan: {count} rows for {files} files; log: {daemon.log_path}")
    return end - daemon.started_at, rss, cpu


def scan(
    work: Path, media: MediaSource, *, files: int, folders: int, runs: int, settle_seconds: float,
    profiles: Path | None = None,
) -> list[Row]:
    """Rows: time until all are queued (goal ≤ 3 s), the ratio to find, peak RSS (goal
    ≤ 60 MB), CPU seconds; the 1,000,000-file rows when :data:`MILLION_ENV` is set."""
    ok, why = enough_disk(work, files)
    name = f"{files:,} files in {folders:,} folders: vpod run start → all queued"
    if not ok:
        return [Row("scan", name, unit="s", skipped=f"skipped: {why}")]
    root = work / "tree"
    made, _ = timed(lambda: make_tree(root, media, files, folders))
    find = [find_seconds(root) for _ in range(runs)]
    queued, rss, cpu, ratio = [], [], [], []
    try:
        for run in range(runs):
            profile = profiles / f"scan-{run}.txt" if profiles else None
            seconds, peak, used = one_run(work / f"daemon-{run}", root, files, settle_seconds, profile)
            queued.append(seconds)
            rss.append(peak)
            cpu.append(used)
            ratio.append(seconds / find[run])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    note = f"settle_seconds = {settle_seconds:g}, workers 1 processing meanwhile; tree made in {made:.0f} s"
    return [
        Row("scan", name, queued, "s", goal="≤ 3", check=lambda v: v <= 3, note=note),
        Row("scan", "find DIR -type f | wc -l", find, "s", digits=3),
        Row("scan", "all queued ÷ find", ratio, "×", digits=0),
        Row("scan", "peak RSS of the daemon (VmHWM)", rss, "MB", goal="≤ 60", check=lambda v: v <= 60, digits=1),
        Row("scan", "CPU of the daemon and its walk child until all queued (user + system)", cpu, "s"),
        *million(work, media, settle_seconds),
    ]


def million(work: Path, media: MediaSource, settle_seconds: float) -> list[Row]:
    """The opt-in 1,000,000-file rows (one run), or one skipped row saying how to ask for them."""
    name = f"{MILLION_FILES:,} files in {MILLION_FOLDERS:,} folders: vpod run start → all queued"
    where = os.environ.get(MILLION_ENV)
    if not where:
        return [Row("scan", name, unit="s", skipped=f"opt-in: set {MILLION_ENV}=/var/tmp/vpod-bench-million")]
    base = Path(where)
    base.mkdir(parents=True, exist_ok=True)
    root = base / "tree"
    made = ""
    if not root.exists():
        ok, why = enough_disk(base, MILLION_FILES)
        if not ok:
            return [Row("scan", name, unit="s", skipped=f"skipped: {why}")]
        partial = base / "tree.partial"
        shutil.rmtree(partial, ignore_errors=True)
        seconds, _ = timed(lambda: make_tree(partial, media, MILLION_FILES, MILLION_FOLDERS))
        partial.rename(root)
        made = f"; tree made in {seconds:.0f} s"
    seconds, peak, used = one_run(work / "daemon-million", root, MILLION_FILES, settle_seconds, None)
    note = f"one run, tree kept in {root}{made}"
    return [
        Row("scan", name, [seconds], "s", note=note),
        Row("scan", "1,000,000 files: peak RSS of the daemon (VmHWM)", [peak], "MB", goal="≤ 150",
            check=lambda v: v <= 150, digits=1),
        Row("scan", "1,000,000 files: CPU of the daemon until all queued", [used], "s"),
    ]
