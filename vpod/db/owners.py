"""Owners of files in progress: a daemon or a ``vpod process``, as a record in the store.

A row being processed names its owner (``files.owner_id``). The owner record says who
it is (``kind``, ``host``, ``pid`` and the pid's start time, a random ``incarnation``)
and when it last said it was alive (``heartbeat_at``, renewed every
``heartbeat_seconds``). :func:`is_alive` is the one rule, so "is the owner alive" gets
the same answer for a local ``vpod process`` now and for another node later.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from vpod.hostname import host_name

HEARTBEAT_SECONDS = 30.0
"""How often an owner renews its heartbeat (seconds)."""
STALE_AFTER_HEARTBEATS = 3
"""An owner whose heartbeat is older than this many of its intervals is gone."""
OWNER_KINDS = ("daemon", "process")


@dataclass(frozen=True)
class OwnerRecord:
    """One row of ``owners``.

    Attributes:
        id: the row id (``files.owner_id``).
        kind: ``daemon`` (``vpod run``) or ``process`` (``vpod process``).
        host: the host name it runs on.
        pid: its process id on ``host``.
        pid_start: the process's start time as the kernel counts it (``/proc/PID/stat``
            field 22, clock ticks after boot; proc(5)), so a reused pid is not taken for
            it; ``None`` where it cannot be read.
        incarnation: random, new at each start.
        started_at / heartbeat_at: epoch seconds; ``heartbeat_seconds`` its interval.
        ended_at: when it ended cleanly (epoch seconds), else ``None``.
        released: rows of this node's earlier daemon incarnations that registering this
            one queued again (:meth:`vpod.db.store.Store.register_owner`); 0 otherwise.
    """

    id: int
    kind: str
    host: str
    pid: int
    pid_start: str | None
    incarnation: str
    started_at: float
    heartbeat_at: float
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    ended_at: float | None = None
    released: int = 0

    def describe(self) -> str:
        """Who it is, for messages: ``vpod process (pid 12, host h)``."""
        name = "the daemon" if self.kind == "daemon" else "vpod process"
        return f"{name} (pid {self.pid} on {self.host or '?'})"


def this_host() -> str:
    """The host name owner records are written with."""
    return host_name()


def new_incarnation() -> str:
    """A random incarnation id (32 hex digits)."""
    return secrets.token_hex(16)


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/PID/stat`` field 22, "starttime", in
    clock ticks after boot; proc(5)); ``None`` when it cannot be read (no such
    process, no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` on this host is alive and is the one that started at
    ``start`` (see :func:`process_start`; ``None``: the start is not compared)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    except OverflowError:
        return False
    if start is None:
        return True
    now = process_start(pid)
    return now is None or now == start


def is_alive(owner: OwnerRecord, *, now: float, host: str) -> bool:
    """The rule: an owner is alive unless it ended cleanly, its heartbeat is older than
    :data:`STALE_AFTER_HEARTBEATS` of its intervals, or it ran on ``host`` (this host)
    and its process is gone (or its pid now names another process)."""
    if owner.ended_at is not None:
        return False
    if now - owner.heartbeat_at > STALE_AFTER_HEARTBEATS * owner.heartbeat_seconds:
        return False
    if owner.host == host:
        return pid_alive(owner.pid, owner.pid_start)
    return True
