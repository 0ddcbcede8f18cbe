"""The Feeder: durable queue (database) → bounded in-memory queue, the daemon's backpressure."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Collection

import structlog

from vpod.db.store import Job, Store, StoreError
from vpod.watch.intake import WriteBackoff


_SKIP_READS = 8  # reads per feed that may pass over jobs of unverified libraries
_SKIP_LIMIT = 256  # rows per such read


class Feeder:
    """Moves due jobs from the Store into the bounded in-memory queue.

    Only ``queue_size`` jobs (plus those in progress) are ever in memory; the rest wait
    in the database, so a backlog of any size costs no memory and nothing is lost when
    the queue is full.

    ``unverified``: names of libraries whose folder on this node is not proven now
    (:meth:`vpod.watch.library_id.LibraryMounts.unverified`): their jobs are left in the
    database for the nodes that can reach them (and for this one once verified).
    """

    def __init__(
        self, store: Store, jobs: "queue.Queue[Job | None]", stop: threading.Event, paused: threading.Event,
        *, unverified: Callable[[], Collection[str]] = tuple,
    ) -> None:
        self.store = store
        self.unverified = unverified
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
        # The database could not record an outcome (its disk is full): no new work until then.
        self._record_backoff = WriteBackoff()
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

    def record_failed(self, job: Job) -> tuple[int, float] | None:
        """The database could not record ``job``'s outcome (e.g. its disk is full): the job
        leaves memory (it stays ``queued`` or ``processing`` in the database and is redone)
        and no job is handed out for a wait that starts at 2 s and doubles up to 5 min
        (:class:`vpod.watch.intake.WriteBackoff`, the one ``queue_write_failed`` uses).

        Returns (failures in a row, seconds to wait) when this failure starts a new wait;
        ``None`` when it happened during a wait already running (another worker's job
        that was in flight when the database failed): it joins that wait.
        """
        with self._lock:
            self._inflight.discard(job.id)
            self._look = True  # the job is still due in the database: read it again after the wait
            if self._record_backoff.waiting() > 0:
                return None
            delay = self._record_backoff.failed()
            step = (self._record_backoff.failures, delay)
        self.wakeup.set()
        return step

    def holding(self) -> float:
        """Seconds left of the wait :meth:`record_failed` started (0: jobs may run)."""
        with self._lock:
            return self._record_backoff.waiting()

    def recorded(self) -> tuple[int, float] | None:
        """An outcome was recorded; returns (failed tries, seconds since the first) when
        this ends an episode of :meth:`record_failed`, else ``None``."""
        with self._lock:
            return self._record_backoff.succeeded()

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

    def _due_jobs(self, room: int, exclude: set[int]) -> tuple[list[Job], bool]:
        """Up to ``room`` due jobs of libraries not :attr:`unverified`, and whether the
        database may hold more. Jobs of unverified libraries are passed over (a few
        reads at most), so they never block the others."""
        unverified = self.unverified()
        batch: list[Job] = []
        for read in range(_SKIP_READS):
            want = room - len(batch)
            limit = want if read == 0 else max(want, _SKIP_LIMIT)
            rows = self.store.next_queued(limit, exclude)
            exclude |= {job.id for job in rows}
            kept = [job for job in rows if job.library not in unverified][:want]
            batch += kept
            if len(rows) < limit or len(kept) == want:
                break  # nothing more is due, or the batch is full
        return batch, len(batch) == room

    def _feed_once(self) -> float | None:
        """Feed what fits; returns how long to sleep unless woken (None: until woken)."""
        if self.paused.is_set():
            return None
        hold = self.holding()
        if hold > 0:
            return hold  # the database cannot record outcomes: hand out no work yet
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
            batch, full = self._due_jobs(room, exclude)
        except StoreError as exc:
            self.log.warning("queue_read_failed", error=str(exc))
            with self._lock:
                self._look = True
            return 1.0
        for job in batch:
            with self._lock:
                self._inflight.add(job.id)
            self.jobs.put(job)  # never blocks: room was measured and only this thread puts jobs
        if full:
            with self._lock:
                self._look = True  # more may wait: look again when a slot frees
            return 0.0
        due = self.store.next_due_at()
        with self._lock:
            self._due_at = due
        return None if due is None else max(0.05, due - time.time())
