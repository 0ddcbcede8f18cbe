"""Pausing under ``on_error = "fail"`` and the control requests ``vpod resume`` and
``vpod retry`` leave in the database (SIGUSR1)."""

from __future__ import annotations

import threading
import time
from typing import Callable

import structlog

from vpod.batch import BatchController
from vpod.config import VPOConfig
from vpod.db.store import StoreError
from vpod.db.store import Store
from vpod.events import EventBus, ProcessingPaused, ProcessingResumed
from vpod.feeder import Feeder
from vpod.results import FileProcessingResult


class PauseControl:
    """Pauses processing after a failure under ``on_error = "fail"``; resumes on request.

    Args:
        controller: the ``on_error`` rule.
        paused: set while paused (the feeder and the workers read it).
        store: read for control requests.
        record: writes the ``daemon`` row (:meth:`vpod.daemon.snapshot.StatusSnapshot.record`).
        feeder: poked when retried files were queued.
        events: pauses and resumptions are published here.
        changed: the status changed (``STATUS=``).
    """

    def __init__(
        self,
        controller: BatchController,
        paused: threading.Event,
        *,
        store: Store,
        record: Callable[..., bool],
        feeder: Feeder,
        events: EventBus,
        changed: Callable[[], None],
    ) -> None:
        self.controller = controller
        self.paused = paused
        self.store = store
        self.record = record
        self.feeder = feeder
        self.events = events
        self.changed = changed
        self.log = structlog.get_logger("vpod")

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[policy] on_error``."""
        self.controller.on_error = config.policy.on_error

    def pause(self, result: FileProcessingResult) -> None:
        """Stop starting files after ``result`` failed (any thread)."""
        self.paused.set()
        # Recorded before it is published: whoever reads the log line finds `vpod status` agreeing.
        self.record("paused", paused_at=time.time(), paused_path=str(result.path), paused_error=result.error)
        self.events.publish(ProcessingPaused(result))
        self.changed()

    def apply_control(self) -> None:
        """SIGUSR1: a CLI wrote a request into the database (resume) or requeued files (retry)."""
        try:
            info = self.store.daemon_info()
        except StoreError as exc:
            self.log.error("control_read_failed", error=str(exc))
            return
        requested = float(info.get("resume_requested_at", "nan"))
        if self.paused.is_set() and requested >= float(info.get("paused_at", "0")):
            self.controller.reset()
            self.paused.clear()
            self.record("running", paused_at=None, paused_path=None, paused_error=None, resume_requested_at=None)
            self.events.publish(ProcessingResumed(info.get("paused_path")))
        self.feeder.poke()  # retried files are queued in the database
        self.changed()
