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
from vpod.db.records import CLOCK_SKEW_WARN_SECONDS
from vpod.db.store import Store
from vpod.errors import StoreError


class OwnerHeartbeat:
    """Renews ``store``'s owner heartbeat every ``interval_seconds``.

    Args:
        store: a store whose owner is registered (:meth:`Store.register_owner`).
        interval_seconds: the owner's ``heartbeat_seconds``.
        clock: monotonic seconds (tests pass their own).
        watch_clock: after each beat, read this node's clock offset from the database
            clock (:meth:`Store.nodes`, this node first) and log ``node_clock_skew``
            when it grows beyond :data:`~vpod.db.records.CLOCK_SKEW_WARN_SECONDS`
            (``node_clock_ok`` when it is back within); a daemon's heartbeat does.
        info: what each beat records about this node besides (``workers``...: see
            :meth:`Store.heartbeat`); ``None``: nothing.
    """

    def __init__(
        self, store: Store, *, interval_seconds: float = HEARTBEAT_SECONDS, clock: Callable[[], float] = time.monotonic,
        watch_clock: bool = False, info: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.watch_clock = watch_clock
        self.info = info
        self._next = clock() + interval_seconds  # registering wrote the first beat
        self._skewed = False
        self._clock_unread = watch_clock
        self.log = structlog.get_logger("vpod")

    def tick(self, now: float) -> float:
        """Beat when ``now`` (``clock`` seconds) reached the deadline; returns the next one.
        A busy or failing database is logged (``heartbeat_failed``) and tried at the next
        deadline: a few missed beats do not make the owner look dead."""
        beat = now >= self._next
        if beat or self._clock_unread:  # registering measured the offset: read it at the first tick
            try:
                if beat:
                    self._next = now + self.interval_seconds
                    self.store.heartbeat(**(self.info() if self.info is not None else {}))
                if self.watch_clock:
                    self._clock_unread = False
                    self._check_clock()
            except StoreError as exc:
                self.log.warning("heartbeat_failed", error=str(exc), retry_in_seconds=self.interval_seconds)
        return self._next

    def _check_clock(self) -> None:
        """Log a change of this node's clock skew (once per change, not at every beat)."""
        own = next(iter(self.store.nodes()), None)
        if own is None or own.clock_offset_seconds is None or own.clock_skewed == self._skewed:
            return
        self._skewed = own.clock_skewed
        offset = round(own.clock_offset_seconds, 3)
        if self._skewed:
            self.log.warning(
                "node_clock_skew", node=own.node, offset_seconds=offset, limit_seconds=CLOCK_SKEW_WARN_SECONDS,
            )
        else:
            self.log.info("node_clock_ok", node=own.node, offset_seconds=offset)

    def run(self, stop: threading.Event) -> None:
        """Beat until ``stop`` is set (a thread's body)."""
        while not stop.wait(max(0.0, self.tick(self.clock()) - self.clock())):
            pass
