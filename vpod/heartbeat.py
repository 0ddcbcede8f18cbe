"""The owner heartbeat: how a daemon or ``vpod process`` tells the store it is alive.

Rows in progress name their owner (:mod:`vpod.db.owners`); another process judges the
owner dead once its heartbeat is older than a few intervals. :meth:`OwnerHeartbeat.tick`
suits a loop that schedules by deadlines (the daemon's main loop);
:meth:`OwnerHeartbeat.run` is a thread's body (``vpod process``).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import structlog

from vpod.db.owners import HEARTBEAT_SECONDS
from vpod.db.store import Store
from vpod.errors import StoreError


class OwnerHeartbeat:
    """Renews ``store``'s owner heartbeat every ``interval_seconds``.

    Args:
        store: a store whose owner is registered (:meth:`Store.register_owner`).
        interval_seconds: the owner's ``heartbeat_seconds``.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, store: Store, *, interval_seconds: float = HEARTBEAT_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self.clock = clock
        self._next = clock() + interval_seconds  # registering wrote the first beat
        self.log = structlog.get_logger("vpod")

    def tick(self, now: float) -> float:
        """Beat when ``now`` (``clock`` seconds) reached the deadline; returns the next one.
        A busy or failing database is logged (``heartbeat_failed``) and tried at the next
        deadline: a few missed beats do not make the owner look dead."""
        if now >= self._next:
            self._next = now + self.interval_seconds
            try:
                self.store.heartbeat()
            except StoreError as exc:
                self.log.warning("heartbeat_failed", error=str(exc), retry_in_seconds=self.interval_seconds)
        return self._next

    def run(self, stop: threading.Event) -> None:
        """Beat until ``stop`` is set (a thread's body)."""
        while not stop.wait(max(0.0, self.tick(self.clock()) - self.clock())):
            pass
