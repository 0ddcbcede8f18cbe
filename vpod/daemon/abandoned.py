"""Rows a killed ``vpod process`` left ``processing``: released and looked at again."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import structlog

from vpod.db.store import Store, StoreError
from vpod.results import display_path
from vpod.watch.intake import root_of

RECHECK_SECONDS = 5.0


class AbandonedRows:
    """Every :data:`RECHECK_SECONDS`, releases rows whose owner died (``interrupted``):
    the store judges by the owner records (:meth:`Store.owner_alive`: ended, a stale
    heartbeat, or on this host a pid that is no longer that process);
    those under the watched roots go through the settle time again, like any event
    (their events were dropped as already queued).

    Args:
        store: the queue.
        roots: the watched roots now.
        look_again: hands a path to the stabilizer.
    """

    def __init__(self, store: Store, roots: Callable[[], tuple[Path, ...]], look_again: Callable[[Path], None]) -> None:
        self.store = store
        self.roots = roots
        self.look_again = look_again
        self.log = structlog.get_logger("vpod")
        self._next_check = -math.inf

    def tick(self, now: float) -> float:
        """Release what is due; returns the next deadline."""
        if now < self._next_check:
            return self._next_check
        self._next_check = now + RECHECK_SECONDS
        try:
            paths = self.store.abandon_dead_owners()
        except StoreError as exc:
            self.log.warning("database_busy", error=str(exc), retry_in_seconds=RECHECK_SECONDS)
            return self._next_check
        for path in paths:
            inside = root_of(path, tuple(self.roots())) is not None
            self.log.warning("abandoned_file_released", path=display_path(path), looked_at_again=inside)
            if inside:
                self.look_again(path)
        return self._next_check
