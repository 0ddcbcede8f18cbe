"""Reaching a running daemon from the command line: its record, ``vpod resume``, ``vpod retry``.

The daemon never polls the database. A command writes its request there first, then
sends SIGUSR1 to the pid the daemon recorded in the ``daemon`` table; the daemon's main
loop wakes, reads the request and acts (resume), or finds the requeued files (retry).
Without a running daemon, requeued files wait in the database for the next start.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from vpod.db.factory import open_store
from vpod.db.records import RetryOutcome
from vpod.db.store import Store, StoreError
from vpod.library_paths import store_library_paths

if TYPE_CHECKING:
    from vpod.config import DatabaseConfig

CONTROL_SIGNAL = signal.SIGUSR1
"""Tells the daemon to read control requests from the database."""


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs and is a vpod process (``/proc/PID/cmdline`` mentions vpod,
    which guards against a reused pid). A process of another user counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"vpod" in handle.read()
    except OSError:
        return True  # no /proc here, or hidden from us: trust the signal check


@dataclass(frozen=True)
class DaemonRecord:
    """What the daemon recorded about itself, with its state checked against the process table.

    ``state`` is ``running``, ``paused``, ``stopping`` or ``stopped``; ``stopped`` also
    when the recorded process is gone without saying so (``unclean_stop``).
    ``config`` is the file the daemon last loaded (at start or reload; ``None``: built-in
    defaults); ``watch_paths`` its configured folders, ``unwatched_paths`` those it does
    not watch now (missing, deleted or moved away), as ``/health`` lists them, and
    ``unwatched`` the same with each one's reason (``{"path", "reason", "detail"?}``,
    :mod:`vpod.watch.unwatched`; empty when recorded by an older daemon).
    """

    state: str
    pid: int | None
    started_at: float | None
    stopped_at: float | None
    version: str | None
    config: str | None
    workers: int | None
    paused_at: float | None
    paused_path: str | None
    paused_error: str | None
    unclean_stop: bool
    watch_paths: tuple[str, ...] = ()
    unwatched_paths: tuple[str, ...] = ()
    unwatched: tuple[dict[str, str], ...] = ()

    @property
    def running(self) -> bool:
        """A daemon process is up (running, paused or stopping)."""
        return self.state != "stopped"

    @classmethod
    def from_info(cls, info: dict[str, str]) -> "DaemonRecord":
        """Build from :meth:`Store.daemon_info`."""
        pid = _int(info.get("pid"))
        recorded = info.get("state", "stopped")
        alive = pid is not None and recorded != "stopped" and pid_alive(pid)
        return cls(
            state=recorded if alive else "stopped",
            pid=pid,
            started_at=_float(info.get("started_at")),
            stopped_at=_float(info.get("stopped_at")),
            version=info.get("version"),
            config=info.get("config"),
            workers=_int(info.get("workers")),
            paused_at=_float(info.get("paused_at")),
            paused_path=info.get("paused_path"),
            paused_error=info.get("paused_error"),
            unclean_stop=recorded != "stopped" and not alive and pid is not None,
            watch_paths=_paths(info.get("watch_paths")),
            unwatched_paths=_paths(info.get("unwatched_paths")),
            unwatched=_reasons(info.get("unwatched")),
        )


def _reasons(value: str | None) -> tuple[dict[str, str], ...]:
    try:
        found = json.loads(value or "[]")
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    return tuple(
        {str(k): str(v) for k, v in entry.items()} for entry in found if isinstance(entry, dict) and "path" in entry
    )


def open_existing_store(database: DatabaseConfig, *, node: str | None = None) -> Store:
    """Open an existing database for a command (through :func:`vpod.db.factory.open_store`).

    Run as root, the process first takes the uid and gid of the database's owner (the
    ``vpod`` user under systemd), so the SQLite side files (``-wal``, ``-shm``) it may
    create stay writable for the daemon, and the control signal is allowed.

    ``node``: this node's ``[node] name`` (``None``: the host name), see
    :func:`~vpod.db.factory.open_store`.

    A PostgreSQL database (``database.url``) is opened as it is: it is not a file here.

    Raises:
        StoreError: there is no database at ``database.path`` (vpod never ran with
            this config), or it cannot be opened.
    """
    if database.url:
        return open_store(database, node=node)
    path = database.path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"no database at {path}: vpod has not run with this config yet") from None
    except OSError as exc:
        raise StoreError(f"cannot open database {path}: {exc.strerror}") from exc
    if os.geteuid() == 0 and st.st_uid != 0:
        os.setgroups([])
        os.setgid(st.st_gid)
        os.setuid(st.st_uid)
    return open_store(database, node=node)


def wake_daemon(record: DaemonRecord) -> str | None:
    """Send the control signal to a running daemon; returns an error message or ``None``."""
    if not record.running or record.pid is None:
        return "no vpod daemon is running for this database"
    try:
        os.kill(record.pid, CONTROL_SIGNAL)
    except ProcessLookupError:
        return f"vpod (pid {record.pid}) has just exited"
    except PermissionError:
        return f"not allowed to signal vpod (pid {record.pid}); run this as the daemon's user or as root"
    return None


@dataclass(frozen=True)
class Requeued:
    """What :func:`requeue_files` did: ``requeued`` files queued again; ``refused``: each
    path that was not, with why (:class:`~vpod.db.records.RetryOutcome`: unknown, or not
    failed nor skipped)."""

    requeued: int
    refused: tuple[tuple[Path, RetryOutcome], ...] = ()


def requeue_files(store: Store, paths: Sequence[Path] = (), *, all_failed: bool = False) -> Requeued:
    """Queue failed (or skipped) files again with fresh attempts: every failed file when
    ``all_failed``, and each of ``paths`` (``vpod retry``, ``POST /api/retry``). A path
    through another name of a library folder (a bind mount, a symlink, a mount holding
    the library's marker) is that library's file. The caller wakes the daemon.

    Raises:
        StoreError: the database cannot be written.
    """
    requeued = store.retry_all_failed() if all_failed else 0
    refused: list[tuple[Path, RetryOutcome]] = []
    if paths:
        libraries = store_library_paths(store)
        named: dict[Path, Path] = {}
        for given in paths:
            located = libraries.locate(given)
            named[located[1] if located else given.absolute()] = given
        for found, outcome in store.retry_paths(named).items():
            if outcome is RetryOutcome.REQUEUED:
                requeued += 1
            else:
                refused.append((named[found], outcome))
    return Requeued(requeued, tuple(refused))


def request_resume(store: Store) -> DaemonRecord:
    """Record a resume request and wake the daemon; returns the daemon's record (before).

    Raises:
        StoreError: the request cannot be written.
    """
    record = DaemonRecord.from_info(store.daemon_info())
    if record.state == "paused":
        store.set_daemon_info(resume_requested_at=time.time())
    return record


def wait_for_state(store: Store, unwanted: str, timeout_seconds: float) -> DaemonRecord:
    """Read the daemon record until its state is no longer ``unwanted`` or the time is up
    (a command waiting for a confirmation; the daemon itself never polls)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        record = DaemonRecord.from_info(store.daemon_info())
        if record.state != unwanted or time.monotonic() >= deadline:
            return record
        time.sleep(0.1)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _paths(value: str | None) -> tuple[str, ...]:
    """A JSON list of paths from the daemon table (absent or unreadable: none)."""
    try:
        items = json.loads(value) if value is not None else []
    except ValueError:
        return ()
    return tuple(str(p) for p in items) if isinstance(items, list) else ()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
