"""SqliteStore: the enqueue rules behind "nothing lost, nothing twice"."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vpod.db.pool import DaemonConnectionPool
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import EnqueueEntry, EnqueueOutcome, Outcome
from vpod.fingerprint import StatKey
from vpod.results import BatchResult, FileProcessingResult

ROOT = Path("/library")
POLICY_A = "digest-of-policy-a"
POLICY_B = "digest-of-policy-b"


def key(n: int = 1) -> StatKey:
    return StatKey(size=100 + n, mtime_ns=n, inode=n, device=1)


@pytest.fixture
def store(tmp_path):
    pool = DaemonConnectionPool(tmp_path / "s.db")
    yield SqliteStore(pool)
    pool.close()


def done(store: SqliteStore, job, fingerprint_after: str, stat: StatKey, policy_digest: str = POLICY_A) -> None:
    result = FileProcessingResult(path=job.path, success=True, changes=1)
    store.finish(job, Outcome(result, fingerprint_after, stat, policy_digest=policy_digest), "b1")


def test_queue_then_start_then_finish(store):
    assert store.enqueue(ROOT, b"a.mkv", "fp-a", key()) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"a.mkv", "fp-a", key()) is EnqueueOutcome.ALREADY_QUEUED
    [job] = store.next_queued(10, ())
    assert job.path == ROOT / "a.mkv" and job.fingerprint == "fp-a"
    assert store.start(job, "worker-1", "b1")
    assert not store.start(job, "worker-2", "b1")  # one claim per file
    assert store.enqueue(ROOT, b"a.mkv", "fp-a", key()) is EnqueueOutcome.ALREADY_QUEUED
    done(store, job, "fp-a-out", key(2))
    assert store.queue_depth() == 0
    # vpod's own rewrite: the output fingerprint is recognized
    assert store.enqueue(ROOT, b"a.mkv", "fp-a-out", key(3)) is EnqueueOutcome.UNCHANGED
    # a copy or hard link of the output elsewhere, under the same policy
    assert store.enqueue(ROOT, b"copy.mkv", "fp-a-out", key(4), policy_digest=POLICY_A) is (
        EnqueueOutcome.SAME_CONTENT_DONE
    )
    # new content at the same path
    assert store.enqueue(ROOT, b"a.mkv", "fp-new", key(5)) is EnqueueOutcome.QUEUED


def test_permanent_failure_waits_for_new_content(store):
    store.enqueue(ROOT, b"bad.mkv", "fp-bad", key())
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    failed = FileProcessingResult(path=job.path, success=False, error="broken", reason="unreadable", permanent=True)
    store.finish(job, Outcome(failed), "b")
    assert store.enqueue(ROOT, b"bad.mkv", "fp-bad", key(9)) is EnqueueOutcome.FAILED_UNCHANGED
    assert store.enqueue(ROOT, b"bad.mkv", "fp-fixed", key(10)) is EnqueueOutcome.QUEUED


def test_transient_outcomes_can_be_queued_again(store):
    store.enqueue(ROOT, b"gone.mkv", "fp", key())
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    vanished = FileProcessingResult(path=job.path, success=False, skipped=True, reason="vanished", permanent=False)
    store.finish(job, Outcome(vanished), "b")
    assert store.enqueue(ROOT, b"gone.mkv", "fp", key()) is EnqueueOutcome.QUEUED


def test_retry_later_is_not_due_yet(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    result = FileProcessingResult(path=job.path, success=False, reason="timeout", permanent=False)
    store.retry_later(job, result, 60, "b")
    assert store.next_queued(10, ()) == []
    assert store.queue_depth() == 1
    assert store.next_due_at() > time.time() + 50


def test_an_uncounted_retry_gives_the_attempt_back(store):
    """Waiting for free space does not use up max_attempts; other retries do."""
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    for counted, attempts in ((False, 1), (False, 1), (True, 2)):
        [job] = store.next_queued(1, ())
        store.start(job, "w", "b")
        result = FileProcessingResult(path=job.path, success=False, reason="insufficient_space", permanent=False)
        store.retry_later(job, result, 0, "b", counted=counted)
        [job] = store.next_queued(1, ())
        assert job.attempts + 1 == attempts


def test_next_due_at_ignores_jobs_due_now(store):
    """Jobs due now are in the feeder's hands; only future retries set a wake-up time
    (otherwise the feeder would wake every 50 ms while the in-memory queue is full)."""
    store.enqueue(ROOT, b"now.mkv", "fp", key())
    assert store.next_due_at() is None


def test_interrupted_jobs_are_requeued_with_their_pending_plan(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    store.note_plan(job, ["track 1: set default flag off"])
    assert store.requeue_interrupted() == 1
    [again] = store.next_queued(1, ())
    assert again.pending_actions == ("track 1: set default flag off",)
    assert again.attempts == 1


def test_next_queued_excludes_and_limits(store):
    for i in range(5):
        store.enqueue(ROOT, f"f{i}.mkv".encode(), f"fp{i}", key(i))
    first = store.next_queued(2, ())
    assert [j.relpath for j in first] == [b"f0.mkv", b"f1.mkv"]
    rest = store.next_queued(10, [j.id for j in first])
    assert [j.relpath for j in rest] == [b"f2.mkv", b"f3.mkv", b"f4.mkv"]


def test_known_stats_per_folder(store):
    store.enqueue(ROOT, b"show/s1/e1.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"show/s1/e2.mkv", "fp2", key(2))
    store.enqueue(ROOT, b"top.mkv", "fp3", key(3))
    assert store.known_stats(ROOT, b"show/s1") == {b"show/s1/e1.mkv": key(1), b"show/s1/e2.mkv": key(2)}
    assert store.known_stats(ROOT, b"") == {b"top.mkv": key(3)}


def test_container_change_records_the_new_name(store):
    store.enqueue(ROOT, b"movie.mp4", "fp-mp4", key(1))
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    result = FileProcessingResult(path=job.path, success=True, changes=1, final_path=ROOT / "movie.mkv")
    store.finish(job, Outcome(result, "fp-mkv", key(2), b"movie.mkv"), "b")
    assert store.enqueue(ROOT, b"movie.mkv", "fp-mkv", key(2)) is EnqueueOutcome.UNCHANGED


def test_non_utf8_paths_round_trip(store):
    name = b"bad\xffname.mkv"
    store.enqueue(ROOT, name, "fp", key())
    [job] = store.next_queued(1, ())
    assert job.relpath == name
    assert os.fsencode(job.path) == b"/library/" + name


def test_temp_registry(store, tmp_path):
    path = tmp_path / ".vpod-tmp-1.mkv"
    store.register_temp(path)
    assert store.pending_temps() == [path]
    store.forget_temp(path)
    assert store.pending_temps() == []


def test_record_batch(store):
    batch = BatchResult(batch_id="b-1", started_at=1.0, ended_at=2.0, total_files=1)
    batch.results.append(FileProcessingResult(path=ROOT / "a.mkv", success=True))
    store.record_batch(batch, "daemon")
    with store.pool.read() as conn:
        row = conn.execute("SELECT source, total_files, success_count FROM batches").fetchone()
    assert tuple(row) == ("daemon", 1, 1)


def test_version_1_database_is_migrated(tmp_path):
    """A database written by the first schema (no pending_actions) opens and works."""
    import sqlite3

    from vpod.db.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + ";\nPRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO files (root, relpath, dir, state, fingerprint, updated_at) VALUES ('/library', x'612e6d6b76', x'', 'queued', 'fp', 0)"
    )
    conn.commit()
    conn.close()
    pool = DaemonConnectionPool(path)
    store = SqliteStore(pool)
    [job] = store.next_queued(1, ())
    assert job.relpath == b"a.mkv" and job.pending_actions == ()
    with pool.read() as read:
        assert read.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    pool.close()


def test_enqueue_many_applies_the_enqueue_rules_to_each_file_in_one_transaction(store):
    assert store.enqueue(ROOT, b"waiting.mkv", "fp-w", key(1)) is EnqueueOutcome.QUEUED
    [job] = store.next_queued(10, ())
    assert store.start(job, "worker-1", "b1")
    done(store, job, "fp-w-out", key(2))
    entries = [
        EnqueueEntry(ROOT, b"new.mkv", "fp-n", key(3)),
        EnqueueEntry(ROOT, b"new.mkv", "fp-n", key(3)),  # named twice in one batch
        EnqueueEntry(ROOT, b"copy-of-output.mkv", "fp-w-out", key(4)),
        EnqueueEntry(ROOT, b"waiting.mkv", "fp-w-out", key(5)),  # vpod's own rewrite
    ]
    assert store.enqueue_many(entries, policy_digest=POLICY_A) == [
        EnqueueOutcome.QUEUED,
        EnqueueOutcome.ALREADY_QUEUED,
        EnqueueOutcome.SAME_CONTENT_DONE,
        EnqueueOutcome.UNCHANGED,
    ]
    assert [j.relpath for j in store.next_queued(10, ())] == [b"new.mkv"]


def test_enqueue_many_of_nothing(store):
    assert store.enqueue_many([]) == []


def test_a_pending_plan_keeps_the_queued_fingerprint(store):
    """After an interrupted attempt, the file's new content (vpod's own change) must not
    replace the queued fingerprint: the redo compares them to count the change once."""
    store.enqueue(ROOT, b"a.mkv", "fp-before", key(1))
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    store.note_plan(job, ["reorder tracks to 0, 2, 1"])
    store.requeue_interrupted()
    assert store.enqueue(ROOT, b"a.mkv", "fp-after", key(2)) is EnqueueOutcome.ALREADY_QUEUED
    [again] = store.next_queued(1, ())
    assert again.fingerprint == "fp-before" and again.pending_actions


def test_a_twin_counts_only_under_the_policy_it_was_judged_by(store):
    """Content vpod left at one path vouches for a copy at another path only while the
    same policy is in force; after a policy change the copy is queued (the reviewer's
    bug: it used to be marked done without a look)."""
    store.enqueue(ROOT, b"w4/x.mkv", "fp-base", key(1), policy_digest=POLICY_A)
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    conforming = FileProcessingResult(path=job.path, success=True, changes=0)
    store.finish(job, Outcome(conforming, "fp-base", key(1), policy_digest=POLICY_A), "b")

    assert store.enqueue(ROOT, b"w2/y.mkv", "fp-base", key(2), policy_digest=POLICY_A) is (
        EnqueueOutcome.SAME_CONTENT_DONE
    )
    assert store.enqueue(ROOT, b"w2/z.mkv", "fp-base", key(3), policy_digest=POLICY_B) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"w2/unknown.mkv", "fp-base", key(4)) is EnqueueOutcome.QUEUED  # no digest given
    assert [j.relpath for j in store.next_queued(10, ())] == [b"w2/z.mkv", b"w2/unknown.mkv"]
    # The twin row is recorded as judged under the policy that matched, so it vouches
    # for further copies under that policy too; and the path vpod left keeps its rule.
    with store.pool.read() as conn:
        row = conn.execute("SELECT state, policy_digest FROM files WHERE relpath = ?", (b"w2/y.mkv",)).fetchone()
    assert tuple(row) == ("done", POLICY_A)
    assert store.enqueue(ROOT, b"w4/x.mkv", "fp-base", key(5), policy_digest=POLICY_B) is EnqueueOutcome.UNCHANGED


def test_a_result_under_the_new_policy_vouches_for_later_copies(store):
    store.enqueue(ROOT, b"a.mkv", "fp-in", key(1), policy_digest=POLICY_B)
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    done(store, job, "fp-out", key(2), policy_digest=POLICY_B)
    assert store.enqueue(ROOT, b"copy.mkv", "fp-out", key(3), policy_digest=POLICY_A) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"copy2.mkv", "fp-out", key(4), policy_digest=POLICY_B) is (
        EnqueueOutcome.SAME_CONTENT_DONE
    )


def test_a_failure_records_no_policy_digest(store):
    store.enqueue(ROOT, b"bad.mkv", "fp-bad", key(1), policy_digest=POLICY_A)
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    failed = FileProcessingResult(path=job.path, success=False, reason="unreadable", permanent=True)
    store.finish(job, Outcome(failed, policy_digest=POLICY_A), "b")
    with store.pool.read() as conn:
        row = conn.execute("SELECT result_fingerprint, policy_digest FROM files").fetchone()
    assert tuple(row) == (None, None)


def test_version_2_rows_never_count_as_twins(tmp_path):
    """Results recorded before schema v3 do not say which policy judged them: a copy of
    such content elsewhere is queued (at worst probed again), never taken as done."""
    import sqlite3

    from vpod.db.schema import MIGRATIONS

    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(";\n".join(MIGRATIONS[:2]) + ";\nPRAGMA user_version = 2;")
    conn.execute(
        "INSERT INTO files (root, relpath, dir, state, fingerprint, result_fingerprint, size, mtime_ns,"
        " inode, device, updated_at) VALUES ('/library', x'612e6d6b76', x'', 'done', 'fp', 'fp', 1, 1, 1, 1, 0)"
    )
    conn.commit()
    conn.close()
    pool = DaemonConnectionPool(path)
    store = SqliteStore(pool)
    assert store.enqueue(ROOT, b"copy.mkv", "fp", key(7), policy_digest=POLICY_A) is EnqueueOutcome.QUEUED
    # The path itself keeps its "unchanged since vpod left it" rule (a restart scan).
    assert store.enqueue(ROOT, b"a.mkv", "fp", key(8), policy_digest=POLICY_A) is EnqueueOutcome.UNCHANGED
    pool.close()


def test_texts_naming_an_undecodable_file_are_stored_as_valid_utf8(store):
    """Errors name the file; a non-UTF-8 name reaches them as lone surrogates, which
    SQLite refuses. Every text written (results, files, tracks, daemon table) is stored
    with the byte shown as ``\\xNN``, and the write succeeds."""
    from vpod.media.model import Track

    relpath = b"bad\nname\xff.mkv"
    shown = "/library/bad\nname\\xff.mkv"
    path = ROOT / os.fsdecode(relpath)
    store.enqueue(ROOT, relpath, "fp", key())
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    busy = FileProcessingResult(path=path, success=False, error=f"{path}: locked", reason="locked", permanent=False)
    store.retry_later(job, busy, 0, "b")
    with store.pool.read() as conn:
        assert conn.execute("SELECT last_error FROM files").fetchone()[0] == f"{shown}: locked"
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    failed = FileProcessingResult(path=path, success=False, error=f"{path}: not media", reason="unreadable")
    title = os.fsdecode(b"caf\xe9")  # a Latin-1 title, as surrogateescape decodes it
    store.finish(job, Outcome(failed, tracks=[Track(0, "audio", "AAC", title=title)]), "b")
    store.set_daemon_info(paused_path=str(path), paused_error=failed.error)
    with store.pool.read() as conn:
        assert tuple(conn.execute("SELECT state, reason, last_error FROM files").fetchone()) == (
            "failed", "unreadable", f"{shown}: not media",
        )
        assert [tuple(r) for r in conn.execute("SELECT reason, error FROM results ORDER BY id")] == [
            ("locked", f"{shown}: locked"), ("unreadable", f"{shown}: not media"),
        ]
        assert conn.execute("SELECT title FROM tracks").fetchone()[0] == "caf\\xe9"
    assert store.daemon_info()["paused_path"] == shown
    assert store.daemon_info()["paused_error"] == f"{shown}: not media"
    assert store.queue_report().last_failures[0].error == f"{shown}: not media"
