"""The daemon's worker threads: one job at a time through a per-file handler."""

from __future__ import annotations

import threading
from typing import Callable, Protocol

from vpod.db.store import Job


class JobHandler(Protocol):
    """What a worker does with a job (:class:`vpod.daemon.files.FileHandler`)."""

    def __call__(self, job: Job, worker: str) -> None:
        """Process ``job`` (or leave it queued while paused); never raises."""

    def release(self, job: Job) -> None:
        """Give ``job`` back untouched (stopping): queued again in the database."""


class JobSource(Protocol):
    """Where a free worker gets its next job (:class:`vpod.feeder.Feeder`)."""

    def take(self, worker: str) -> Job | None:
        """Claim a job for ``worker``, or wait a while and return ``None``."""


class Worker:
    """One worker thread: claim a job only when free, hand it to the handler; checks the
    stop flag between jobs, and retires (its thread ends) when the pool has too many workers.

    Args:
        name: ``worker-N``, recorded as the row's worker.
        source: claims jobs (:meth:`JobSource.take`; ``None``: woken, look at the flags).
        stop: set when the daemon stops.
        handler: processes one job.
        retire: asked between jobs; True ends this worker.
    """

    def __init__(
        self,
        name: str,
        *,
        source: JobSource,
        stop: threading.Event,
        handler: JobHandler,
        retire: Callable[["Worker"], bool],
    ) -> None:
        self.name = name
        self.source = source
        self.stop = stop
        self.handler = handler
        self.retire = retire
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """Thread body."""
        while not (self.stop.is_set() or self.retire(self)):
            job = self.source.take(self.name)
            if job is None:  # woken (a poke, the stop flag, a retirement) or nothing due
                continue
            if self.stop.is_set():
                self.handler.release(job)
                return
            self.handler(job, self.name)
