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

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import structlog

from vpod.results import BatchResult, FileProcessingResult


class Event:
    """Base of all events; ``name`` selects the subscriber method ``on_<name>``.

    A plain class, not a dataclass: it has no field, and each event below is a frozen
    dataclass of its own (one dataclass fewer to build at every start).
    """

    __slots__ = ()
    name: ClassVar[str] = "event"


@dataclass(frozen=True)
class FilesQueued(Event):
    """New rows were queued in the database (each is logged ``file_queued`` by the intake)."""

    name: ClassVar[str] = "files_queued"


@dataclass(frozen=True)
class FileStarted(Event):
    """A worker took ``path`` from the queue and starts it in batch ``batch_id``."""

    name: ClassVar[str] = "file_started"
    path: Path
    worker: str
    batch_id: str


@dataclass(frozen=True)
class FileFinished(Event):
    """A file's attempt ended; ``retrying``: it went back to the queue (not final)."""

    name: ClassVar[str] = "file_finished"
    result: FileProcessingResult
    retrying: bool


@dataclass(frozen=True)
class BatchClosed(Event):
    """A batch closed (``source``: ``"daemon"`` or ``"process"``)."""

    name: ClassVar[str] = "batch_closed"
    batch: BatchResult
    source: str


@dataclass(frozen=True)
class ProcessingPaused(Event):
    """The daemon stopped starting files after ``result`` failed under ``on_error = "fail"``."""

    name: ClassVar[str] = "processing_paused"
    result: FileProcessingResult


@dataclass(frozen=True)
class ProcessingResumed(Event):
    """``vpod resume`` lifted a pause; ``paused_path`` is the file that caused it."""

    name: ClassVar[str] = "processing_resumed"
    paused_path: str | None


@dataclass(frozen=True)
class WatchRootLost(Event):
    """A watched root was deleted, or (``moved``) renamed away or replaced."""

    name: ClassVar[str] = "watch_root_lost"
    root: Path
    moved: bool = False
    library: str | None = None  # the root's library name


@dataclass(frozen=True)
class WatchRootRestored(Event):
    """A folder has a lost root's path again and is watched."""

    name: ClassVar[str] = "watch_root_restored"
    root: Path
    library: str | None = None  # the root's library name


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
