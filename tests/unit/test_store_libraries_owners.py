"""Store: libraries by name and owner records (issue 12 items 3 and 4).

Written against the Store protocol only (the ``store`` fixture), so the tests can move
into the backend contract suite unchanged.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from vpod.db.pool import DaemonConnectionPool
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import EnqueueOutcome, Outcome
from vpod.fingerprint import StatKey
from vpod.results import FileProcessingResult

from tests.support.stores import own_a_row_and_exit
from tests.support.stores import sqlite_store as store  # noqa: F401  (the fixture)

OLD, NEW = Path("/srv/movies"), Path("/mnt/big/movies")
STAT = StatKey(10, 1, 2, 3)


def handled(store, root: Path, relpath: bytes) -> None:
    assert store.enqueue(root, relpath, "fp-in", STAT) is EnqueueOutcome.QUEUED
    [job] = store.next_queued(1, ())
    assert store.start(job, "worker-1", "b")
    result = FileProcessingResult(path=job.path, success=True, changes=1)
    store.finish(job, Outcome(result, "fp-out", STAT, policy_digest="p"), "b")


def test_a_library_that_moves_keeps_its_files(store):
    store.bind_libraries({OLD: "movies"})
    handled(store, OLD, b"a.mkv")
    [change] = store.bind_libraries({NEW: "movies"})
    assert (change.name, change.path, change.change, change.previous) == ("movies", str(NEW), "moved", str(OLD))
    # the same file, found at the new folder: vpod left it so, nothing to do
    assert store.enqueue(NEW, b"a.mkv", "fp-out", STAT) is EnqueueOutcome.UNCHANGED
    assert store.known_stats(NEW, b"") == {b"a.mkv": STAT}
    assert store.known_stats(OLD, b"") == {}
    assert [(lib.name, lib.path, lib.files) for lib in store.libraries()] == [("movies", str(NEW), 1)]
    assert store.bind_libraries({NEW: "movies"}) == []  # the same binding again: nothing changes


def test_a_renamed_library_keeps_its_files(store):
    store.bind_libraries({OLD: "movies"})
    handled(store, OLD, b"a.mkv")
    [change] = store.bind_libraries({OLD: "films"})
    assert (change.change, change.previous) == ("renamed", "movies")
    assert store.enqueue(OLD, b"a.mkv", "fp-out", STAT) is EnqueueOutcome.UNCHANGED
    [job] = [j for j in [store.job_for_path(OLD, b"a.mkv", "fp-out", STAT)] if j]
    assert job.library == "films" and job.path == OLD / "a.mkv"


def test_a_folder_outside_every_library_is_named_by_its_path(store):
    job = store.job_for_path(Path("/home/u/Downloads"), b"x.mkv", "fp", STAT)
    assert job is not None and job.library == "/home/u/Downloads"
    # once configured under a name, the folder's files keep their rows
    [change] = store.bind_libraries({Path("/home/u/Downloads"): "Downloads"})
    assert change.change == "renamed"
    assert store.job_for_path(Path("/home/u/Downloads"), b"x.mkv", "fp", STAT).id == job.id


def test_owner_alive_is_a_store_question(store):
    me = store.register_owner("process")
    assert (me.kind, me.pid) == ("process", os.getpid()) and me.pid_start
    assert store.owner_alive(me.id)
    dead = own_a_row_and_exit(store.pool.path, OLD, b"x.mkv")
    assert not store.owner_alive(dead)  # its pid is gone on this host
    assert not store.owner_alive(12345678)  # no record
    store.end_owner()
    assert not store.owner_alive(me.id)


def test_a_stale_heartbeat_is_a_dead_owner_even_with_a_live_pid(store):
    me = store.register_owner("process", heartbeat_seconds=0.01)
    other = SqliteStore(store.pool)  # judges from outside this owner
    time.sleep(0.05)  # more than 3 heartbeats missed
    assert not other.owner_alive(me.id)
    store.heartbeat()
    assert other.owner_alive(me.id)


def test_a_crashed_daemons_rows_are_requeued_and_a_dead_process_rows_released(store):
    daemon = own_a_row_and_exit(store.pool.path, OLD, b"d.mkv", "daemon")
    process = own_a_row_and_exit(store.pool.path, OLD, b"p.mkv")
    assert not store.owner_alive(daemon) and not store.owner_alive(process)
    store.register_owner("daemon")
    assert store.requeue_interrupted() == 1  # the daemon's row: queued again
    assert [j.relpath for j in store.next_queued(5, ())] == [b"d.mkv"]
    assert store.abandon_dead_owners() == [OLD / "p.mkv"]
    report = store.queue_report()
    assert report.counts["failed"] == 1 and report.counts["processing"] == 0
    assert "vpod process (pid" in report.last_failures[0].error


def test_a_version_5_database_is_migrated_in_place_with_its_data(tmp_path):
    """Schema 6 rebuilds ``files``: every row, its tracks and its results stay; each
    root becomes a library named by the config rule; a row a ``vpod process`` left in
    progress gets a dead owner record and is released; a daemon's is requeued."""
    from vpod.db.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path)
    conn.executescript(";\n".join(MIGRATIONS[:5]) + ";\nPRAGMA user_version = 5;")
    rows = [
        (1, "/srv/movies", b"a.mkv", "done", None),
        (2, "/tmp/x/movies", b"b.mkv", "done", None),
        (3, "/srv/tv", b"s01/e1.mkv", "processing", "process-999999_0"),
        (4, "/srv/tv", b"s01/e2.mkv", "processing", "worker-1"),
    ]
    for file_id, root, relpath, state, worker in rows:
        conn.execute(
            "INSERT INTO files (id, root, relpath, dir, state, fingerprint, result_fingerprint, policy_digest,"
            " size, mtime_ns, inode, device, worker, updated_at) VALUES (?, ?, ?, ?, ?, 'fp', 'fp', 'p', 10, 1, 2, 3, ?, 0)",
            (file_id, root, relpath, relpath.rpartition(b"/")[0], state, worker),
        )
    conn.execute("INSERT INTO tracks (file_id, idx, type, is_default, is_forced) VALUES (1, 0, 'video', 1, 0)")
    conn.execute("INSERT INTO results (file_id, path, success, skipped, changes) VALUES (1, x'2f', 1, 0, 1)")
    conn.commit()
    conn.close()

    pool = DaemonConnectionPool(path)
    store = SqliteStore(pool)
    with pool.read() as read:
        assert read.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [tuple(r) for r in read.execute("SELECT file_id FROM tracks")] == [(1,)]
        assert [tuple(r) for r in read.execute("SELECT file_id FROM results")] == [(1,)]
    assert {(lib.name, lib.path) for lib in store.libraries()} == {
        ("srv/movies", "/srv/movies"), ("x/movies", "/tmp/x/movies"), ("tv", "/srv/tv"),
    }
    # the config's name for the folder takes over the library; its files stay known
    assert store.bind_libraries({Path("/srv/movies"): "movies"})[0].change == "renamed"
    assert store.enqueue(Path("/srv/movies"), b"a.mkv", "fp", STAT) is EnqueueOutcome.UNCHANGED
    store.register_owner("daemon")
    assert store.requeue_interrupted() == 1
    assert store.abandon_dead_owners() == [Path("/srv/tv/s01/e1.mkv")]
    pool.close()
