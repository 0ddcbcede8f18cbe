"""The Feeder: durable queue (database) → bounded in-memory queue, the daemon's backpressure."""

from __future__ import annotations

import queue
import threading
import time

import structlog

from vpod.db.store import Job, Store, StoreError


class Feeder:
    """Moves due jobs from the Store into the bounded in-memory queue.

    Only ``queue_size`` jobs (plus those in progress) are ever in memory; the rest wait
    in the database, so a backlog of any size costs no memory and nothing is lost when
    the queue is full.
    """

    def __init__(self, store: Store, jobs: "queue.Queue[Job | None]", stop: threading.Event, paused: threading.Event) -> None:
        self.store = store
        self.jobs = jobs
        self.stop = stop
        self.paused = paused
        self.wakeup = threading.Event()
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        # True when the database may hold due jobs that are not in memory; False once a
        # read found fewer than would fit. Then a freed slot alone needs no query.
        self._look = True
        self._due_at: float | None = None  # epoch seconds of the next retry, if any
        self.log = structlog.get_logger("vpod")

    def poke(self) -> None:
        """New or requeued work is in the database: look again."""
        with self._lock:
            self._look = True
        self.wakeup.set()

    def done(self, job: Job, *, requeued: bool = False) -> None:
        """A job left the pipeline; ``requeued`` when it went back to the database
        (a retry later, or a job that could not be started)."""
        with self._lock:
            self._inflight.discard(job.id)
            self._look = self._look or requeued
        self.wakeup.set()

    def inflight(self) -> int:
        """Jobs handed to memory or a worker and not yet done."""
        with self._lock:
            return len(self._inflight)

    def run(self) -> None:
        """Thread body."""
        while not self.stop.is_set():
            self.wakeup.clear()
            timeout = self._feed_once()
            if not self.stop.is_set():
                self.wakeup.wait(timeout)

    def _feed_once(self) -> float | None:
        """Feed what fits; returns how long to sleep unless woken (None: until woken)."""
        if self.paused.is_set():
            return None
        room = self.jobs.maxsize - self.jobs.qsize()
        if room <= 0:
            return None
        now = time.time()
        with self._lock:
            due_now = self._due_at is not None and self._due_at <= now
            if not (self._look or due_now):
                return None if self._due_at is None else self._due_at - now
            self._look = False
            exclude = set(self._inflight)
        try:
            batch = self.store.next_queued(room, exclude)
        except StoreError as exc:
            self.log.warning("queue_read_failed", error=str(exc))
            with self._lock:
                self._look = True
            return 1.0
        for job in batch:
            with self._lock:
                self._inflight.add(job.id)
            self.jobs.put(job)  # never blocks: room was measured and only this thread puts jobs
        if len(batch) == room:
            with self._lock:
                self._look = True  # more may wait: look again when a slot frees
            return 0.0
        due = self.store.next_due_at()
        with self._lock:
            self._due_at = due
        return None if due is None else max(0.05, due - time.time())
