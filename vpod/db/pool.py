"""DaemonConnectionPool: every database access of vpod goes through one of these.

SQLite in WAL mode lets readers run beside one writer (https://sqlite.org/wal.html),
so reads open their own short-lived connection, while writes share a single
connection serialized by a lock. A write transaction starts with ``BEGIN IMMEDIATE``,
which takes the write lock up front, so ``SQLITE_BUSY`` can only happen at that
statement (https://sqlite.org/lang_transaction.html) and is retried there with
exponential backoff.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vpod.errors import StoreBusy, StoreError

_BUSY_ATTEMPTS = 6
_BACKOFF_START_SECONDS = 0.05


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and sys.version_info >= (3, 11):  # the error codes are new in Python 3.11
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc)
    return "locked" in text or "busy" in text


class DaemonConnectionPool:
    """Connections to one SQLite database file, safe to share between threads.

    Args:
        path: the database file; its folder is created (mode 0700) when missing and the
            file is created with mode 0600, so neither is world-readable or -writable.
        busy_timeout_seconds: how long one write waits for another process's lock in
            total, across retries, before :class:`StoreBusy` is raised.

    Raises:
        StoreError: the file cannot be created or opened.
    """

    def __init__(self, path: Path, *, busy_timeout_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout_seconds = busy_timeout_seconds
        self._write_lock = threading.RLock()
        self._closed = False
        self._own_reader = threading.local()  # each thread's kept read-only connection (kept_read)
        self._kept: list[sqlite3.Connection] = []  # all of them, closed by close()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600))
            self._writer = self._connect(busy_timeout_seconds / _BUSY_ATTEMPTS)
            self._writer.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc

    def _connect(self, timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        # WAL + NORMAL survives a crash of the process (kill -9); only a power loss can
        # drop the last commits (https://sqlite.org/pragma.html#pragma_synchronous).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A fresh read-only connection, closed on exit. Reads never wait for the writer.

        Raises:
            StoreError: the database cannot be opened.
        """
        try:
            conn = self._connect(self.busy_timeout_seconds)
            conn.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read database {self.path}: {exc}") from exc
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def kept_read(self) -> Iterator[sqlite3.Connection]:
        """:meth:`read` on a read-only connection the calling thread keeps open for its
        next reads (closed by :meth:`close`): for reads made once per folder of a walk,
        where opening a connection each time cost the catch-up scan about 0.3 ms per
        folder (BENCHMARKS.md). Each statement runs on its own (autocommit), so no read
        snapshot is held between them and checkpoints are never kept waiting.

        Raises:
            StoreError: the database cannot be opened, or the pool is closed.
        """
        conn: sqlite3.Connection | None = getattr(self._own_reader, "conn", None)
        if conn is None:
            try:
                conn = self._connect(self.busy_timeout_seconds)
                conn.execute("PRAGMA query_only=ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read database {self.path}: {exc}") from exc
            with self._write_lock:
                if self._closed:
                    conn.close()
                    raise StoreError(f"database {self.path} is closed")
                self._kept.append(conn)
            self._own_reader.conn = conn
        if self._closed:
            raise StoreError(f"database {self.path} is closed")
        yield conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The shared write connection inside ``BEGIN IMMEDIATE`` … ``COMMIT``.

        Threads queue on a lock; another process holding the database lock is waited
        for with exponential backoff (50 ms doubling, with jitter) for about
        ``busy_timeout_seconds`` in total. An exception in the body rolls back.

        Raises:
            StoreBusy: the lock could not be taken in time.
            StoreError: the database is not writable.
        """
        with self._write_lock:
            if self._closed:
                raise StoreError(f"database {self.path} is closed")
            conn = self._writer
            self._begin(conn)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    raise StoreBusy(f"database {self.path} is locked: {exc}") from exc
                if isinstance(exc, sqlite3.Error):
                    # "database or disk is full", "disk I/O error", "readonly database"...
                    raise StoreError(f"cannot write to {self.path}: {exc}") from exc
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back on its own (a full disk, an I/O error).
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _begin(self, conn: sqlite3.Connection) -> None:
        delay = _BACKOFF_START_SECONDS
        for attempt in range(_BUSY_ATTEMPTS):
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StoreError(f"cannot write to {self.path}: {exc}") from exc
                if attempt == _BUSY_ATTEMPTS - 1:
                    break
                time.sleep(delay * (0.5 + random.random()))
                delay *= 2
        raise StoreBusy(
            f"database {self.path} stayed locked by another process for more than "
            f"{self.busy_timeout_seconds:g} s"
        )

    def close(self) -> None:
        """Close the write connection and the kept read connections (:meth:`kept_read`). Later writes raise :class:`StoreError`."""
        with self._write_lock:
            if not self._closed:
                self._closed = True
                self._writer.close()
                for conn in self._kept:
                    conn.close()
                self._kept.clear()
