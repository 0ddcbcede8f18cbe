"""One instance's list of series or movies, cached, and when it is fetched again.

The refresh rule (docs/original-language.md):

- the list is fetched when a file first needs it, and again once it is older than the
  instance's ``refresh_seconds`` (600 s by default);
- a file that no folder of the list holds, but that lies where the instance keeps its
  items (beside other series or movies: the instance may have added it since), makes
  the list be fetched again if it is older than :data:`MISS_REFETCH_SECONDS`; while it
  is younger, the instance cannot say yet: the file finds it unavailable (a
  ``when_unavailable = "retry"`` file waits for the next fetch instead of being judged
  without its answer); a file elsewhere makes no request and is not the instance's;
- after a failed fetch the instance is not asked again for :data:`UNAVAILABLE_HOLD_SECONDS`:
  files meanwhile get the failure at once, so a slow instance costs one worker one
  ``timeout_seconds``, not every worker;
- one fetch at a time per instance; workers that need the list meanwhile wait for it
  (at most its ``timeout_seconds``);
- a fetch that fails keeps the last list in force: files its folders hold still get
  their answer; only files it cannot place are "unavailable".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import structlog

from vpod.arr_config import ArrInstance
from vpod.original.client import ArrItem, ArrUnavailable, fetch_items
from vpod.original.folders import ArrTitle, FolderIndex

MISS_REFETCH_SECONDS = 30.0
"""A file the list cannot place fetches the list again when it is older than this."""

UNAVAILABLE_HOLD_SECONDS = 5.0
"""After a failed fetch, the instance is not asked again for this long (seconds)."""


@dataclass(frozen=True)
class Lookup:
    """What one instance says about one file: ``title`` (its series or movie holds the
    file), or ``unavailable`` (why the instance could not say), or neither (it does not
    hold the file)."""

    title: ArrTitle | None = None
    unavailable: str | None = None


class ArrCatalog:
    """The cached list of one instance; thread-safe, shared by all workers.

    Args:
        instance: the instance (``[arr.NAME]``).
        clock: monotonic seconds (tests pass a fake one).
        fetch: reads the list (:func:`vpod.original.client.fetch_items`; tests may
            pass another); raises :class:`ArrUnavailable`.
    """

    def __init__(
        self,
        instance: ArrInstance,
        *,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[ArrInstance], list[ArrItem]] = fetch_items,
    ) -> None:
        self.instance = instance
        self.clock = clock
        self.fetch = fetch
        self._state = threading.Lock()  # guards the fields below
        self._fetching = threading.Lock()  # one fetch at a time
        self._index: FolderIndex | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._error = ""
        self.log = structlog.get_logger("vpod")

    def lookup(self, path: Path) -> Lookup:
        """The series or movie holding ``path`` (fetching the list as the refresh rule
        says); never raises for the instance's failures."""
        index, fetched_at = self._current()
        error: str | None = None
        refreshed = False
        if index is None or self.clock() - fetched_at >= self.instance.refresh_seconds:
            index, error = self._refresh("first" if index is None else "stale")
            refreshed = error is None
        if index is None:
            return Lookup(unavailable=error or f"{self.instance.describe()}: no list yet")
        title = index.find(path)
        if title is not None:
            return Lookup(title)
        if not index.may_hold(path) or refreshed:
            return Lookup()
        if error is not None:
            return Lookup(unavailable=error)  # an old list, and the file may be new to it
        age = self.clock() - self._current()[1]
        if age < MISS_REFETCH_SECONDS:
            return Lookup(
                unavailable=f"{self.instance.describe()}: no item holds {path} in its list of {age:.0f} s ago; "
                f"the list is fetched again once it is {MISS_REFETCH_SECONDS:.0f} s old"
            )
        index, error = self._refresh("miss")
        if error is not None or index is None:
            return Lookup(unavailable=error)
        title = index.find(path)
        return Lookup(title) if title is not None else Lookup()

    def _current(self) -> tuple[FolderIndex | None, float]:
        with self._state:
            return self._index, self._fetched_at

    def _refresh(self, why: str) -> tuple[FolderIndex | None, str | None]:
        """Fetch the list unless another thread just did, or the instance failed within
        :data:`UNAVAILABLE_HOLD_SECONDS`. Returns (the list in force, the error of this
        attempt or ``None``)."""
        asked_at = self.clock()
        if not self._fetching.acquire(timeout=self.instance.timeout_seconds):
            return self._current()[0], f"{self.instance.describe()}: still waiting for an earlier request"
        try:
            with self._state:
                if self._fetched_at > asked_at and self._index is not None:
                    return self._index, None  # another worker fetched it meanwhile
                if self._failed_at is not None and asked_at - self._failed_at < UNAVAILABLE_HOLD_SECONDS:
                    return self._index, self._error
            started = self.clock()
            try:
                items = self.fetch(self.instance)
            except ArrUnavailable as exc:
                error = f"{self.instance.describe()}: {exc}"
                with self._state:
                    self._failed_at, self._error = self.clock(), error
                self.log.warning(
                    "arr_unavailable", instance=self.instance.name, kind=self.instance.kind, url=self.instance.url,
                    error=str(exc), kept_list=self._index is not None,
                )
                return self._current()[0], error
            index = FolderIndex(self.instance, items)
            with self._state:
                self._index, self._fetched_at, self._failed_at = index, self.clock(), None
            self.log.info(
                "arr_list_fetched", instance=self.instance.name, kind=self.instance.kind, items=len(index),
                why=why, duration_seconds=round(self.clock() - started, 3),
            )
            return index, None
        finally:
            self._fetching.release()
