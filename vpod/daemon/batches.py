"""Closing the daemon's batch windows: when a window's time is up and the daemon is
idle, or at shutdown; a closed batch is recorded and published."""

from __future__ import annotations

import math
import threading
from typing import Callable

import structlog

from vpod.batch import BatchWindows
from vpod.config import VPOConfig
from vpod.db.store import StoreError
from vpod.db.store import Store
from vpod.events import BatchClosed, EventBus


class BatchCloser:
    """Closes batch windows (:class:`vpod.batch.BatchWindows`).

    Args:
        windows: the open windows.
        store: where closed batches are recorded.
        events: :class:`~vpod.events.BatchClosed` is published here (logged
            ``batch_completed``, counted in the metrics).
        busy: True while a file is in progress or waits in memory.
        paused: set while processing is paused.
    """

    def __init__(
        self,
        windows: BatchWindows,
        store: Store,
        events: EventBus,
        *,
        busy: Callable[[], bool],
        paused: threading.Event,
    ) -> None:
        self.windows = windows
        self.store = store
        self.events = events
        self.busy = busy
        self.paused = paused
        self.log = structlog.get_logger("vpod")

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[processing] batch_window_seconds``."""
        self.windows.window_seconds = config.processing.batch_window_seconds

    def tick(self, now: float) -> float:
        """Close the windows that are ready; returns the next window deadline
        (``time.monotonic`` seconds, the windows' clock; ``inf``: none)."""
        self.close()
        deadline = self.windows.next_deadline()
        return math.inf if deadline is None else deadline

    def close(self, *, final: bool = False) -> None:
        """Close ready windows; ``final`` (shutdown): every window."""
        idle = final or not self.busy()
        if idle and not final and not self.paused.is_set():
            try:
                idle = not self.store.next_queued(1, ())
            except StoreError:
                idle = False
        if idle and self.windows.waiting() and (final or self.paused.is_set() or self._nothing_queued()):
            # Retries that will not come back to this daemon now: their windows close without them.
            self.windows.drop_waiting()
        for batch in self.windows.close_ready(idle):
            try:
                self.store.record_batch(batch, "daemon")
            except StoreError as exc:
                self.log.error("batch_not_recorded", batch_id=batch.batch_id, error=str(exc))
            self.events.publish(BatchClosed(batch, "daemon"))

    def _nothing_queued(self) -> bool:
        """No row is queued, due now or later: a retry a window waits for was taken by
        another process (``vpod process``) and will not come back."""
        try:
            return self.store.queue_depth() == 0
        except StoreError:
            return False
