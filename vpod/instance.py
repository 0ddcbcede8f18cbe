"""One daemon per database: a lock file beside it, held for the daemon's lifetime.

Two daemons on one database would each sweep the other's temp files at start,
requeue the other's files in progress and overwrite each other's status. The lock is
an ``flock`` on ``DATABASE.lock``, released by the kernel when the process ends, so a
crash never leaves it stale.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vpod.errors import VpodError


class AlreadyRunning(VpodError):
    """Another vpod daemon holds the database's lock; the message names its pid."""


class InstanceLock:
    """The daemon's exclusive lock on ``<database>.lock``.

    Raises (from :meth:`acquire`):
        AlreadyRunning: another process holds it.
        OSError: the lock file cannot be created.
    """

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another vpod daemon (pid {holder}) is already using the database {self.path.with_suffix('')}; "
                "stop it first, or give this one its own [database] path"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (also dropped by the kernel when the process ends)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
