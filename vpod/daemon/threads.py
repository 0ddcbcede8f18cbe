"""The daemon's threads: started guarded, and which of them died."""

from __future__ import annotations

import math
import threading
from typing import Callable

import structlog

RECHECK_SECONDS = 5.0  # dead threads are looked for (and logged) at least this often


class Threads:
    """Starts the daemon's threads and tells which ones that should run do not.

    A thread that dies of an unexpected exception logs ``thread_died`` with the
    traceback, sets ``crashed`` and ``stop`` and wakes the main loop: vpod stops loudly
    (exit status 70) rather than idling on with a dead thread.

    Args:
        stop: the daemon's stop Event.
        crashed: set when a thread died of an exception.
        wake: wakes the main loop.
    """

    def __init__(self, stop: threading.Event, crashed: threading.Event, wake: Callable[[], None]) -> None:
        self.stop = stop
        self.crashed = crashed
        self.wake = wake
        self.log = structlog.get_logger("vpod")
        self.started: list[threading.Thread] = []
        self.essential: list[threading.Thread] = []  # must run until stop
        self.others: list[Callable[[], list[str]]] = []  # more names of dead threads (workers, observers)
        self._reported: set[str] = set()
        self._next_check = -math.inf

    def spawn(self, name: str, target: Callable[[], None], *, essential: bool = False) -> threading.Thread:
        """Start ``target`` in a daemon thread named ``name``."""

        def guarded() -> None:
            try:
                target()
            except BaseException:  # a bug: stop loudly rather than idle on with a dead thread
                self.log.exception(
                    "thread_died",
                    thread=name,
                    hint="vpod stops with exit status 70; under systemd (Restart=on-failure) it is started again",
                )
                self.crashed.set()
                self.stop.set()
                self.wake()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self.started.append(thread)
        if essential:
            self.essential.append(thread)
        return thread

    def dead(self) -> list[str]:
        """Names of threads that should run and do not: vpod's own and those named by
        :attr:`others` (workers; observers of watched roots, whose roots go unheard);
        each is logged once (``thread_died``)."""
        dead = [t.name for t in self.essential if not t.is_alive()]
        for source in self.others:
            dead += source()
        for name in set(dead) - self._reported:
            self.log.error("thread_died", thread=name, hint="systemd's watchdog will restart vpod")
        self._reported.update(dead)
        return dead

    def tick(self, now: float) -> float:
        """Look for dead threads every :data:`RECHECK_SECONDS` (logged even where no
        systemd watchdog asks); returns the next deadline."""
        if now >= self._next_check:
            self._next_check = now + RECHECK_SECONDS
            self.dead()
        return self._next_check

    def join(self, deadline: float, clock: Callable[[], float]) -> list[str]:
        """Wait for every started thread until ``deadline`` (``clock``'s seconds); returns
        the names of those still running."""
        for thread in self.started:
            thread.join(max(0.0, deadline - clock()))
        return [t.name for t in self.started if t.is_alive()]
