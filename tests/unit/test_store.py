"""SqliteStore specifics: its tables as written, and databases of older schema versions.

The behaviour every backend shares (enqueue rules, claims, retries, reports) is the
contract suite, tests/unit/test_store_contract.py; the pool's WAL, locking and file
modes are tests/unit/test_pool.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpod.db.pool import DaemonConnectionPool
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import EnqueueOutcome, Outcome
from vpod.fingerprint import StatKey
from vpod.results import FileProcessingResult

ROOT = Path("/library")
POLICY_A = "digest-of-policy-a"


def key(n: int = 1) -> StatKey:
    return StatKey(size=100 + n, mtime_ns=n, inode=n, device=1)


@pytest.fixture
def store(tmp_path):
    pool = DaemonConnectionPool(tmp_path / "s.db")
    yield SqliteStore(pool)
    pool.close()


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
    SQLite refuses. Every text written (results, files, tracks) is stored with the byte
    shown as ``\\xNN`` (what the Store returns: the contract suite), in SQLite's tables too."""
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
    with store.pool.read() as conn:
        assert tuple(conn.execute("SELECT state, reason, last_error FROM files").fetchone()) == (
            "failed", "unreadable", f"{shown}: not media",
        )
        assert [tuple(r) for r in conn.execute("SELECT reason, error FROM results ORDER BY id")] == [
            ("locked", f"{shown}: locked"), ("unreadable", f"{shown}: not media"),
        ]
        assert conn.execute("SELECT title FROM tracks").fetchone()[0] == "caf\\xe9"


def test_a_version_5_database_is_migrated_in_place_with_its_data(tmp_path):
    """Schema 6 rebuilds ``files``: every row, its tracks and its results stay; each
    root becomes a library named by the config rule; a row a ``vpod process`` left in
    progress gets a dead owner record and is released; a daemon's is requeued."""
    import sqlite3

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
    assert store.enqueue(Path("/srv/movies"), b"a.mkv", "fp", StatKey(10, 1, 2, 3)) is EnqueueOutcome.UNCHANGED
    store.register_owner("daemon")
    assert store.requeue_interrupted() == 1
    assert store.abandon_dead_owners() == [Path("/srv/tv/s01/e1.mkv")]
    pool.close()


def test_an_older_daemon_still_running_keeps_its_database_from_being_upgraded(tmp_path):
    """Observed: `vpod status` of a new release upgraded the schema under a running daemon
    of the old one, which could then queue nothing. Another process's daemon lock on the
    database refuses the upgrade, with the pid; once that daemon is gone it goes ahead."""
    import sqlite3
    import subprocess
    import sys

    from vpod.config import DatabaseConfig
    from vpod.db.factory import open_store
    from vpod.db.schema import MIGRATIONS, SCHEMA_VERSION
    from vpod.db.store import StoreError

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(";\n".join(MIGRATIONS[:5]) + ";\nPRAGMA user_version = 5;")
    conn.close()
    holder = subprocess.Popen(  # an old daemon: its InstanceLock, then it waits
        [sys.executable, "-c",
         "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.pwrite(fd, f'{os.getpid()}\\n'.encode(), 0); "
         "print('locked', flush=True); sys.stdin.read()",
         str(path.with_name(path.name + ".lock"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError) as refused:
            open_store(DatabaseConfig(path=path))
        assert f"pid {holder.pid}" in str(refused.value) and "still running" in str(refused.value)
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 5
    finally:
        holder.communicate("")
    store = open_store(DatabaseConfig(path=path))
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_version_7_database_gains_leases_and_library_identities(tmp_path):
    """Schema 8 (issue 14): libraries made before it get their identity; a row in progress
    from before has no lease (it is released as a dead owner's, never claimed as an ended lease)."""
    import re
    import sqlite3

    from vpod.db.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "v7.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for step in MIGRATIONS[:7]:
        if callable(step):
            step(conn)
        else:
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
    conn.execute("INSERT INTO libraries (name, path, created_at) VALUES ('movies', '/movies', 0), ('shows', '/shows', 0)")
    conn.execute(
        "INSERT INTO files (library_id, root, relpath, dir, state, fingerprint, updated_at)"
        " VALUES (1, '/movies', x'612e6d6b76', x'', 'processing', 'fp', 0)"
    )
    conn.execute("PRAGMA user_version = 7")
    conn.execute("COMMIT")
    conn.close()
    pool = DaemonConnectionPool(path)
    store = SqliteStore(pool)
    try:
        uids = [library.uid for library in store.libraries()]
        assert len(set(uids)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", u) for u in uids)
        assert store.claim("w", "b") is None  # in progress without a lease: not an ended one
        with pool.read() as read:
            assert read.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 8
    finally:
        pool.close()


def test_version_8_database_gains_ctime_and_its_rows_prove_nothing(tmp_path):
    """Schema 9 (issue 15): a done row from before has no ctime, so its stat never proves the
    file untouched (the daemon's walk and `vpod process` look at it once more)."""
    import sqlite3

    path = tmp_path / "v8.db"
    SqliteStore(DaemonConnectionPool(path)).close()  # today's schema, then taken back to version 8
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ALTER TABLE files DROP COLUMN ctime_ns")
    conn.execute("INSERT INTO libraries (name, path, created_at) VALUES ('movies', '/movies', 0)")
    conn.execute(
        "INSERT INTO files (library_id, root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint,"
        " result_fingerprint, policy_digest, updated_at)"
        " VALUES (1, '/movies', x'612e6d6b76', x'', 'done', 10, 1, 2, 3, 'fp', 'fp', 'digest', 0)"
    )
    conn.execute("PRAGMA user_version = 8")
    conn.close()
    pool = DaemonConnectionPool(path)
    store = SqliteStore(pool)
    try:
        assert store.known_stats(Path("/movies"), b"") == {b"a.mkv": StatKey(10, 1, 2, 3, None)}
        assert store.conforming_stats(Path("/movies"), b"") == {}
    finally:
        pool.close()
