"""Database pool: results written concurrently through the ``DaemonConnectionPool``.

Each writer records whole file lifecycles through the Store, as a worker does: queue
the file (``job_for_path``), mark it started, record its result with three tracks
(``finish``): three write transactions and one result row per file. Two set-ups:
four threads of one process sharing one pool (a daemon's workers), and two processes
of two threads with a pool each on the same database file (a daemon beside
``vpod process``), where the file lock is contended across processes. Any error a
writer sees is counted; "database is locked" must never surface.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, BenchFailure, Row

WRITER = r"""
import json, sys, threading, time
from pathlib import Path
from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Outcome
from vpod.fingerprint import StatKey
from vpod.media.model import Track
from vpod.results import FileProcessingResult

db, tag, threads, per_thread = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = open_store(DatabaseConfig(path=Path(db), busy_timeout_seconds=5.0))  # SQLite: a DaemonConnectionPool
root = Path("/bench/library")
tracks = (Track(0, "video", "mpeg4", "und", None, True, False, None),
          Track(1, "audio", "aac", "eng", None, True, False, 1),
          Track(2, "audio", "aac", "jpn", None, False, False, 1))
errors = []

def writer(n):
    try:
        for i in range(per_thread):
            relpath = f"{tag}/t{n}/f{i:05d}.mkv".encode()
            key = StatKey(3000, i, i, 1)
            job = store.job_for_path(root, relpath, f"3000:{tag}{n}{i}", key)
            store.start(job, f"{tag}-{n}", "bench")
            result = FileProcessingResult(path=root / relpath.decode(), success=True, changes=2, duration_seconds=0.1,
                                          actions=("track 1: set default flag on",))
            store.finish(job, Outcome(result, f"3000:{tag}{n}{i}-after", key, None, tracks), "bench")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")

go = float(sys.argv[5])
time.sleep(max(0.0, go - time.time()))
start = time.monotonic()
workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"seconds": time.monotonic() - start, "errors": errors}))
store.close()
"""


def run_writers(db: Path, processes: int, threads: int, per_thread: int, tag: str) -> tuple[float, list[str]]:
    """(wall seconds of the slowest process, every error reported)."""
    go = time.time() + 1.0  # all processes start writing together, after their imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), f"{tag}p{p}", str(threads), str(per_thread), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
        for p in range(processes)
    ]
    seconds, errors = 0.0, []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise BenchFailure(f"pool writer exited {proc.returncode}: {err[-2000:]}")
        report = json.loads(out)
        seconds = max(seconds, report["seconds"])
        errors += report["errors"]
    return seconds, errors


def pool(work: Path, *, per_thread: int, runs: int) -> list[Row]:
    """Rows: rows/s for 4 threads in one pool and for 2 processes × 2 threads; errors."""
    single, double, errors_seen = [], [], []
    for run in range(runs):
        db = work / f"pool-{run}.db"
        seconds, errors = run_writers(db, 1, 4, per_thread, f"r{run}a")
        single.append(4 * per_thread / seconds)
        seconds, more = run_writers(db, 2, 2, per_thread, f"r{run}b")
        double.append(4 * per_thread / seconds)
        errors += more
        errors_seen.append(float(len(errors)))
        locked = [e for e in errors if "locked" in e or "busy" in e.lower()]
        if errors:
            raise BenchFailure(f"pool: {len(errors)} errors surfaced ({len(locked)} about locking), e.g. {errors[0]}")
    note = f"{per_thread} file lifecycles per thread, 3 write transactions each (queue, start, finish + result row)"
    return [
        Row("pool", "4 threads, one pool: results written", single, "rows/s", note=note, digits=0),
        Row("pool", "2 processes × 2 threads, a pool each, same file: results written", double, "rows/s", digits=0),
        Row("pool", "errors surfaced (database is locked or other)", errors_seen, "errors", goal="0",
            check=lambda v: v == 0, digits=0),
    ]
