"""The systemd reporter: ``STATUS=`` at most once a second, ``WATCHDOG=1`` only while
every thread runs (sd_notify(3), sd_watchdog_enabled(3); the protocol is in
:mod:`vpod.notify`)."""

from __future__ import annotations

import math
import threading
from typing import Callable

from vpod.notify import SystemdNotifier

STATUS_MIN_INTERVAL_SECONDS = 1.0  # STATUS= to systemd at most this often


class SystemdReporter:
    """Tells systemd how the daemon is; a no-op when systemd did not ask.

    Args:
        notifier: the sd_notify socket.
        text: the ``STATUS=`` line now (:meth:`vpod.daemon.snapshot.StatusSnapshot.text`).
        dead_threads: names of threads that died; ``WATCHDOG=1`` is withheld while any
            did (incl. observers), so systemd's watchdog restarts vpod.
        wake: wakes the main loop.
    """

    def __init__(
        self,
        notifier: SystemdNotifier,
        *,
        text: Callable[[], str],
        dead_threads: Callable[[], list[str]],
        wake: Callable[[], None],
    ) -> None:
        self.notifier = notifier
        self.text = text
        self.dead_threads = dead_threads
        self.wake = wake
        self._dirty = threading.Event()
        self._sent_at = -math.inf
        self._next_watchdog = -math.inf

    def changed(self, *_event: object) -> None:
        """Something ``STATUS=`` shows changed (any thread; also an event subscriber)."""
        self._dirty.set()
        self.wake()

    on_files_queued = on_file_started = on_file_finished = on_processing_paused = on_processing_resumed = changed

    def ready(self, now: float) -> None:
        """``READY=1`` with the status: start-up or a reload is complete."""
        self.notifier.ready(self.text())
        self._sent_at = now

    def tick(self, now: float) -> float:
        """Send what is due; returns the next deadline (``inf``: nothing scheduled)."""
        if not self.notifier.enabled:
            return math.inf
        deadlines = [math.inf]
        if self._dirty.is_set():
            if now - self._sent_at >= STATUS_MIN_INTERVAL_SECONDS:
                self._dirty.clear()
                self._sent_at = now
                self.notifier.status(self.text())
            else:
                deadlines.append(self._sent_at + STATUS_MIN_INTERVAL_SECONDS)
        interval = self.notifier.watchdog_seconds
        if interval is not None:
            # Only a daemon whose threads all run is alive; otherwise systemd's watchdog restarts it.
            if now >= self._next_watchdog:
                if not self.dead_threads():  # withheld while dead; looked at again after interval
                    self.notifier.watchdog()
                self._next_watchdog = now + interval
            deadlines.append(self._next_watchdog)
        return min(deadlines)
