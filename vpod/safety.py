"""Opening a file for processing without surprises: symlinks, FIFOs, other writers.

:func:`open_for_processing` decides *which* file may be processed and holds an
exclusive ``flock`` on it, so two vpod workers (or a daemon and ``vpod process``) never
modify the same file at once. Rules:

* only regular files: a FIFO named ``x.mkv`` is never opened, a folder named
  ``x.mkv`` is skipped;
* a symlink is followed only when it points outside the watched roots and
  ``follow_symlinks`` is on (a target inside the roots is processed on its own), and
  then only to read it: the pipeline never writes outside the roots;
  symlink loops and dangling links are skipped;
* the file must resolve to a path under one of the roots, or be a followed symlink.

**Locks and claims.** With claims and leases (docs/architecture.md "Claims and
leases"), the database claim is what keeps two vpod processes of one database off one
file; the ``flock`` stays as a second guard. A worker that holds a live claim waits
for a ``flock`` held by another process at most ``lock_wait_seconds`` and then works
without it (``LockedFile.locked`` False): the holder is a node whose claim ended (frozen,
cut off from the database, not yet fenced), and its own compare-and-set will fail
before it replaces anything. A file some process has open *for writing* is still
refused (``locked``), claim or not.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from pathlib import Path

from vpod.errors import MediaError
from vpod.outcomes import Reason, Retry
from vpod.watch.writers import has_writer


_REOPEN_ATTEMPTS = 5  # times a waited-for file may turn out replaced before vpod gives up
LOCK_POLL_SECONDS = 0.1
"""How often a claimed file's lock held elsewhere is tried again (seconds)."""


class Skip(MediaError):
    """The file is not something vpod should process; ``reason`` says why."""

    def __init__(self, message: str, reason: Reason) -> None:
        # A file that vanished may come back with the same bytes, and one that changed
        # under vpod has new bytes: both are worth a new look; so is one in another
        # vpod's library, once this vpod takes the library over (Retry.NEXT_EVENT).
        super().__init__(message, reason=reason, permanent=reason.retry is not Retry.NEXT_EVENT)


class Busy(MediaError):
    """Another process holds the file's lock (another vpod worker or a ``vpod process``),
    or still has it open for writing."""

    def __init__(self, path: Path, why: str = "locked by another vpod process") -> None:
        super().__init__(f"{path}: {why}", reason=Reason.LOCKED, permanent=False)


def is_under(path: Path, roots: tuple[Path, ...]) -> bool:
    """True when ``path`` is one of ``roots`` or inside one (purely lexical)."""
    return any(path == root or root in path.parents for root in roots)


