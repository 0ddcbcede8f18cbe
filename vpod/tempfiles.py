"""vpod's temp files: created exclusively beside the source, never outliving a failure.

A remux writes ``.vpod-tmp-<claim><random><suffix>`` in the source's own folder (so the
final ``os.replace`` is an atomic rename on the same filesystem), created with
``O_EXCL`` and ``O_NOFOLLOW`` so it can never clobber or follow anything. ``<claim>``
names whose claim the file belongs to, ``j<job id>-<first 8 digits of the lease
token>-`` (:func:`claim_tag`, from a :class:`ClaimRegistry` such as
:class:`vpod.leases.ClaimTemps`; empty outside a claimed job), so a person or a
sweeper on any node can tell. Its path is recorded in the Store *before* it is created,
with the claim (:meth:`vpod.db.store.Store.register_temp`); :func:`sweep_temps`, run
when a daemon or a ``vpod process`` starts and by the daemon every
:data:`SWEEP_SECONDS`, removes whatever a crash (kill -9, power loss), a node that died
or lost its lease left behind: the Store hands it only the temps whose claim's lease
is gone (:meth:`~vpod.db.store.Store.pending_temps`).

Ownership: while a temp file is in use, the vpod process that made it holds an
exclusive ``flock`` on it (a descriptor of its own, closed on exec, so tools never
inherit it). The kernel drops that lock when the process ends, however it ends, so a
sweep can tell a crash's leftover (lock free) from a file that a live daemon or another
live ``vpod process`` on the same database is still writing (lock held): only the
first is removed. ``flock`` is what the pipeline already requires of every filesystem
it works on (it locks each source the same way).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol, runtime_checkable

import structlog

from vpod.db.store import Job, Store, StoreError

from vpod.watch.filters import TEMP_PREFIX

_CREATE_ATTEMPTS = 3  # fresh names to try when a sweep took a new temp file for a leftover
SWEEP_SECONDS = 60.0
"""How often the daemon sweeps leftover temp files (seconds): once per default lease
(``[database] lease_seconds``), so a dead node's temp goes soon after its claim ends."""
_CLAIM_TAG = re.compile(r"j(\d+)-([0-9a-f]{1,8})-")


class TempRegistry(Protocol):
    """Where temp file paths are recorded (the Store)."""

    def register_temp(self, path: Path) -> None:
        """Record ``path`` before the file is created."""

    def forget_temp(self, path: Path) -> None:
        """``path`` is gone (renamed into place or removed)."""

    def pending_temps(self) -> list[Path]:
        """Recorded paths not forgotten: in use, or what a crash left."""


@runtime_checkable
class ClaimRegistry(TempRegistry, Protocol):
    """A :class:`TempRegistry` that knows which claimed job the calling thread works on:
    :func:`temp_beside` names the temp files after it (:func:`claim_tag`)."""

    def current_job(self) -> Job | None:
        """The job this thread works on, or ``None``."""


def claim_tag(job: Job | None) -> str:
    """The start of a temp file's name made for ``job``: ``j<job id>-<first 8 digits of
    its lease token>-`` (``j12-0-`` without a lease), ``""`` without a job."""
    if job is None:
        return ""
    return f"j{job.id}-{(job.lease or '0')[:8]}-"


def claim_of(path: Path) -> tuple[int, str] | None:
    """``(job id, lease prefix)`` a temp file's name says it belongs to, or ``None`` (a
    name from before claims, or made outside a job)."""
    if not path.name.startswith(TEMP_PREFIX):
        return None
    found = _CLAIM_TAG.match(path.name, len(TEMP_PREFIX))
    return (int(found.group(1)), found.group(2)) if found else None


@contextmanager
def temp_beside(source: Path, registry: TempRegistry, suffix: str = ".mkv") -> Iterator[Path]:
    """Create an empty temp file next to ``source``, owned (``flock``-ed) by this process
    until exit; remove it on exit unless it was renamed away (moved into place).

    The file is created with mode 0600; the caller copies the source's mode before
    renaming it into place.

    Raises:
        OSError: the folder is not writable, or the disk is full.
    """
    path, fd = _create_owned(source, registry, suffix)
    try:
        yield path
    finally:
        _discard(path, fd, registry)


def _create_owned(source: Path, registry: TempRegistry, suffix: str) -> tuple[Path, int]:
    """Register, create and lock a new temp file; returns its path and the locked descriptor.

    Raises:
        OSError: creating failed, or every fresh name was swept away at once.
    """
    for _ in range(_CREATE_ATTEMPTS):
        tag = claim_tag(registry.current_job()) if isinstance(registry, ClaimRegistry) else ""
        path = source.parent / f"{TEMP_PREFIX}{tag}{secrets.token_hex(8)}{suffix}"
        registry.register_temp(path)
        try:
            # Read-only: an open for writing would make vpod's own writer checks (read
            # lease) see a writer on the file once it is renamed into place.
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except BaseException:
            registry.forget_temp(path)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: a sweep holds it for a moment at most
            if _names(path, fd):
                # Again: a sweep that found the name before the file existed has dropped it.
                registry.register_temp(path)
                return path, fd
        except BaseException:
            _discard(path, fd, registry)
            raise
        # Between our create and our lock, another vpod's sweep took it for a leftover
        # and removed it (it also forgot it): start over under a new name.
        os.close(fd)
        registry.forget_temp(path)
    raise OSError(errno.EAGAIN, f"temp files in {source.parent} were removed as soon as they were created")


