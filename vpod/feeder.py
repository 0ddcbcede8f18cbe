"""The Feeder: durable queue (database) → bounded in-memory queue, the daemon's backpressure."""

from __future__ import annotations

import queue
import threading
import time

import structlog

from vpod.db.pool import DatabaseBusy, DatabaseError
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import Job


class Feeder:
    """Moves due jobs from the Store into the bounded in-memory queue.

    Only ``queue_size`` jobs (plus those in progress) are ever in memory; the rest wait
    in the database, so a backlog of any size costs no memory and nothing is lost when
    the queue is full.
    """

    def __init__(self, store: SqliteStore, jobs: "queue.Queue[Job | None]", stop: threading.Event, paused: threading.Event) -> None:
        self.store = store
        self.jobs = jobs
        self.stop = stop
        self.paused = paused
        self.wakeup = threading.Event()
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self.log = structlog.get_logger("vpod")

    def poke(self) -> None:
        """New work was queued or room was freed: look again."""
        self.wakeup.set()

    def done(self, job: Job) -> None:
        """A job left the pipeline (finished, retried later or released)."""
        with self._lock:
            self._inflight.discard(job.id)
        self.poke()

    def inflight(self) -> int:
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
        """Feed what fits; returns how long to sleep unless poked (None: until poked)."""
        if self.paused.is_set():
            return None
        room = self.jobs.maxsize - self.jobs.qsize()
        if room <= 0:
            return None
        with self._lock:
            exclude = set(self._inflight)
        try:
            batch = self.store.next_queued(room, exclude)
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.warning("queue_read_failed", error=str(exc))
            return 1.0
        for job in batch:
            with self._lock:
                self._inflight.add(job.id)
            self.jobs.put(job)  # never blocks: room was measured and only this thread puts jobs
        if len(batch) == room:
            return 0.0
        due = self.store.next_due_at()
        return None if due is None else max(0.05, due - time.time())
