"""Open the Store that ``[database]`` names: the one place that picks a backend.

Callers (the daemon, ``vpod process``, the CLI commands, ``vpod doctor``) get a
:class:`~vpod.db.store.Store` and never name a backend class. Today ``[database]``
has a ``path``, an SQLite file; a ``url`` (PostgreSQL, for several nodes on one
library) will be chosen here when it comes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpod.db.pool import DaemonConnectionPool
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import Store

if TYPE_CHECKING:
    from vpod.config import DatabaseConfig


def open_store(database: DatabaseConfig, *, node: str | None = None) -> Store:
    """Open the store ``database`` names, creating it when missing, with its schema
    migrated to this vpod's version.

    ``node`` names this node (``[node] name``; ``None``: the host name): on a database
    several nodes share, library folders are bound per node.

    SQLite: the file ``database.path`` (folder made with mode 0700, file 0600); a
    write waits up to ``database.busy_timeout_seconds`` (seconds) for another
    process's lock before :class:`~vpod.db.store.StoreBusy` is raised.

    Raises:
        vpod.db.store.StoreError: it cannot be opened, created or migrated (a database
            newer than this vpod included); nothing is left open then.
    """
    pool = DaemonConnectionPool(database.path, busy_timeout_seconds=database.busy_timeout_seconds)
    try:
        return SqliteStore(pool)
    except BaseException:
        pool.close()
        raise
