"""The daemon's worker threads: one job at a time through a per-file handler."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Protocol

from vpod.db.store import Job


class JobHandler(Protocol):
    """What a worker does with a job (:class:`vpod.daemon.files.FileHandler`)."""

    def __call__(self, job: Job, worker: str) -> None:
        """Process ``job`` (or leave it queued while paused); never raises."""

    def release(self, job: Job) -> None:
        """Give ``job`` back untouched (stopping): it stays queued in the database."""


class Worker:
    """One worker thread: take a job, hand it to the handler; checks the stop flag
    between jobs, and retires (its thread ends) when the pool has too many workers.

    Args:
        name: ``worker-N``, recorded as the row's worker.
        jobs: the bounded job queue; ``None`` is a wake-up (stop or retire).
        stop: set when the daemon stops.
        handler: processes one job.
        retire: asked between jobs; True ends this worker.
    """

    def __init__(
        self,
        name: str,
        *,
        jobs: "queue.Queue[Job | None]",
        stop: threading.Event,
        handler: JobHandler,
        retire: Callable[["Worker"], bool],
    ) -> None:
        self.name = name
        self.jobs = jobs
        self.stop = stop
        self.handler = handler
        self.retire = retire
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """Thread body."""
        while True:
            job = self.jobs.get()
            if job is None:  # shutdown, or a wake-up to retire
                if self.stop.is_set() or self.retire(self):
                    return
                continue
            if self.stop.is_set():
                self.handler.release(job)
                return
            self.handler(job, self.name)
            if self.retire(self):
                return
