"""The Feeder: a free worker claims its next job from the Store, and nothing is held in memory.

No prefetch: a job is claimed (:meth:`vpod.db.store.Store.claim`, with a lease) only by
a worker that is free to start it now, so a node never hoards files other nodes could
work on, and a backlog of any size costs no memory. The Feeder is the gate every claim
passes (paused, or the database cannot record outcomes: no claim) and the idle wait
(woken by a local poke, by another node's signal through
:meth:`~vpod.db.store.Store.wait_for_work`, when a retry falls due, and every
:data:`IDLE_POLL_SECONDS` anyway). docs/architecture.md "Claims and leases".
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Collection

import structlog

from vpod.db.store import LEASE_SECONDS, Job, Store, StoreError
from vpod.results import display_path
from vpod.watch.intake import WriteBackoff

CLAIM_RETRY_MAX_SECONDS = 15.0
"""The longest wait between two claims the database refused (seconds): a claim costs
one statement, and after a database outage work should resume within seconds."""

LISTEN_SLICE_SECONDS = 1.0
"""How long one wait for another node's signal lasts (seconds) before the stop flag is
looked at again."""

IDLE_POLL_SECONDS = 5.0
"""An idle node looks for work this often (seconds) even when nothing told it to:
another node may have queued work without a signal reaching it."""


AVOID_LEASES = 5
"""A file this node fenced because its tool hung is left to the other nodes for this
many leases (:meth:`Feeder.avoid`): long enough for a healthy node to take its retry."""


_SKIP_READS = 8  # reads per feed that may pass over jobs of unverified libraries
_SKIP_LIMIT = 256  # rows per such read


class Feeder:
    """Claims jobs for free workers, one at a time, in the workers' own threads.

    Args:
        store: the durable queue.
        stop: the daemon's stop Event; ``paused``: set while ``on_error`` paused work.
        batch_id: the batch id a claim names in its row (for people; the outcome's batch
            comes from :class:`vpod.batch.BatchWindows` when the file starts).
        libraries: the names of the libraries this node may claim from now (``None``:
            every library with a folder here); read before each claim.
        lease_seconds: the lease a claim takes (``[database] lease_seconds``).
        clock: monotonic seconds (the idle poll's timer).
        passed_over: the job ids the transcode lane deferred (:meth:`vpod.lanes.TranscodeLane.passed_over`:
            passed over in claims, like the avoided ones) and the seconds until that changes
            by itself (``None``: when a slot frees, which pokes).
    """

    def __init__(
        self,
        store: Store,
        stop: threading.Event,
        paused: threading.Event,
        *,
        batch_id: Callable[[], str] = lambda: "",
        libraries: Callable[[], Collection[str] | None] = lambda: None,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        passed_over: Callable[[], tuple[list[int], float | None]] = lambda: ([], None),
    ) -> None:
        self.store = store
        self.passed_over = passed_over
        self.stop = stop
        self.paused = paused
        self.batch_id = batch_id
        self.libraries = libraries
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._inflight: set[int] = set()
        self._cond = threading.Condition()
        self._generation = 0  # bumped by every poke: waiting workers try again
        # True when the database may hold due jobs; False once a claim found none. Then
        # a worker that frees up waits for a poke, a due retry or the idle poll.
        self._look = True
        self._due_at: float | None = None  # epoch seconds of the next retry, if any
        self._next_poll = 0.0  # monotonic seconds of the next idle look
        # The database could not record an outcome (its disk is full): no new work until then.
        self._record_backoff = WriteBackoff(clock)
        # Job id → monotonic seconds until which this node leaves it to the others.
        self._avoid: dict[int, float] = {}
        self.log = structlog.get_logger("vpod")

    def poke(self) -> None:
        """New or requeued work may be in the database (or a worker must look at the stop
        flag, a resume, a retirement): every waiting worker tries again."""
        with self._cond:
            self._look = True
            self._generation += 1
            self._cond.notify_all()

    def done(self, job: Job, *, requeued: bool = False) -> None:
        """A job left the pipeline; ``requeued`` when it went back to the database
        (a retry later, a job given back)."""
        with self._cond:
            self._inflight.discard(job.id)
            if requeued:
                self._look = True
                self._generation += 1
                self._cond.notify_all()

    def avoid(self, job: Job, seconds: float | None = None) -> None:
        """Leave ``job`` to the other nodes for ``seconds`` (default :data:`AVOID_LEASES`
        leases): this node's tool hung on it (a ``no_progress`` self-fence, recorded as a
        ``timeout`` retry), so a healthy node should take the retry, not this one. The
        claim passes it over (:meth:`Store.claim` ``exclude``) until then; after that this
        node may take it again, so a file that hangs on every node still uses up its
        attempts and ends ``failed``/``timeout`` (:func:`vpod.jobs.attempts_allowed`)."""
        until = self.clock() + (AVOID_LEASES * self.lease_seconds if seconds is None else seconds)
        with self._cond:
            self._avoid[job.id] = until
        self.log.info("file_left_to_other_nodes", path=display_path(job.path), seconds=round(until - self.clock(), 3))

    def _avoided(self, tick: float) -> tuple[list[int], float | None]:
        """The job ids avoided now and the monotonic seconds when the first such wait
        ends (``None``: none). Under the lock; forgets the ended ones."""
        for job_id in [j for j, until in self._avoid.items() if until <= tick]:
            del self._avoid[job_id]
        return sorted(self._avoid), min(self._avoid.values(), default=None)

    def record_failed(self, job: Job) -> tuple[int, float] | None:
        """The database could not record ``job``'s outcome (e.g. its disk is full): the job
        leaves memory (it stays ``processing`` in the database; its lease ends and it is
        claimed again) and no job is claimed for a wait that starts at 2 s and doubles up
        to 5 min (:class:`vpod.watch.intake.WriteBackoff`, the one ``queue_write_failed`` uses).

        Returns (failures in a row, seconds to wait) when this failure starts a new wait;
        ``None`` when it happened during a wait already running (another worker's job
        that was in flight when the database failed): it joins that wait.
        """
        with self._cond:
            self._inflight.discard(job.id)
            self._look = True  # the job is still in the database: look again after the wait
            if self._record_backoff.waiting() > 0:
                return None
            delay = self._record_backoff.failed()
            return (self._record_backoff.failures, delay)

    def holding(self) -> float:
        """Seconds left of the wait :meth:`record_failed` started (0: jobs may run)."""
        with self._cond:
            return self._record_backoff.waiting()

    def recorded(self) -> tuple[int, float] | None:
        """An outcome was recorded; returns (failed tries, seconds since the first) when
        this ends an episode of :meth:`record_failed`, else ``None``."""
        with self._cond:
            return self._record_backoff.succeeded()

    def inflight(self) -> int:
        """Jobs claimed by a worker and not yet done."""
        with self._cond:
            return len(self._inflight)

    def take(self, worker: str) -> Job | None:
        """One turn of a free ``worker``: claim a job for it when work may be claimed now
        (not paused, outcomes recordable, something may be due), else wait until poked,
        a retry falls due or the idle poll; returns the claimed job, or ``None`` after
        the wait (the worker checks its stop and retire flags, then calls again)."""
        with self._cond:
            seen = self._generation
        outcome = self.try_claim(worker)
        if isinstance(outcome, Job):
            return outcome
        with self._cond:
            if self._generation == seen and not self.stop.is_set():
                # Bounded: a poke lost in a race costs one idle poll at most.
                self._cond.wait(IDLE_POLL_SECONDS if outcome is None else min(outcome, IDLE_POLL_SECONDS))
        return None

    def try_claim(self, worker: str) -> Job | float | None:
        """One claim for ``worker`` if one may be made now (not paused, outcomes
        recordable, and work may be due: a poke, a due retry, or the idle poll); else how
        long to wait (seconds; ``None``: until poked). Never waits itself."""
        if self.stop.is_set() or self.paused.is_set():
            return None
        hold = self.holding()
        if hold > 0:
            return hold  # the database cannot record outcomes: claim no work yet
        now, tick = time.time(), self.clock()
        with self._cond:
            due_now = self._due_at is not None and self._due_at <= now
            if not (self._look or due_now or tick >= self._next_poll):
                return self._until_next_look(now, tick)
            self._look = False
            avoided, avoid_ends = self._avoided(tick)
        deferred, deferral_ends = self.passed_over()
        if deferred:
            avoided = sorted(set(avoided) | set(deferred))
            if deferral_ends is not None:
                avoid_ends = min(avoid_ends, tick + deferral_ends) if avoid_ends is not None else tick + deferral_ends
        try:
            job = self.store.claim(
                worker, self.batch_id(), libraries=self.libraries(), lease_seconds=self.lease_seconds,
                exclude=avoided,
            )
            due = None if job is not None else self.store.next_due_at()
            if job is None and avoid_ends is not None and (due is None or due <= now):
                # What is due now is only what this node avoids: look again when that ends
                # (or at a poke or the idle poll), not in a tight loop.
                due = now + (avoid_ends - tick)
            elif job is None and deferred and (due is None or due <= now):
                due = None  # only deferred transcodes are due: a freed slot pokes, else the idle poll
        except StoreError as exc:
            # A claim is a write: a database that cannot take one (its disk is full, or
            # the server is down) is waited out like an outcome it cannot record, one
            # line per try; but at most CLAIM_RETRY_MAX_SECONDS apart, so a node is back
            # at work soon after a long database outage ends.
            with self._cond:
                self._look = True
                joined = self._record_backoff.waiting()
                if joined > 0:
                    return joined  # another worker's failure started this wait
                delay = self._record_backoff.failed(CLAIM_RETRY_MAX_SECONDS)
                attempt = self._record_backoff.failures
            self.log.warning("queue_read_failed", error=str(exc), attempt=attempt, retry_in_seconds=delay)
            return delay
        with self._cond:
            if job is not None:
                self._inflight.add(job.id)
                # More may wait: another free worker tries at once.
                self._look = True
                self._generation += 1
                self._cond.notify_all()
                return job
            self._due_at = due
            self._next_poll = tick + IDLE_POLL_SECONDS
            return self._until_next_look(now, tick)

    def _until_next_look(self, now: float, tick: float) -> float:
        """Seconds until a due retry or the idle poll (at least 50 ms). Under the lock."""
        wait = self._next_poll - tick
        if self._due_at is not None:
            wait = min(wait, self._due_at - now)
        return max(0.05, wait)

    def run(self) -> None:
        """Thread body: waits for another node's signal that work was queued
        (:meth:`Store.wait_for_work`; on SQLite there is none) and pokes the workers."""
        while not self.stop.is_set():
            started = self.clock()
            try:
                # In short slices: a stop is seen within one (the wait cannot watch the Event).
                signalled = self.store.wait_for_work(LISTEN_SLICE_SECONDS)
            except StoreError as exc:
                self.log.warning("queue_read_failed", error=str(exc))
                signalled = False
            if signalled:
                self.poke()
                continue
            self.stop.wait(max(0.0, LISTEN_SLICE_SECONDS - (self.clock() - started)))
