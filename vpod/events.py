"""What happens to files, batches and watch roots, published to subscribers.

The daemon and ``vpod process`` publish events on an :class:`EventBus`; logging
(:class:`vpod.eventlog.EventLog`), metrics (:class:`vpod.metrics.Metrics`) and the
daemon's own counters subscribe. A subscriber is any object with ``on_<event name>``
methods (the dispatch of watchdog's ``FileSystemEventHandler``): it defines the ones it
cares about. Notifications, webhooks and a web page subscribe the same way.

Events are immutable and carry the objects the code already has (a
:class:`~vpod.results.FileProcessingResult`, a :class:`~vpod.results.BatchResult`).
Publishing happens on the thread where the event occurs (a worker, an observer, the
main loop): subscribers must be thread-safe and quick.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any, ClassVar

import structlog

from vpod.results import BatchResult, FileProcessingResult


class Event:
    """Base of all events; ``name`` selects the subscriber method ``on_<name>``.

    Immutable (assigning raises :class:`dataclasses.FrozenInstanceError`), compared and
    hashed by type and fields, shown as ``Name(field=value, ...)``. The events below are
    written out with ``__slots__`` instead of as frozen dataclasses: every ``vpod process``
    imports this module, and a frozen dataclass costs about 0.6 ms to build at each start
    (six methods compiled from source; contrib/bench/findings.md, round 3). A subclass may
    also be a ``@dataclass(frozen=True)`` (its generated methods replace these).
    """

    __slots__: tuple[str, ...] = ()
    name: ClassVar[str] = "event"

    def _set(self, **fields: Any) -> None:
        """Set the fields once, from ``__init__``."""
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, key) for key in self.__slots__)

    def __setattr__(self, key: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {key!r}")

    def __delattr__(self, key: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {key!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.__slots__)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))


class FilesQueued(Event):
    """New rows were queued in the database (each is logged ``file_queued`` by the intake)."""

    __slots__ = ()
    name: ClassVar[str] = "files_queued"


class FileStarted(Event):
    """A worker took ``path`` from the queue and starts it in batch ``batch_id``."""

    __slots__ = ("path", "worker", "batch_id")
    name: ClassVar[str] = "file_started"
    path: Path
    worker: str
    batch_id: str

    def __init__(self, path: Path, worker: str, batch_id: str) -> None:
        self._set(path=path, worker=worker, batch_id=batch_id)


class FileFinished(Event):
    """A file's attempt ended; ``retrying``: it went back to the queue (not final)."""

    __slots__ = ("result", "retrying")
    name: ClassVar[str] = "file_finished"
    result: FileProcessingResult
    retrying: bool

    def __init__(self, result: FileProcessingResult, retrying: bool) -> None:
        self._set(result=result, retrying=retrying)


class BatchClosed(Event):
    """A batch closed (``source``: ``"daemon"`` or ``"process"``)."""

    __slots__ = ("batch", "source")
    name: ClassVar[str] = "batch_closed"
    batch: BatchResult
    source: str

    def __init__(self, batch: BatchResult, source: str) -> None:
        self._set(batch=batch, source=source)


class ProcessingPaused(Event):
    """The daemon stopped starting files after ``result`` failed under ``on_error = "fail"``."""

    __slots__ = ("result",)
    name: ClassVar[str] = "processing_paused"
    result: FileProcessingResult

    def __init__(self, result: FileProcessingResult) -> None:
        self._set(result=result)


class ProcessingResumed(Event):
    """``vpod resume`` lifted a pause; ``paused_path`` is the file that caused it."""

    __slots__ = ("paused_path",)
    name: ClassVar[str] = "processing_resumed"
    paused_path: str | None

    def __init__(self, paused_path: str | None) -> None:
        self._set(paused_path=paused_path)


class WatchRootLost(Event):
    """A watched root was deleted, or (``moved``) renamed away or replaced."""

    __slots__ = ("root", "moved", "library")
    name: ClassVar[str] = "watch_root_lost"
    root: Path
    moved: bool
    library: str | None  # the root's library name

    def __init__(self, root: Path, moved: bool = False, library: str | None = None) -> None:
        self._set(root=root, moved=moved, library=library)


class WatchRootRestored(Event):
    """A folder has a lost root's path again and is watched."""

    __slots__ = ("root", "library")
    name: ClassVar[str] = "watch_root_restored"
    root: Path
    library: str | None  # the root's library name

    def __init__(self, root: Path, library: str | None = None) -> None:
        self._set(root=root, library=library)


class EventBus:
    """Delivers events to subscribers in the order they subscribed.

    Subscribe while wiring, before any thread publishes (the list is not locked). A
    subscriber that raises is logged (``event_subscriber_failed``, with the traceback)
    and the others still get the event: a broken notifier must not stop processing.
    """

    def __init__(self) -> None:
        self._subscribers: list[object] = []
        self.log = structlog.get_logger("vpod")

    def subscribe(self, subscriber: object) -> None:
        """Add ``subscriber``; it receives each event whose ``on_<name>`` method it has."""
        self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        """Call ``on_<event.name>(event)`` on every subscriber that has it."""
        method_name = f"on_{event.name}"
        for subscriber in self._subscribers:
            method = getattr(subscriber, method_name, None)
            if method is None:
                continue
            try:
                method(event)
            except Exception:
                self.log.exception(
                    "event_subscriber_failed", subscriber=type(subscriber).__name__, event_name=event.name
                )
