"""The lease keeper: renews the leases of claimed files that make progress, and fences
the claims it cannot keep (docs/architecture.md "Claims and leases").

A claimed file's row carries a lease (``lease_until``, by the database's clock) and a
fencing token (:attr:`vpod.db.store.Job.lease`). While a worker holds a claim
(:meth:`LeaseKeeper.hold`), the keeper renews its lease every ``heartbeat_seconds``
(:meth:`vpod.db.store.Store.renew_leases`), but only if the work made progress since
the last look:

* while an external tool runs for the claim (:meth:`vpod.media.tools.ToolRunner.pids_of`):
  the tool's CPU time (``/proc/PID/stat`` utime + stime of it and its reaped children,
  proc(5)) or its bytes read or written (``/proc/PID/io`` rchar + wchar) grew, or
  another tool started;
* between tools (vpod's own work: fingerprinting, probing, copying): the worker
  thread's CPU time grew (``/proc/self/task/TID/stat``);
* either way: the pipeline reported a step (:meth:`LeaseKeeper.beat`: a progress
  line, a plan noted).

A tool that hangs (sleeps, waits on a lock, ignores signals) makes none, so its lease
runs out and another node may take the file. Where ``/proc`` cannot be read, every
claim counts as progressing.

**Self-fence.** A claim whose lease could not be renewed for ``lease_seconds -
margin`` (:attr:`LeaseKeeper.margin_seconds`, a quarter of the lease) on this process's
monotonic clock, whatever the reason (no progress, the database unreachable or slow),
is dropped before the lease can end: its tools get SIGTERM, then SIGKILL after
:attr:`LeaseKeeper.kill_grace_seconds`, its temp files are removed, and the worker
discards whatever it produces (``lease_self_fenced``). Before a file is replaced or
edited in place, :meth:`LeaseKeeper.confirm` does the compare-and-set
(:meth:`Store.confirm_lease`): if the claim is fenced or the row no longer holds its
token, :class:`~vpod.errors.LeaseLost` is raised and nothing is replaced.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Hashable, Iterator, TypeVar

import structlog

from vpod.db.store import LEASE_SECONDS, Job, Store
from vpod.errors import LeaseLost, StoreBusy, StoreError
from vpod.media.tools import ToolRunner
from vpod.results import display_path

MARGIN_FRACTION = 0.25
"""The self-fence margin as a part of the lease: a claim not renewed for 3/4 of its
lease is dropped, leaving a quarter to kill the tool and for the clocks to disagree."""
KILL_GRACE_MAX_SECONDS = 5.0
"""At most this long between SIGTERM and SIGKILL when a claim is fenced (seconds)."""
FENCE_POLL_SECONDS = 0.1
"""How often a worker waiting on the database looks whether its claim was fenced (seconds)."""

T = TypeVar("T")


class Claim:
    """A job a worker thread holds, as the keeper follows it.

    Attributes:
        job: the claimed job (its :attr:`Job.lease` is the token).
        worker: the worker's name.
        thread_id: :func:`threading.get_ident` of the worker thread (its tools).
        native_id: the thread's kernel id (its CPU time in ``/proc``).
        renewed_at: monotonic seconds when the lease was last known extended.
        fenced: set once the claim was dropped; ``fence_reason`` says why.
        renewing_since: monotonic seconds when a renewal of this claim was sent that has
            not answered yet (``None``: none is waiting).
        db_call_since: monotonic seconds when the worker started a database call for
            this claim that has not answered yet (:meth:`LeaseKeeper.bounded`).
        settled: the work is over and its outcome is being recorded (that write names the
            token, so it cannot land on another claim): no longer renewed nor fenced.
    """

    __slots__ = ("job", "worker", "thread_id", "native_id", "renewed_at", "fenced", "fence_reason", "temps", "beats",
                 "last_sample", "renew_error", "renewing_since", "db_call_since", "settled")

    def __init__(self, job: Job, worker: str, thread_id: int, native_id: int, renewed_at: float) -> None:
        self.job = job
        self.worker = worker
        self.thread_id = thread_id
        self.native_id = native_id
        self.renewed_at = renewed_at
        self.fenced = threading.Event()
        self.fence_reason: str | None = None
        self.temps: set[Path] = set()
        self.beats = 0
        self.last_sample: Hashable = None
        self.renew_error: str | None = None
        self.renewing_since: float | None = None
        self.db_call_since: float | None = None
        self.settled = False


class ClaimTemps:
    """The temp-file registry the pipeline writes through (:class:`vpod.tempfiles.TempRegistry`):
    the Store's, with each temp tied to the claim of the thread that makes it, so a
    sweeper leaves it while that lease lasts and a self-fence removes it."""

    def __init__(self, store: Store, keeper: LeaseKeeper) -> None:
        self.store = store
        self.keeper = keeper

    def current_job(self) -> Job | None:
        """The claimed job this thread works on, or ``None`` (temp names carry it:
        :func:`vpod.tempfiles.claim_tag`)."""
        claim = self.keeper.current()
        return claim.job if claim is not None else None

    def register_temp(self, path: Path) -> None:
        """Record ``path`` (with this thread's claim) before the file is created; waits
        for the database no longer than the claim lives (:meth:`LeaseKeeper.bounded`).

        Raises:
            LeaseLost: the claim was fenced before the database answered.
        """
        claim = self.keeper.current()
        job = claim.job if claim is not None else None
        self.keeper.bounded("registering a temp file", lambda: self.store.register_temp(path, job))
        if claim is not None:
            claim.temps.add(path)

    def forget_temp(self, path: Path) -> None:
        """``path`` is gone; waits for the database no longer than the claim lives (a
        fenced claim's temps are forgotten by the fence, or by a sweep once its lease is
        gone)."""
        claim = self.keeper.current()
        if claim is not None:
            claim.temps.discard(path)
        try:
            self.keeper.bounded("forgetting a temp file", lambda: self.store.forget_temp(path))
        except LeaseLost:
            pass

    def pending_temps(self) -> list[Path]:
        """Temps whose claim's lease is gone (:meth:`Store.pending_temps`)."""
        return self.store.pending_temps()


class LeaseKeeper:
    """Renews, checks and fences the claims of this process's workers.

    Args:
        store: the store the claims were made in.
        runner: the tool runner the workers' tools run through (to measure and kill them).
        stop: the daemon's stop Event; the keeper's loops end once it is set and no
            claim is held any more (files draining at shutdown keep their leases).
        lease_seconds: ``[database] lease_seconds``; ``heartbeat_seconds``:
            ``[database] lease_heartbeat_seconds`` (the renewal period).
        clock: monotonic seconds.
        progress: the progress sample of a claim (equal samples: no progress);
            default :meth:`sample`.
    """

    def __init__(
        self,
        store: Store,
        runner: ToolRunner,
        stop: threading.Event,
        *,
        lease_seconds: float = LEASE_SECONDS,
        heartbeat_seconds: float = LEASE_SECONDS / 4,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[Claim], Hashable] | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.stop = stop
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.margin_seconds = lease_seconds * MARGIN_FRACTION
        self.kill_grace_seconds = min(self.margin_seconds / 2, KILL_GRACE_MAX_SECONDS)
        self.clock = clock
        self.progress = progress or self.sample
        self._claims: dict[int, Claim] = {}  # by worker thread
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._last_look: float | None = None  # monotonic seconds of the last fence_overdue
        self.temps = ClaimTemps(store, self)
        self.log = structlog.get_logger("vpod")

    # -- the worker's side ------------------------------------------------------------

    @contextmanager
    def hold(self, job: Job, worker: str) -> Iterator[Claim]:
        """Follow ``job`` (just claimed by this thread, its lease fresh) until the block
        ends; yields its :class:`Claim` (``claim.fenced`` tells the worker to discard its
        result)."""
        claim = Claim(job, worker, threading.get_ident(), threading.get_native_id(), self.clock())
        claim.last_sample = self.progress(claim)
        with self._lock:
            self._claims[claim.thread_id] = claim
        self._changed.set()
        try:
            yield claim
        finally:
            with self._lock:
                self._claims.pop(claim.thread_id, None)
            self._changed.set()  # a draining shutdown need not wait for the next look

    def current(self) -> Claim | None:
        """The claim this thread holds, if any."""
        with self._lock:
            return self._claims.get(threading.get_ident())

    def lock_wait_seconds(self) -> float | None:
        """How long this thread's claimed file may wait for its ``flock`` held by another
        process before going on without it (:func:`vpod.safety.open_for_processing`):
        :attr:`margin_seconds`, long enough for a node whose lease ended to finish its
        self-fence and let go; ``None`` when this thread holds no claim (the lock rules)."""
        return self.margin_seconds if self.current() is not None else None

    def beat(self) -> None:
        """This thread's claim made a step (a progress line, a plan noted): it counts as progress."""
        claim = self.current()
        if claim is not None:
            claim.beats += 1

    def confirm(self, path: Path) -> None:
        """The compare-and-set just before ``path`` is replaced or edited in place by this
        thread's claim (no claim: nothing to confirm); extends the lease on success.

        Raises:
            LeaseLost: the claim was fenced, the row no longer holds its token or its
                lease ended, or the database could not be asked: nothing may be replaced.
            StoreBusy: the database was locked past its busy timeout: nothing may be
                replaced now, but the claim may still hold (the file is retried).
        """
        claim = self.current()
        if claim is None:
            return
        if claim.fenced.is_set():
            raise LeaseLost(f"{display_path(path)}: this node dropped its claim ({claim.fence_reason}); result discarded")
        asked = self.clock()
        try:
            confirmed = self.bounded("the compare-and-set", lambda: self.store.confirm_lease(claim.job, self.lease_seconds))
        except StoreBusy:
            # Locked, not lost: nothing is replaced, and the worker retries the file
            # (``database_busy``) once its write of the retry gets through.
            raise
        except StoreError as exc:
            raise LeaseLost(f"{display_path(path)}: the claim could not be confirmed ({exc}); result discarded") from exc
        if not confirmed:
            raise LeaseLost(f"{display_path(path)}: the claim's lease ended or another node took the file; result discarded")
        claim.renewed_at = asked

    def bounded(self, what: str, call: Callable[[], T]) -> T:
        """Run the database ``call`` for this thread's claim, waiting for it no longer than
        the claim lives: a silent database (a cut network: a request that never reaches
        the server is not ended by its statement timeout) must not hold a worker past its
        self-fence. The call runs in a thread of its own while the worker watches
        ``claim.fenced`` every :data:`FENCE_POLL_SECONDS`; while it waits the claim counts
        as progressing (the renewal then tells whether the database answers). No claim
        held: ``call`` runs here, unbounded (as before leases).

        Raises:
            LeaseLost: the claim was fenced before (or while) the call ran; the call's
                late answer is ignored (the driver's own timeouts end it).
            Exception: whatever ``call`` raised.
        """
        claim = self.current()
        if claim is None:
            return call()
        if claim.fenced.is_set():
            raise LeaseLost(f"{display_path(claim.job.path)}: this node dropped its claim ({claim.fence_reason})")
        answer: list[T] = []
        failure: list[BaseException] = []
        answered = threading.Event()

        def body() -> None:
            try:
                answer.append(call())
            except BaseException as exc:  # handed to the worker
                failure.append(exc)
            finally:
                answered.set()

        claim.db_call_since = self.clock()
        try:
            threading.Thread(target=body, name="vpod-claim-db", daemon=True).start()
            while not answered.wait(FENCE_POLL_SECONDS):
                if claim.fenced.is_set():
                    raise LeaseLost(
                        f"{display_path(claim.job.path)}: {what} got no answer from the database before this node "
                        f"dropped its claim ({claim.fence_reason})"
                    )
        finally:
            claim.db_call_since = None
        if failure:
            raise failure[0]
        return answer[0]

    # -- the keeper's threads ---------------------------------------------------------

    def _running(self) -> bool:
        with self._lock:
            return not self.stop.is_set() or bool(self._claims)

    def renew_loop(self) -> None:
        """Thread body: every ``heartbeat_seconds``, renew the progressing claims' leases."""
        due = self.clock() + self.heartbeat_seconds  # a claim starts with a fresh lease
        while self._running():
            if self.clock() >= due:
                self.renew_once()
                due = self.clock() + self.heartbeat_seconds
            left = max(0.0, due - self.clock())
            if self.stop.is_set():
                time.sleep(min(left, 0.25))  # draining: look at the claims left now and then
            else:
                self.stop.wait(left)

    def watch_loop(self) -> None:
        """Thread body: fence each claim whose lease was not renewed in time. Separate from
        :meth:`renew_loop` so a renewal stuck on an unreachable database cannot delay it."""
        while self._running():
            wait = self.fence_overdue()
            with self._lock:
                idle = not self._claims
            if idle:
                # Nothing to fence, so wake for the stop (shutdown must not wait a heartbeat).
                # A claim made meanwhile is due no sooner than lease - margin >= 1.5
                # heartbeats from now (lease >= 2 heartbeats), and wait <= a heartbeat.
                self.stop.wait(wait)
                continue
            self._changed.wait(min(wait, 0.5) if self.stop.is_set() else wait)
            self._changed.clear()

    def renew_once(self) -> set[int]:
        """Renew the leases of the claims that made progress since the last look; returns
        the job ids renewed. A claim the store says is no longer ours is fenced at once;
        a failed renewal is logged (``lease_renew_failed``) and tried at the next beat."""
        with self._lock:
            claims = [c for c in self._claims.values() if not c.fenced.is_set() and not c.settled]
        # A worker waiting on the database is not hung: the renewal tells whether it answers.
        progressing = [c for c in claims if self._progressed(c) or c.db_call_since is not None]
        if not progressing:
            return set()
        asked = self.clock()
        for claim in progressing:
            claim.renewing_since = asked
        try:
            renewed = self.store.renew_leases([c.job for c in progressing], self.lease_seconds)
        except StoreError as exc:
            for claim in progressing:
                claim.renew_error = str(exc)
            self.log.warning("lease_renew_failed", files=len(progressing), error=str(exc))
            return set()
        finally:
            for claim in progressing:
                claim.renewing_since = None
        for claim in progressing:
            if claim.job.id in renewed:
                claim.renewed_at = asked
                claim.renew_error = None
            else:
                self._fence(claim, "lease_lost")
        return renewed

    def fence_overdue(self) -> float:
        """Fence every claim not renewed for ``lease_seconds - margin_seconds``; returns
        the seconds until the next such deadline (at most ``heartbeat_seconds``). Never
        waits on the database (nor on the keeper's renewals): the reason is
        ``renew_failed`` when the last renewal failed, ``database_unreachable`` when a
        renewal or a worker's database call is still waiting for an answer,
        ``suspended`` when this thread itself did not run for longer than a heartbeat
        plus the margin (the process was stopped), else ``no_progress``."""
        now = self.clock()
        limit = self.lease_seconds - self.margin_seconds
        wait = self.heartbeat_seconds
        # This thread looks at least every heartbeat: a much longer gap means the whole
        # process was stopped (SIGSTOP, a suspended VM) or starved, not the database.
        suspended = self._last_look is not None and now - self._last_look > self.heartbeat_seconds + self.margin_seconds
        self._last_look = now
        with self._lock:
            claims = [c for c in self._claims.values() if not c.fenced.is_set() and not c.settled]
        for claim in claims:
            left = claim.renewed_at + limit - now
            if left <= 0:
                self._fence(claim, "suspended" if suspended else _fence_reason(claim, claim.renewed_at + limit))
            else:
                wait = min(wait, left)
        return max(0.01, wait)

    def _fence(self, claim: Claim, reason: str) -> None:
        """Drop ``claim`` now: mark it, stop its tools (SIGTERM), remove its temp files,
        log ``lease_self_fenced``, then SIGKILL the tools still running after the grace
        and forget the temps in the database from a thread of their own, so neither the
        kill's grace nor a database that does not answer delays this thread (the fences
        of the other claims). A temp the database could not forget is forgotten by a
        sweep once the lease is gone. A claim whose hold already ended (its file
        finished while a renewal was on its way) or whose outcome is being recorded is
        left alone: what its thread runs now belongs to the next file."""
        with self._lock:  # the watch and renew threads may both fence a claim: the first one does
            if claim.fenced.is_set() or claim.settled or self._claims.get(claim.thread_id) is not claim:
                return
            claim.fence_reason = reason
            claim.fenced.set()
            # Under the lock the worker cannot leave hold(), so these tools are this claim's.
            tools = self.runner.terminate_thread(claim.thread_id)
        removed = []
        for path in list(claim.temps):
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                removed.append(path)
            except OSError:
                continue  # left registered: a sweep removes it once the lease is gone
            claim.temps.discard(path)
        now = self.clock()
        self.log.error(
            "lease_self_fenced", path=display_path(claim.job.path), worker=claim.worker, reason=reason,
            seconds_since_renewal=round(now - claim.renewed_at, 3), lease_seconds=self.lease_seconds,
            tools_killed=len(tools), temps_removed=[str(p) for p in removed],
            **_waiting(claim, now),
        )

        def finish() -> None:
            self.runner.reap(tools, grace_seconds=self.kill_grace_seconds)
            for path in removed:
                try:
                    self.store.forget_temp(path)
                except StoreError:
                    pass  # its lease is gone: a sweep forgets it

        threading.Thread(target=finish, name="vpod-fence", daemon=True).start()

    # -- progress ---------------------------------------------------------------------

    def _progressed(self, claim: Claim) -> bool:
        sample = self.progress(claim)
        moved = sample is None or sample != claim.last_sample
        claim.last_sample = sample
        return moved

    def sample(self, claim: Claim) -> Hashable:
        """What progress looks like for ``claim`` now (see the module docstring); ``None``
        when it cannot be measured (counted as progress)."""
        pids = self.runner.pids_of(claim.thread_id)
        if pids:
            counters = tuple(_process_counters(pid) for pid in pids)
            if any(c is None for c in counters):
                return None
            return ("tools", tuple(pids), counters, claim.beats)
        cpu = _thread_cpu(claim.native_id)
        return None if cpu is None else ("thread", cpu, claim.beats)


def _fence_reason(claim: Claim, deadline: float) -> str:
    """Why an overdue claim is fenced at ``deadline`` (monotonic seconds): its last
    renewal failed (``renew_failed``), the database has left a renewal or the worker's
    call sent before the deadline unanswered (``database_unreachable``), or the work
    made no progress, so it was not renewed (``no_progress``)."""
    if claim.renew_error:
        return "renew_failed"
    pending = [t for t in (claim.renewing_since, claim.db_call_since) if t is not None]
    if pending and min(pending) <= deadline:
        return "database_unreachable"
    return "no_progress"


def _waiting(claim: Claim, now: float) -> dict[str, object]:
    """The log fields saying what the database left unanswered for ``claim``."""
    fields: dict[str, object] = {}
    if claim.renew_error:
        fields["error"] = claim.renew_error
    if claim.renewing_since is not None:
        fields["renewal_waiting_seconds"] = round(now - claim.renewing_since, 3)
    if claim.db_call_since is not None:
        fields["db_call_waiting_seconds"] = round(now - claim.db_call_since, 3)
    return fields


def _stat_fields(path: str) -> list[bytes] | None:
    """The fields of a ``/proc/.../stat`` file after the command name (field 3 on; proc(5))."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def _thread_cpu(native_id: int) -> int | None:
    """utime + stime of a thread of this process (clock ticks; proc(5) fields 14, 15)."""
    fields = _stat_fields(f"/proc/self/task/{native_id}/stat")
    return int(fields[11]) + int(fields[12]) if fields and len(fields) > 12 else None


def _process_counters(pid: int) -> tuple[int, int] | None:
    """(CPU ticks, bytes read + written) of process ``pid``: utime + stime + cutime +
    cstime (proc(5) ``/proc/PID/stat`` fields 14-17) and rchar + wchar (``/proc/PID/io``)."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    if not fields or len(fields) <= 14:
        return None
    cpu = sum(int(f) for f in fields[11:15])
    io = 0
    try:
        with open(f"/proc/{pid}/io", "rb") as handle:
            for line in handle:
                name, _, value = line.partition(b":")
                if name in (b"rchar", b"wchar"):
                    io += int(value)
    except (OSError, ValueError):
        pass  # CPU time alone
    return cpu, io
