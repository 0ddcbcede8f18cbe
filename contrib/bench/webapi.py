"""Web API: `GET /api/status` with 100,000 files in the database (issue 17).

A daemon runs once on an empty folder to make its database and library, stops, and
100,000 rows go straight into its SQLite `files` table (94 % done, 5 % failed with a
reason and a tool message, 1 % skipped), each with a `results` row, and 1,000 closed
batches. The daemon starts again with `[http] listen` on loopback and, once it is
idle, the harness sends `GET /api/status` one request at a time (a keep-alive-less
urllib request each, as a browser's refresh or the page's fetch would), after 5 warm-up
requests. The latency is the client's wall time per request, in milliseconds; each
run's median and 95th percentile are the run's figures. `GET /api/files?state=failed`
(the first page of 50) is timed the same way.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from pathlib import Path

from common import BenchFailure, Daemon, Row, median, percentile

WARMUP = 5
REQUESTS = 50


def _fill(db: Path, root: Path, files: int) -> None:
    """``files`` rows (and their results and 1,000 batches) into the database at ``db``."""
    conn = sqlite3.connect(db)
    try:
        library_id = conn.execute("SELECT id FROM libraries WHERE path = ?", (str(root),)).fetchone()[0]
        now = time.time()
        rows = []
        results = []
        for i in range(files):
            state = "failed" if i % 20 == 0 else ("skipped" if i % 100 == 1 else "done")
            relpath = f"d{i % 1000:04d}/file-{i:06d}.mkv".encode()
            reason = {"failed": "tool_failed", "skipped": "empty"}.get(state)
            error = f"mkvmerge failed: Error: simulated failure of file {i}" if state == "failed" else None
            at = now - (files - i) * 0.5
            rows.append((i + 1, library_id, str(root), relpath, relpath.rsplit(b"/", 1)[0], state, reason, error, at, 1))
            results.append((f"b{i // 100:05d}", i + 1, str(root).encode() + b"/" + relpath, int(state == "done"),
                            int(state == "skipped"), int(i % 3 == 0), reason, error, at, 1.5))
        conn.executemany(
            "INSERT INTO files (id, library_id, root, relpath, dir, state, reason, last_error, updated_at, attempts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO results (batch_id, file_id, path, success, skipped, changes, reason, error, started_at,"
            " duration_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", results)
        conn.executemany(
            "INSERT INTO batches (batch_id, source, started_at, ended_at, total_files, success_count, fail_count,"
            " skipped_count, total_duration_seconds, stopped_early) VALUES (?, 'daemon', ?, ?, 100, 94, 5, 1, 50.0, 0)",
            [(f"b{n:05d}", now - files * 0.5 + n * 50, now - files * 0.5 + n * 50 + 50) for n in range(files // 100)])
        conn.commit()
    finally:
        conn.close()


def _latencies(url: str) -> list[float]:
    """Milliseconds per request, :data:`REQUESTS` of them after :data:`WARMUP`."""
    out = []
    for n in range(WARMUP + REQUESTS):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = answer.read()
            if answer.status != 200:
                raise BenchFailure(f"webapi: {url} answered {answer.status}")
        elapsed = (time.perf_counter() - start) * 1000
        if n >= WARMUP:
            out.append(elapsed)
    json.loads(body)  # a whole answer, not an error page
    return out


def webapi(work: Path, *, files: int, runs: int) -> list[Row]:
    """Rows: median and p95 latency of ``GET /api/status`` (goal < 50 ms) and of the
    first page of ``GET /api/files?state=failed``, with ``files`` files in the database."""
    root = work / "library"
    root.mkdir()
    daemon = Daemon(work / "daemon", [root], name="webapi", events=("http_listening", "scan_completed"),
                    # The per-client request limit (10/s, bursts of 100) would answer 429
                    # to the back-to-back samples: lifted, the latency is the figure.
                    sections={"http": {"listen": "127.0.0.1:0", "requests_per_second": 100_000, "request_burst": 100_000}})
    daemon.start()
    try:
        daemon.wait_started()
    finally:
        daemon.stop()
    _fill(daemon.db_path, root, files)
    status_median: list[float] = []
    status_p95: list[float] = []
    files_median: list[float] = []
    for _ in range(runs):
        daemon.tail.found = {name: [] for name in daemon.tail.found}
        daemon.start()
        try:
            daemon.wait(lambda: bool(daemon.events("http_listening")) and bool(daemon.events("scan_completed")),
                        timeout=120, what="http_listening and scan_completed")
            port = daemon.events("http_listening")[-1]["port"]
            status = _latencies(f"http://127.0.0.1:{port}/api/status")
            listing = _latencies(f"http://127.0.0.1:{port}/api/files?state=failed")
        finally:
            daemon.stop()
        status_median.append(median(status))
        status_p95.append(percentile(status, 95))
        files_median.append(median(listing))
    note = f"{files:,} files ({files // 20:,} failed), {files // 100:,} batches; {REQUESTS} requests per run after {WARMUP}"
    return [
        Row("webapi", "GET /api/status: median latency", status_median, "ms", goal="< 50", check=lambda v: v < 50,
            note=note, digits=1),
        Row("webapi", "GET /api/status: 95th percentile latency", status_p95, "ms", note=note, digits=1),
        Row("webapi", "GET /api/files?state=failed (first 50): median latency", files_median, "ms", note=note, digits=1),
    ]