def _discard(path: Path, fd: int, registry: TempRegistry) -> None:
    """Remove the temp file (if still there), then drop the lock, then the record: in that
    order, so no sweep ever sees an unlocked temp file that is still in use.

    A temp file that cannot be removed (the mount became read-only during the remux) is
    logged as ``temp_file_not_removed`` and stays registered, so the sweep at the next
    start removes it; the error that ended the remux, if any, is the one that propagates.
    """
    error = None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        error = exc.strerror or str(exc)
    finally:
        os.close(fd)
    if error is not None:
        structlog.get_logger("vpod").warning(
            "temp_file_not_removed", path=str(path), error=error, hint="removed at the next start of vpod"
        )
        return  # still registered: the next sweep removes it
    registry.forget_temp(path)


def _names(path: Path, fd: int) -> bool:
    """True when ``path`` is a name of the open file ``fd`` (same inode and device)."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    st = os.fstat(fd)
    return (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev)


class SweepResult:
    """What :func:`sweep_temps` did.

    Attributes:
        removed: leftovers removed (no live process owned them).
        in_use: registered temp files a live vpod process owns; left alone.
        failed: leftovers that could not be removed, with the OS error; still
            registered, so the next start tries again.
    """

    __slots__ = ("removed", "in_use", "failed")

    def __init__(self) -> None:
        self.removed: list[Path] = []
        self.in_use: list[Path] = []
        self.failed: list[tuple[Path, str]] = []


def sweep_temps(registry: TempRegistry) -> SweepResult:
    """Remove the temp files a crashed vpod left behind, or one that could not remove them.

    Only paths that were registered, still carry vpod's temp prefix and are not locked by
    a live process (see the module docstring) are removed; a file some live daemon or
    ``vpod process`` owns stays, and stays registered. Safe to run while other vpod
    processes work on the same database.

    Never raises for a file: what could not be removed is in the result.

    Raises:
        vpod.db.store.StoreBusy / StoreError: the registry could not be read or written.
    """
    result = SweepResult()
    for path in registry.pending_temps():
        if not path.name.startswith(TEMP_PREFIX):
            registry.forget_temp(path)  # never ours to remove
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            registry.forget_temp(path)
            if os.path.lexists(path):
                # Registered, then created by a live process between our look and the
                # forget: keep its record (the owner re-registers too, after locking).
                registry.register_temp(path)
            continue
        except OSError as exc:
            result.failed.append((path, exc.strerror or str(exc)))
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                result.in_use.append(path)  # a live vpod owns it
                continue
            except OSError as exc:
                result.failed.append((path, exc.strerror or str(exc)))
                continue
            if not _names(path, fd):
                continue  # renamed or replaced since we opened it: not the file we locked
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                result.failed.append((path, exc.strerror or str(exc)))
                continue  # keep it registered; the next start tries again
            result.removed.append(path)
        finally:
            os.close(fd)
        registry.forget_temp(path)
    return result


def log_sweep(result: SweepResult) -> None:
    """Log what a sweep did: ``temp_file_removed`` (warning level, so ``vpod process``
    shows it by default) per removed leftover, ``temp_file_not_removed`` per failure.
    Files in use by a live vpod are only counted at debug level."""
    log = structlog.get_logger("vpod")
    for path in result.removed:
        claim = claim_of(path)
        log.warning(
            "temp_file_removed", path=str(path), job=claim[0] if claim else None,
            why="left behind by a vpod that was killed, crashed or lost its claim's lease, or could not remove it "
            "(temp_file_not_removed)",
        )
    for path, error in result.failed:
        log.warning("temp_file_not_removed", path=str(path), error=error)
    if result.in_use:
        log.debug("temp_files_in_use", paths=[str(p) for p in result.in_use])


class TempSweeper:
    """The daemon's periodic sweep (a part the main loop ticks): :func:`sweep_temps`
    every ``interval_seconds``, so the temp file of a node that died, froze or lost its
    lease is removed by whichever node sweeps first, not only at a start.

    Args:
        registry: the Store (only temps whose lease is gone are handed out).
        interval_seconds: seconds between sweeps (:data:`SWEEP_SECONDS`).
        clock: monotonic seconds, the main loop's.
        enabled: False for a dry run (it changes nothing on disk).
    """

    def __init__(
        self, registry: TempRegistry, *, interval_seconds: float = SWEEP_SECONDS,
        clock: Callable[[], float] = lambda: 0.0, enabled: bool = True,
    ) -> None:
        self.registry = registry
        self.interval_seconds = interval_seconds
        self.enabled = enabled
        self._next = clock() + interval_seconds  # the start-up sweep just ran
        self.log = structlog.get_logger("vpod")

    def tick(self, now: float) -> float:
        """Sweep when due; returns the next deadline. A database that cannot be read is
        logged (``temp_sweep_failed``) and tried at the next deadline."""
        if now < self._next:
            return self._next
        self._next = now + self.interval_seconds
        if self.enabled:
            try:
                log_sweep(sweep_temps(self.registry))
            except StoreError as exc:
                self.log.warning("temp_sweep_failed", error=str(exc), retry_in_seconds=self.interval_seconds)
        return self._next
