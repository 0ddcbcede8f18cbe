"""Facts about a database for ``vpod doctor``, read without migrating or writing it.

:func:`diagnose` picks the backend the way :func:`vpod.db.factory.open_store` does and
returns :class:`DatabaseFacts`; ``vpod doctor`` (:mod:`vpod.doctor`) judges them, so the
SQL of each backend stays here, in :mod:`vpod.db`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpod.db.schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from vpod.errors import StoreError

if TYPE_CHECKING:
    from vpod.config import DatabaseConfig


@dataclass(frozen=True)
class Keepalive:
    """TCP keepalive settings of one connection's socket (tcp(7): ``SO_KEEPALIVE``,
    ``TCP_KEEPIDLE``, ``TCP_KEEPINTVL``, ``TCP_KEEPCNT``; seconds and probes).

    ``enabled`` False: a peer that vanished without closing the connection is never
    noticed on an idle connection."""

    enabled: bool
    idle_seconds: int
    interval_seconds: int
    count: int

    @property
    def dead_after_seconds(self) -> int:
        """How long an idle connection to a vanished peer takes to be found dead."""
        return self.idle_seconds + self.interval_seconds * self.count


@dataclass(frozen=True)
class Pooler:
    """Whether the connections pass through a pooler that shares server sessions
    between clients (PgBouncer ``pool_mode = transaction`` or ``statement``).

    ``shares_sessions`` True: seen (``evidence`` says how); False: two connections had
    two sessions of their own, each kept across statements."""

    shares_sessions: bool
    evidence: str


@dataclass(frozen=True)
class DatabaseFacts:
    """What ``vpod doctor`` learns about the configured database.

    ``backend``: ``sqlite`` or ``postgresql``; ``location`` never holds a password;
    ``server``: the engine and its version; ``schema_found``: the schema version in the
    database (``None``: none yet, a new database; vpod creates it), ``schema_supported``
    the one this vpod writes; ``transport``: ``file``, ``tcp`` or ``unix``;
    ``client_keepalive``: this node's socket (``None`` unless TCP);
    ``server_keepalive``: the server's on its side of the connection (``None`` unless
    TCP on PostgreSQL); ``pooler``: ``None`` on SQLite; ``database_id``: the
    database's identity (:meth:`vpod.db.store.Store.database_id`, 32 hex digits;
    ``None`` before its schema exists), which library markers name.
    """

    backend: str
    location: str
    server: str
    schema_found: int | None
    schema_supported: int
    transport: str
    client_keepalive: Keepalive | None = None
    server_keepalive: Keepalive | None = None
    pooler: Pooler | None = None
    unwritable: str | None = None
    """Why this user cannot write the database (``None``: it can, or it was not tried:
    PostgreSQL, whose rights the store's own statements prove)."""
    database_id: str | None = None


def diagnose(database: DatabaseConfig, *, node: str) -> DatabaseFacts:
    """Connect to the database ``database`` names (``node``: this node's name, for the
    connection's ``application_name``) and read its facts; nothing is written and no
    schema is migrated. A SQLite file that does not exist yet is reported as a new
    database (``schema_found`` ``None``), not created; an existing one is opened for
    writing (its side files are made as this user: run it as the daemon's user) and its
    write lock taken and given back, to prove this user may write it.

    Raises:
        StoreError: the database cannot be reached or read (the message names it and
            why, never the password).
    """
    if database.url:
        from vpod.db.pg_diagnose import diagnose_postgres  # psycopg only where PostgreSQL is used

        return diagnose_postgres(database, node=node)
    return _diagnose_sqlite(database)


def _diagnose_sqlite(database: DatabaseConfig) -> DatabaseFacts:
    """SQLite: ``PRAGMA user_version`` read through a connection that may not create the
    file (https://www.sqlite.org/uri.html, ``mode=rw``), then ``BEGIN IMMEDIATE`` (the
    write lock) rolled back."""
    path = database.path
    server = f"SQLite {sqlite3.sqlite_version}"
    if not path.exists():
        return DatabaseFacts("sqlite", str(path), server, None, SQLITE_SCHEMA_VERSION, "file")
    unwritable = None
    try:
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=database.busy_timeout_seconds,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from None
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        database_id = None
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'identity'").fetchone():
            row = conn.execute("SELECT database_id FROM identity").fetchone()
            database_id = str(row[0]) if row else None
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            unwritable = f"cannot write to {path}: {exc}"
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read database {path}: {exc}") from None
    finally:
        conn.close()
    return DatabaseFacts(
        "sqlite", str(path), server, found or None, SQLITE_SCHEMA_VERSION, "file",
        unwritable=unwritable, database_id=database_id,
    )
