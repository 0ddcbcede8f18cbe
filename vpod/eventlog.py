"""Logging as a subscriber of :mod:`vpod.events`: the log lines of the README's "Log
events" table for what the daemon and ``vpod process`` publish (the event names and
fields are an interface: they stay as they were when these lines were logged inline)."""

from __future__ import annotations

import structlog

from vpod.events import BatchClosed, ProcessingPaused, ProcessingResumed, WatchRootLost, WatchRootRestored
from vpod.results import display_path, utf8_text


class EventLog:
    """Writes one log line per published event that has one.

    File events are not logged here: ``file_started``, ``file_failed`` and the rest are
    logged by :class:`vpod.jobs.JobRunner` with the file's context bound.
    """

    def __init__(self) -> None:
        self.log = structlog.get_logger("vpod")

    def on_batch_closed(self, event: BatchClosed) -> None:
        """``batch_completed`` (info) with the batch's counts."""
        self.log.info("batch_completed", **event.batch.counts())

    def on_processing_paused(self, event: ProcessingPaused) -> None:
        """``processing_paused`` (error)."""
        self.log.error(
            "processing_paused",
            reason='a file failed and on_error = "fail"',
            failed_path=display_path(event.result.path),  # undecodable bytes as \xNN, as file_failed
            error=utf8_text(event.result.error),
            hint="queued files stay queued; run `vpod resume` to go on",
        )

    def on_processing_resumed(self, event: ProcessingResumed) -> None:
        """``processing_resumed`` (info)."""
        self.log.info("processing_resumed", paused_path=event.paused_path)

    def on_watch_root_lost(self, event: WatchRootLost) -> None:
        """``watch_path_deleted`` (warning)."""
        self.log.warning("watch_path_deleted", root=str(event.root), library=event.library, moved=event.moved)

    def on_watch_root_restored(self, event: WatchRootRestored) -> None:
        """``watch_path_restored`` (info)."""
        self.log.info("watch_path_restored", root=str(event.root), library=event.library)
