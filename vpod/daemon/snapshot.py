"""The daemon's status snapshot: one place that ``/health``, ``STATUS=`` and ``vpod
status`` (through the database's ``daemon`` table) read, and the web page will."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from typing import Callable

import structlog

from vpod.db.secrets import hide_password
from vpod.db.store import StoreError
from vpod.db.store import Store
from vpod.events import FileFinished
from vpod.watch.ownership import LibraryClaims
from vpod.watch.supervision import RootSupervisor


class StatusSnapshot:
    """What the daemon is doing now, and its record in the database.

    Subscribes to :class:`~vpod.events.FileFinished` to count final outcomes.

    Args:
        store: where the ``daemon`` row is recorded.
        stop / paused: the daemon's Events (state ``stopping`` / ``paused``).
        workers / active: the pool's counts.
        roots: the root supervisor (``unwatched_paths``, ``unwatched``).
        claims: library markers other vpods hold (``claimed_elsewhere``).
        dead_threads: names of threads that died (:meth:`vpod.daemon.threads.Threads.dead`).
        started_at: epoch seconds.
        node: this node's name (``[node] name``), reported by ``/health``.
    """

    def __init__(
        self,
        store: Store,
        *,
        stop: threading.Event,
        paused: threading.Event,
        workers: Callable[[], int],
        active: Callable[[], int],
        roots: RootSupervisor,
        claims: LibraryClaims,
        dead_threads: Callable[[], list[str]],
        started_at: float,
        node: str,
    ) -> None:
        self.store = store
        self.stop = stop
        self.paused = paused
        self.workers = workers
        self.active = active
        self.roots = roots
        self.claims = claims
        self.dead_threads = dead_threads
        self.started_at = started_at
        self.node = node
        self.log = structlog.get_logger("vpod")
        self._counts = {"done": 0, "failed": 0, "skipped": 0}
        self._counts_lock = threading.Lock()
        self._recorded_unwatched: list[dict[str, str]] | None = None  # what vpod status was last told
        self._claims_recorded = -1  # LibraryClaims.changes last written to the database

    def state(self) -> str:
        """``running``, ``paused`` or ``stopping``."""
        if self.stop.is_set():
            return "stopping"
        return "paused" if self.paused.is_set() else "running"

    def counts(self) -> dict[str, int]:
        """Final outcomes since start: ``done``, ``failed``, ``skipped``."""
        with self._counts_lock:
            return dict(self._counts)

    def on_file_finished(self, event: FileFinished) -> None:
        """Event subscriber: count a final outcome."""
        if event.retrying:
            return
        result = event.result
        key = "done" if result.success else ("skipped" if result.skipped else "failed")
        with self._counts_lock:
            self._counts[key] += 1

    def text(self) -> str:
        """One line for systemd's ``STATUS=``."""
        try:
            queued: object = self.store.queue_depth()
        except StoreError:
            queued = "?"
        counts = self.counts()
        return (
            f"{self.state()}: {self.active()} active, {queued} queued, {counts['done']} done, "
            f"{counts['failed']} failed, {counts['skipped']} skipped"
        )

    def health(self) -> tuple[bool, dict[str, object]]:
        """``(healthy, body)`` for ``/health``: unhealthy while paused, stopping, when the
        database cannot be read, or when a thread died (``reason = "thread_died"``,
        ``threads`` names them: a watch root's observer among them leaves that root
        unheard). ``unwatched_paths`` lists configured folders not watched now (missing,
        deleted or moved away, or held by another vpod: ``claimed_elsewhere``; watched
        again when a folder has the path or the other vpod stops; or overlapping another
        root now), and ``unwatched`` the same with each one's reason
        (:mod:`vpod.watch.unwatched`); they do not make the daemon unhealthy: a restart
        would not bring them back. ``node`` names this node; ``database`` says where the
        database is (``location``, never with a password) and whether it answered
        (``connected``; else ``error``, the reason, password hidden)."""
        unwatched = self.roots.unwatched()
        database: dict[str, object] = {"location": hide_password(self.store.location), "connected": True}
        body: dict[str, object] = {
            "status": "healthy",
            "state": self.state(),
            "node": self.node,
            "database": database,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "workers": self.workers(),
            "active": self.active(),
            "unwatched_paths": [entry["path"] for entry in unwatched],
            "unwatched": unwatched,
            "claimed_elsewhere": self.claims.report(),
        }
        try:
            body["queue_depth"] = self.store.ping()
        except StoreError as exc:
            error = hide_password(str(exc))
            database.update(connected=False, error=error)
            body.update(status="unhealthy", reason="database_unreachable", error=error)
            return False, body
        if body["state"] != "running":
            body.update(status="unhealthy", reason=body["state"])
            return False, body
        dead = self.dead_threads()
        if dead:
            body.update(status="unhealthy", reason="thread_died", threads=dead)
            return False, body
        return True, body

    def record(self, state: str | None = None, **values: object) -> bool:
        """Write the ``daemon`` row (``state``: the current one when ``None``); a database
        error is logged ``daemon_state_not_recorded`` and returns False."""
        state = state or self.state()
        try:
            self.store.set_daemon_info(state=state, **values)
        except StoreError as exc:
            self.log.warning("daemon_state_not_recorded", state=state, error=str(exc))
            return False
        return True

    def tick(self, now: float) -> float:
        """Record ``unwatched_paths`` / ``unwatched`` and ``claimed_elsewhere`` for ``vpod status`` when
        they changed. No deadline of its own (``inf``): changes wake the main loop."""
        if self.claims.changes != self._claims_recorded:
            self._claims_recorded = self.claims.changes
            held = self.claims.report()
            self.record(claimed_elsewhere=json.dumps(held) if held else None)
        unwatched = self.roots.unwatched()
        if unwatched != self._recorded_unwatched and self.record(
            unwatched_paths=json.dumps([entry["path"] for entry in unwatched]), unwatched=json.dumps(unwatched)
        ):
            self._recorded_unwatched = unwatched
        return math.inf
