"""Open the Store that ``[database]`` names: the one place that picks a backend.

Callers (the daemon, ``vpod process``, the CLI commands, ``vpod doctor``) get a
:class:`~vpod.db.store.Store` and never name a backend class. ``[database] url`` empty
(the default) means SQLite at ``[database] path``, exactly as on one machine; a
``postgresql://`` URL means the PostgreSQL store several nodes share
(:mod:`vpod.db.pg_store`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpod.db.owners import this_host
from vpod.db.pool import DaemonConnectionPool
from vpod.db.secrets import choose_password
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import Store

if TYPE_CHECKING:
    from vpod.config import DatabaseConfig


def open_store(database: DatabaseConfig, *, node: str | None = None) -> Store:
    """Open the store ``database`` names, creating it when missing, with its schema
    migrated to this vpod's version.

    ``node`` names this node (``[node] name``; ``None``: the host name): on a database
    several nodes share, library folders are bound per node.

    SQLite (``url`` empty): the file ``database.path`` (folder made with mode 0700, file
    0600); a write waits up to ``database.busy_timeout_seconds`` (seconds) for another
    process's lock before :class:`~vpod.db.store.StoreBusy` is raised.

    PostgreSQL (``url``): the password comes from ``password_file`` when set (else the
    URL, ``$PGPASSWORD`` or ``~/.pgpass``, libpq's sources) and is never shown: the
    store's :attr:`~vpod.db.store.Store.location` is the URL without it.

    Raises:
        vpod.db.store.StoreError: it cannot be opened, reached, created or migrated (a
            database newer than this vpod included); nothing is left open then.
    """
    if database.url:
        return _open_postgres(database, node or this_host())
    pool = DaemonConnectionPool(database.path, busy_timeout_seconds=database.busy_timeout_seconds)
    try:
        return SqliteStore(pool)
    except BaseException:
        pool.close()
        raise


def _open_postgres(database: DatabaseConfig, node: str) -> Store:
    # Imported here: a node on SQLite never loads the PostgreSQL driver.
    from vpod.db.pg_pool import PgPool, read_password
    from vpod.db.pg_store import PgStore

    # A password in the URL wins over password_file (vpod.db.secrets.choose_password).
    password, _source = choose_password(database.url, database.password_file, read_password)
    pool = PgPool(
        database.url, password=password, node=node,
        busy_timeout_seconds=database.busy_timeout_seconds,
    )
    try:
        return PgStore(pool, node=node)
    except BaseException:
        pool.close()
        raise
