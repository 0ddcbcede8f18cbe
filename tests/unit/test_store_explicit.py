"""SqliteStore.job_for_path and abandon_dead_owners (vpod process's Store additions)."""

from __future__ import annotations

from pathlib import Path

from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import EnqueueOutcome, Outcome
from vpod.fingerprint import StatKey
from vpod.results import FileProcessingResult

from tests.support.stores import own_a_row_and_exit
from tests.support.stores import sqlite_store as store  # noqa: F401  (the fixture)

ROOT = Path("/library")
STAT = StatKey(10, 1, 2, 3)


def state(store: SqliteStore, relpath: bytes) -> tuple:
    with store.pool.read() as conn:
        row = conn.execute(
            "SELECT state, attempts, reason, worker FROM files WHERE root = ? AND relpath = ?", (str(ROOT), relpath)
        ).fetchone()
    return tuple(row) if row else None


def finish(store: SqliteStore, job, **fields) -> None:
    result = FileProcessingResult(path=job.path, **{"success": True, **fields})
    store.finish(job, Outcome(result, result_fingerprint="fp-after"), "b1")


def test_new_path_becomes_a_queued_job(store):
    job = store.job_for_path(ROOT, b"a/x.mkv", "fp", STAT)
    assert job is not None and job.path == ROOT / "a" / "x.mkv" and job.attempts == 0
    assert state(store, b"a/x.mkv") == ("queued", 0, None, None)
    assert store.start(job, "process-1_0", "b1")


def test_done_or_failed_rows_are_queued_again_with_fresh_attempts(store):
    job = store.job_for_path(ROOT, b"x.mkv", "fp", STAT)
    store.start(job, "w", "b1")
    finish(store, job, success=False, reason="unreadable", error="bad")
    assert state(store, b"x.mkv")[:3] == ("failed", 1, "unreadable")
    again = store.job_for_path(ROOT, b"x.mkv", "fp", STAT)
    assert again is not None and again.id == job.id
    assert state(store, b"x.mkv") == ("queued", 0, None, None)
    store.start(again, "w", "b2")
    finish(store, again)
    assert store.job_for_path(ROOT, b"x.mkv", "fp-after", STAT) is not None  # done: explicit runs redo it


def test_a_row_in_progress_is_left_alone(store):
    assert store.enqueue(ROOT, b"busy.mkv", "fp", STAT) is EnqueueOutcome.QUEUED
    [job] = store.next_queued(1, ())
    assert store.start(job, "worker-1", "daemon-batch")
    assert store.job_for_path(ROOT, b"busy.mkv", "fp", STAT) is None
    assert state(store, b"busy.mkv") == ("processing", 1, None, "worker-1")


def test_rows_of_a_dead_vpod_process_are_released(store):
    own_a_row_and_exit(store.pool.path, ROOT, b"dead.mkv")
    own_a_row_and_exit(store.pool.path, ROOT, b"daemon.mkv", kind="daemon")
    store.register_owner("process")
    assert store.start(store.job_for_path(ROOT, b"live.mkv", "fp", STAT), "process-1_1", "b")
    assert store.abandon_dead_owners() == [ROOT / "dead.mkv"]
    assert state(store, b"dead.mkv") == ("failed", 1, "interrupted", None)
    assert state(store, b"live.mkv")[0] == "processing"
    assert state(store, b"daemon.mkv")[0] == "processing"  # a daemon's rows: requeued when a daemon starts
    assert store.job_for_path(ROOT, b"dead.mkv", "fp", STAT) is not None


def test_status_says_when_a_row_in_progress_has_lost_its_owner(store):
    from vpod.status import format_status, read_status

    own_a_row_and_exit(store.pool.path, ROOT, b"dead.mkv")
    store.register_owner("process")
    assert store.start(store.job_for_path(ROOT, b"live.mkv", "fp", STAT), "process-2_0", "b")
    lines = format_status(read_status(store, batches=0, failures=0)).splitlines()
    [dead_line] = [line for line in lines if "dead.mkv" in line]
    [live_line] = [line for line in lines if "live.mkv" in line]
    assert "its owner ended" in dead_line and "its owner ended" not in live_line
