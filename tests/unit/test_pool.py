"""DaemonConnectionPool: WAL, serialized writes, retries on a busy database."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time

import pytest

from vpod.db.pool import DaemonConnectionPool
from vpod.db.store import StoreBusy


@pytest.fixture
def pool(tmp_path):
    p = DaemonConnectionPool(tmp_path / "db" / "x.db", busy_timeout_seconds=0.5)
    with p.transaction() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    yield p
    p.close()


def test_wal_and_private_file(pool):
    with pool.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(pool.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pool.path.parent.stat().st_mode) == 0o700


def test_rollback_on_error(pool):
    with pytest.raises(RuntimeError):
        with pool.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("the body failed")
    with pool.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


def test_reads_are_read_only(pool):
    with pool.read() as conn:
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("INSERT INTO t VALUES (1)")


def test_threads_write_concurrently_without_errors(pool):
    errors = []

    def write(start: int) -> None:
        try:
            for i in range(200):
                with pool.transaction() as conn:
                    conn.execute("INSERT INTO t VALUES (?)", (start + i,))
        except Exception as exc:  # noqa: BLE001 - any error fails the test
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pool.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 800


def test_busy_raises_after_the_timeout_then_recovers(pool):
    other = sqlite3.connect(pool.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    with pytest.raises(StoreBusy, match="locked"):
        with pool.transaction():
            pass
    assert time.monotonic() - started >= 0.4
    with pool.read() as conn:  # readers are not blocked by a writer in WAL mode
        conn.execute("SELECT COUNT(*) FROM t").fetchone()
    other.execute("COMMIT")
    other.close()
    with pool.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")


def test_waits_for_a_short_lock(pool):
    other = sqlite3.connect(pool.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    timer = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    timer.start()
    with pool.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    timer.join()
    other.close()


def test_a_kept_reader_is_one_per_thread_sees_each_commit_and_is_closed_with_the_pool(tmp_path):
    """kept_read: the same read-only connection for a thread's reads (a walk reads once
    per folder), another for another thread; it sees what was committed since its last
    read (no snapshot kept between statements), writes nothing, and close() closes it."""
    from vpod.db.store import StoreError

    p = DaemonConnectionPool(tmp_path / "x.db", busy_timeout_seconds=0.5)
    with p.transaction() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    with p.kept_read() as first:
        assert first.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with p.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    with p.kept_read() as again:
        assert again is first
        assert again.execute("SELECT count(*) FROM t").fetchone()[0] == 1
        with pytest.raises(sqlite3.OperationalError):
            again.execute("INSERT INTO t VALUES (2)")  # query_only
    elsewhere: list[sqlite3.Connection] = []

    def read_there() -> None:
        with p.kept_read() as conn:
            elsewhere.append(conn)

    thread = threading.Thread(target=read_there)
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not first
    p.close()
    for conn in (first, elsewhere[0]):
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            conn.execute("SELECT 1")
    with pytest.raises(StoreError):
        with p.kept_read():
            pass