class LockedFile:
    """An open, ``flock``-ed regular file. ``path`` is the real path tools should use;
    ``locked`` is False when another process held the lock and the caller's claim let it
    go on without (:func:`open_for_processing` ``lock_wait_seconds``)."""

    __slots__ = ("path", "fd", "stat", "locked")

    def __init__(self, path: Path, fd: int, stat: os.stat_result, locked: bool = True) -> None:
        self.path = path
        self.fd = fd
        self.stat = stat
        self.locked = locked

    def still_current(self) -> bool:
        """True while ``path`` still names the inode that is locked (not replaced or removed)."""
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        return (now.st_ino, now.st_dev) == (self.stat.st_ino, self.stat.st_dev)

    def close(self) -> None:
        """Release the lock and close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "LockedFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _real_target(path: Path, roots: tuple[Path, ...], follow_symlinks: bool) -> Path:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Skip(f"{path}: vanished before processing", Reason.VANISHED) from None
    if not stat.S_ISLNK(st.st_mode):
        return path
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        raise Skip(f"{path}: dangling symlink", Reason.DANGLING_SYMLINK) from None
    except (RuntimeError, OSError) as exc:  # RuntimeError: symlink loop on Python < 3.13
        raise Skip(f"{path}: symlink loop ({exc})", Reason.SYMLINK_LOOP) from None
    if is_under(target, roots):
        raise Skip(f"{path}: symlink to {target}, which is processed on its own", Reason.SYMLINK_INSIDE)
    if not follow_symlinks:
        raise Skip(
            f"{path}: symlink to {target} outside the watched folders (set [watch] follow_symlinks = true)",
            Reason.SYMLINK_OUTSIDE,
        )
    return target


def open_for_processing(
    path: Path, roots: tuple[Path, ...], *, follow_symlinks: bool, wait: bool,
    lock_wait_seconds: float | None = None,
) -> LockedFile:
    """Open ``path`` read-only and take an exclusive ``flock`` on it.

    Args:
        path: an absolute path under one of ``roots``.
        roots: the folders vpod may write in (watch roots, or ``vpod process`` targets).
        follow_symlinks: follow symlinks that point outside ``roots`` (to read them).
        wait: block until the lock is free (``vpod process``) instead of raising
            :class:`Busy` (the daemon retries later); a file replaced meanwhile (another
            vpod's remux) is opened again under its name.
        lock_wait_seconds: the caller holds a live claim on the file (``None``: it does
            not): a lock held by another process is waited for at most this long (seconds,
            polled every :data:`LOCK_POLL_SECONDS`), then the file is returned unlocked
            (``locked`` False) instead of raising :class:`Busy` or waiting on; this
            overrides ``wait``.

    Raises:
        Skip: vanished, not a regular file, a symlink vpod must not follow, outside the roots.
        Busy: the lock is held elsewhere and ``wait`` is False.
        MediaError: permission denied (reason ``permission_denied``) or another OS error.
    """
    real = _real_target(path, roots, follow_symlinks)
    if real == path and not is_under(path, roots):
        raise Skip(f"{path}: outside the watched folders", Reason.OUTSIDE_ROOTS)
    # Waiting for another vpod's lock often ends with the file replaced by its remux;
    # then the new file is the one to look at (it probably conforms already).
    deadline = None if lock_wait_seconds is None else time.monotonic() + max(0.0, lock_wait_seconds)
    for _ in range(_REOPEN_ATTEMPTS if wait or deadline is not None else 1):
        locked = _lock_once(path, real, wait and deadline is None, deadline)
        if locked is not None:
            return locked
    raise Busy(path, "replaced again and again while waiting for its lock")



def require_regular_file(path: Path, st: os.stat_result) -> None:
    """Refuse what is not a regular file (``st`` from ``os.stat(..., follow_symlinks=False)``
    of ``path`` or its target): a FIFO named ``x.mkv`` must never be opened (the open or
    the read would block), a folder or device is no media file either.

    Raises:
        Skip: reason ``not_a_regular_file``, naming the kind (folder, FIFO, special file).
    """
    if not stat.S_ISREG(st.st_mode):
        kind = "folder" if stat.S_ISDIR(st.st_mode) else "FIFO" if stat.S_ISFIFO(st.st_mode) else "special file"
        raise Skip(f"{path}: a {kind}, not a regular file", Reason.NOT_A_REGULAR_FILE)


def _lock_once(path: Path, real: Path, wait: bool, deadline: float | None = None) -> LockedFile | None:
    """Open and lock ``real``; ``None`` when it was replaced while waiting for the lock.
    With a ``deadline`` (monotonic seconds: the caller holds a claim), a lock held
    elsewhere is polled for until then, and the file is returned unlocked after."""
    try:
        st = os.stat(real, follow_symlinks=False)
    except FileNotFoundError:
        raise Skip(f"{path}: vanished before processing", Reason.VANISHED) from None
    require_regular_file(path, st)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Skip(f"{path}: vanished before processing", Reason.VANISHED) from None
    except PermissionError as exc:
        raise MediaError(f"{path}: cannot read: {exc.strerror}", reason=Reason.PERMISSION_DENIED) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Skip(f"{path}: became a symlink while opening", Reason.SYMLINK_RACE) from None
        raise MediaError(f"{path}: cannot open: {exc.strerror}", reason=Reason.OS_ERROR, permanent=False) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Skip(f"{path}: not a regular file", Reason.NOT_A_REGULAR_FILE)
        held = _take_lock(fd, wait, deadline)
        if held is None:
            raise Busy(path)
        locked = LockedFile(real, fd, st, locked=held)
        if not locked.still_current():  # replaced while we waited for the lock
            if not wait and deadline is None:
                raise Busy(path)
            os.close(fd)
            return None
        if has_writer(fd, real):
            # A writer vpod does not know (a stalled copy, a tool orphaned by a crash of
            # an earlier vpod) still has it open: changing it now could corrupt it.
            raise Busy(path, "still open for writing by another process")
        return locked
    except BaseException:
        os.close(fd)
        raise


def _take_lock(fd: int, wait: bool, deadline: float | None) -> bool | None:
    """``flock(LOCK_EX)`` on ``fd`` (flock(2)): True once taken; without ``wait`` or a
    ``deadline``, ``None`` when another process holds it; with a ``deadline``, polled
    until then and False when still held (the caller's claim goes on without it)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait and deadline is None else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(LOCK_POLL_SECONDS, left))
