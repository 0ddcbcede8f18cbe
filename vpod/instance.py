"""One daemon per node of a database: a lock file held for the daemon's lifetime.

Two daemons of one node would each sweep the other's temp files, release the other's
claims at start (a restarted node releases its previous incarnation's jobs) and
overwrite each other's status. The lock is an ``flock`` (flock(2)) on a file, released
by the kernel when the process ends, so a crash never leaves it stale:

* SQLite (one machine, one node): ``DATABASE.lock`` beside the database file, as
  before several nodes existed (:func:`vpod.db.schema` reads it to refuse upgrading a
  database an older daemon still uses). A second daemon on the same file is refused
  whatever its ``[node] name``.
* a database server (PostgreSQL, shared by several nodes; it has no file to lock
  beside): ``vpod-node-<database id>-<node hash>.lock`` in the folder of
  ``[database] path`` (the state directory, ``/var/lib/vpod`` under systemd), keyed by
  the database's identity (:meth:`vpod.db.store.Store.database_id`) and the ``[node]
  name``: two daemons of different node names on one machine may share a database;
  two of the same name on one machine may not.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from vpod.errors import VpodError


class AlreadyRunning(VpodError):
    """Another vpod daemon holds the lock; the message names its pid."""


class InstanceLock:
    """The daemon's exclusive lock on the file ``path``.

    Build one with :meth:`beside` (an SQLite file) or :meth:`for_node` (a database
    server), or :func:`instance_lock`, which picks.

    Args:
        path: the lock file (created with mode 0600, its folder 0700).
        taken_by: what the holder is, for the refusal (``"is already using the database
            X"``).
        hint: what to do about it.

    Raises (from :meth:`acquire`):
        AlreadyRunning: another process holds it.
        OSError: the lock file cannot be created.
    """

    def __init__(self, path: Path, *, taken_by: str, hint: str) -> None:
        self.path = path
        self.taken_by = taken_by
        self.hint = hint
        self._fd = -1

    @classmethod
    def beside(cls, database: Path) -> InstanceLock:
        """The lock of an SQLite database file: ``DATABASE.lock``."""
        return cls(
            database.with_name(database.name + ".lock"),
            taken_by=f"is already using the database {database}",
            hint="stop it first, or give this one its own [database] path",
        )

    @classmethod
    def for_node(cls, folder: Path, database_id: str, node: str, location: str) -> InstanceLock:
        """The lock of node ``node`` of the database ``database_id`` (at ``location``,
        for the message), in ``folder``. The node name is hashed (SHA-256) into the file
        name, so any name makes a valid one."""
        digest = hashlib.sha256(node.encode()).hexdigest()[:16]
        return cls(
            folder / f"vpod-node-{database_id}-{digest}.lock",
            taken_by=f"already runs as node {node!r} of the database {location}",
            hint="stop it first, or give this one its own [node] name",
        )

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(f"another vpod daemon (pid {holder}) {self.taken_by}; {self.hint}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (also dropped by the kernel when the process ends)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def several_nodes(database_path: Path, location: str) -> bool:
    """Whether the store at ``location`` (:attr:`vpod.db.store.Store.location`) is a
    database several nodes may share (a server), not the SQLite file ``database_path``
    (``[database] path``) of one machine."""
    return location != str(database_path)


def instance_lock(database_path: Path, *, location: str, database_id: str, node: str) -> InstanceLock:
    """The lock for a daemon of node ``node`` on the store at ``location``
    (:attr:`vpod.db.store.Store.location`) whose identity is ``database_id``:
    :meth:`InstanceLock.beside` when the store is the SQLite file ``database_path``
    (``[database] path``), else :meth:`InstanceLock.for_node` in that path's folder."""
    if not several_nodes(database_path, location):
        return InstanceLock.beside(database_path)
    return InstanceLock.for_node(database_path.parent, database_id, node, location)
