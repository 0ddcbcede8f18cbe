"""Run one queued job through the pipeline and record the outcome: shared by both front ends."""

from __future__ import annotations

import contextlib
import os
from stat import S_ISREG
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Sequence

import structlog

from vpod.db.store import LEASE_SECONDS, Job, Outcome, Store, StoreBusy, StoreError
from vpod.errors import LeaseLost, MediaError
from vpod.file_progress import FileProgress, ProgressBoard
from vpod.fingerprint import fingerprint_path, is_unread
from vpod.lanes import TranscodeDeferred
from vpod.outcomes import Reason, Retry, Status
from vpod.pipeline import FileProcessor, PipelineOutput
from vpod.policy.selection import PolicySelector
from vpod.results import FileProcessingResult, display_path, utf8_text

if TYPE_CHECKING:
    from vpod.lanes import TranscodeLane
    from vpod.leases import Claim, LeaseKeeper
    from vpod.policy.plan import Plan

RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
WAIT_REASONS = frozenset(r for r in Reason if r.retry is Retry.WAITS)
"""``insufficient_space`` and ``original_language_unavailable``: the file waits (see :class:`JobRunner`)."""
TIMEOUT_REASONS = frozenset(r for r in Reason if r.retry is Retry.ONCE)
"""``timeout`` and ``probe_timeout``: a tool ran past its time limit (``[processing]`` ``probe_timeout_seconds``, or
``tool_timeout_seconds`` plus ``tool_timeout_seconds_per_gib``) and was killed."""


def attempts_allowed(reason: Reason | None, max_attempts: int) -> int:
    """How many attempts a file that keeps failing for the transient ``reason`` gets.

    ``max_attempts``, except after a timeout: at most 2. The same bytes usually hang the
    same tool again (a malformed file mkvmerge spins on), so a file is tried once more
    (the machine may have been overloaded) and then fails for good, instead of holding
    a worker for ``max_attempts`` limits.
    """
    return min(max_attempts, 2) if reason in TIMEOUT_REASONS else max_attempts


def retry_delay(attempt: int) -> float:
    """Backoff before retry number ``attempt`` (1-based): 5 s doubling, at most 5 min."""
    return min(RETRY_BASE_SECONDS * 2.0 ** (attempt - 1), RETRY_MAX_SECONDS)


class JobRunner:
    """Marks a job in progress, processes it, records and logs the outcome.

    Transient failures (a tool timed out or was killed, the file was locked) go back to
    the queue with backoff until ``max_attempts`` tries were made (a timeout: two, see
    :func:`attempts_allowed`; its final failure is then permanent, so the file waits
    until its content changes or ``vpod retry``); everything else is final. With
    ``wait_for_space`` (the daemon), a file that does not fit in the free
    space (reason ``insufficient_space``), or whose original language waits for a
    Sonarr/Radarr instance (``original_language_unavailable``), waits instead: it goes
    back to the queue with backoff (5 s doubling to 5 min, counted per file in this
    runner), and the attempt does not count against ``max_attempts``, so a disk that is
    full for a while, or an instance down for a while, never makes a file fail for good. Log events: ``file_started`` (debug level: a worker
    took the file, before it is locked and probed), ``file_progress`` (a remux passed
    another 10 %: :mod:`vpod.file_progress`), ``file_processed``, ``file_failed``, ``file_skipped``,
    ``file_planned`` (dry run), ``file_retry``; each line carries ``path``, ``worker``
    and ``batch_id``, and the outcome lines ``policy`` and ``policy_why``: which policy
    judged the file and why (:class:`vpod.policy.selection.Selection`).

    Claims (docs/architecture.md "Claims and leases"): a job comes claimed
    (:meth:`Store.claim`, :attr:`Job.lease` set) or is started here with a lease
    (:meth:`Store.start`); while it runs, ``leases`` (:class:`vpod.leases.LeaseKeeper`)
    renews the lease and may fence the claim. A result whose claim is gone is discarded:
    ``lease_lost`` when the compare-and-set before the replace, or the recording of the
    outcome, found another claim on the row; nothing more when this node fenced the
    claim itself (``lease_self_fenced`` was logged then).

    A file found gone (``vanished``) whose library folder is no longer proven here
    (``mount_lost``: :meth:`vpod.watch.library_id.LibraryMounts.lost`, its marker gone
    with it: the share was unmounted) did not vanish: the job is given back
    (:meth:`Store.release`, the attempt not counted), ``file_given_back`` is logged and
    the result discarded, so another node, or this one once its mount is back, does it.

    The transcode lane (``lane``, :mod:`vpod.lanes`): a plan that costs ``"transcode"``
    takes a slot before the file is touched; with no free slot, or outside
    ``transcode_hours``, the job is given back (:meth:`Store.release`: queued, the
    attempt not counted; ``transcode_deferred`` logged once), ``on_deferred`` is told and
    the result discarded. A transcode whose encoder shutdown killed
    (:meth:`TranscodeLane.cancel_all`) is given back the same way (``transcode_cancelled``).
    """

    def __init__(
        self,
        store: Store,
        processor: FileProcessor,
        *,
        max_attempts: int,
        stop: threading.Event | None = None,
        on_outcome: Callable[[FileProcessingResult, bool], None] | None = None,
        on_start: Callable[[Job, str, str], None] | None = None,
        wait_for_space: bool = False,
        leases: LeaseKeeper | None = None,
        lease_seconds: float = LEASE_SECONDS,
        mount_lost: Callable[[Path], str | None] = lambda path: None,
        on_hung: Callable[[Job], None] | None = None,
        lane: TranscodeLane | None = None,
        on_deferred: Callable[[Job, TranscodeDeferred], None] | None = None,
    ) -> None:
        self.store = store
        # The transcode lane (vpod/lanes.py): a plan that transcodes needs one of its slots.
        self.lane = lane
        # The progress of the files in progress, by worker (the daemon's /metrics).
        self.progress_board = ProgressBoard()
        # Called with (job, deferral) when a transcode was deferred and the job given back.
        self.on_deferred = on_deferred
        self.mount_lost = mount_lost
        self.leases = leases
        self.lease_seconds = lease_seconds
        self.processor = processor
        self.max_attempts = max_attempts
        self.wait_for_space = wait_for_space
        # Job id → how many times in a row it found too little free space (its backoff).
        self._space_waits: dict[int, int] = {}
        self._space_lock = threading.Lock()
        self.stop = stop or threading.Event()
        # Called with (result, retrying) once the outcome is recorded (the daemon's metrics).
        self.on_outcome = on_outcome
        # Called with (job, worker, batch_id) once the job is ours (the daemon's events).
        self.on_start = on_start
        # Called with the job when its tool hung here and it goes back for a retry (the
        # daemon's Feeder leaves it to the other nodes for a while: Feeder.avoid).
        self.on_hung = on_hung
        self.log = structlog.get_logger("vpod")

    def _record(self, write: Callable[[], None]) -> None:
        """Run a Store write, waiting out a database locked by another process.

        The outcome of work already done must not be lost, so a busy database is
        retried with backoff (1 s doubling to 30 s) until it answers or the daemon
        stops; then the job stays ``processing`` and is requeued at the next start.

        Raises:
            StoreBusy: still locked when the stop flag was set.
            StoreError: the database is unusable.
        """
        delay = 1.0
        while True:
            try:
                write()
                return
            except StoreBusy as exc:
                if self.stop.is_set():
                    raise
                self.log.warning("database_busy", error=str(exc), retry_in_seconds=delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def run(self, job: Job, policies: PolicySelector, worker: str, batch_id: str) -> FileProcessingResult | None:
        """Process ``job`` under the policy ``policies`` selects for it; ``None`` when
        another worker or process took it first. A folder policy file that cannot be
        used fails the file (``bad_folder_policy``, permanent) before it is opened.

        An unexpected exception (a bug in vpod, not a problem of the file) does not leave
        the job ``processing``: it is logged as ``worker_error`` with the traceback and
        recorded as a final failure, reason ``internal_error`` (not permanent: the next
        start, a change or ``vpod retry`` tries the file again), so batches still count it.

        Raises:
            vpod.db.store.StoreBusy / StoreError: the outcome could not be recorded
                (the job stays ``processing`` and is requeued at the next start).
            Exception: recording the ``internal_error`` failed too (the job stays
                ``processing`` until the next start).
        """
        if job.lease is None:
            claimed = self.store.start(job, worker, batch_id, lease_seconds=self.lease_seconds)
            if claimed is None:
                return None
            job = claimed
        if is_unread(job.fingerprint):
            read = self._read_content(job, policies)
            if read is None:
                return None  # same content as a file vpod left done elsewhere: recorded, no tool run
            job = read
        if self.on_start:
            self.on_start(job, worker, batch_id)
        with (
            structlog.contextvars.bound_contextvars(path=display_path(job.path), worker=worker, batch_id=batch_id),
            self._hold(job, worker) as claim,
        ):
            self.log.debug("file_started", attempt=job.attempts + 1)
            return self._run_claimed(job, policies, worker, batch_id, claim)

    def _read_content(self, job: Job, policies: PolicySelector) -> Job | None:
        """Read the content of a job a folder walk queued unread (:func:`vpod.fingerprint.unread`)
        and apply the same-content rule before anything is probed (:meth:`Store.read_content`):
        ``None`` when a result elsewhere vouches for it under the policy that judges this
        path now (``file_not_queued`` with ``outcome = "same_content_done"``, info level, as
        the intake logs it; no tool runs), else the job with its fingerprint. A file that
        cannot be read or judged here goes on unread: the pipeline records why.

        Raises:
            vpod.db.store.StoreError: the database could not be read or written.
        """
        try:
            digest = policies.select(job.path, root=job.root, library=job.library or None).policy.digest
            if not S_ISREG(os.lstat(job.path).st_mode):
                return job  # no longer the regular file the walk found: the pipeline judges what it is now
            fingerprint, stat = fingerprint_path(job.path)
        except (MediaError, OSError):
            return job  # a bad folder policy file, a file gone or unreadable: the pipeline says so
        try:
            twin = self.store.read_content(job, fingerprint, stat, digest)
        except LeaseLost as exc:
            self.log.error("lease_lost", path=display_path(job.path), error=str(exc), hint="another node has the file")
            return None
        if not twin:
            return replace(job, fingerprint=fingerprint)
        self.log.info(
            "file_not_queued", path=display_path(job.path), outcome="same_content_done",
            hint="same content as a file vpod already handled under the current policy;"
            " `vpod process --force PATH` forces a new look",
        )
        return None

    def _hold(self, job: Job, worker: str) -> ContextManager[Claim | None]:
        """The lease keeper follows ``job`` for the block (no keeper: nothing)."""
        return self.leases.hold(job, worker) if self.leases is not None else contextlib.nullcontext()

    def _run_claimed(
        self, job: Job, policies: PolicySelector, worker: str, batch_id: str, claim: Claim | None
    ) -> FileProcessingResult | None:
        """:meth:`run` once ``job`` is claimed; ``None`` when its result was discarded
        because the claim is gone."""
        started, clock = time.time(), time.monotonic()
        try:
            try:
                result, attempt, write, delay = self._attempt(job, policies, worker, batch_id)
            except TranscodeDeferred as deferred:
                self._record(lambda: self.store.release(job))  # queued again, the attempt not counted
                if self.on_deferred is not None:
                    self.on_deferred(job, deferred)
                return None
            if self.lane is not None and self.lane.was_cancelled(job) and result.failed:
                # Shutdown killed its encoder (its temp file is removed): it restarts from zero later.
                self._record(lambda: self.store.release(job))
                return None
            if self.lane is not None:
                self.lane.forget(job)
            if claim is not None and claim.fenced.is_set():
                if claim.fence_reason in ("suspended", "lease_lost"):
                    # The claim is gone, not just dropped in time: this process was stopped
                    # past its lease, or a renewal found the row taken. The result is discarded.
                    self.log.error(
                        "lease_lost", error=f"{display_path(job.path)}: the claim is gone ({claim.fence_reason}); "
                        "result discarded", hint="another node has the file; nothing was replaced",
                    )
                if claim.fence_reason != "no_progress" or not result.failed:
                    # Dropped by a self-fence (logged): whatever this attempt found (a
                    # failure, or a skip because the file changed under it) is not recorded.
                    return None
                result, attempt, write, delay = self._hung(job, result, batch_id)
            if result.reason is Reason.VANISHED and (lost := self.mount_lost(job.path)) is not None:
                self._record(lambda: self.store.release(job))
                self.log.warning("file_given_back", error=lost, hint="its library's folder is not there on this node")
                return None
            if claim is not None:
                claim.settled = True  # only the outcome's write is left: no renewal finds it done
            self._record(write)
        except StoreError:
            raise
        except LeaseLost as exc:
            self.log.error("lease_lost", error=str(exc), hint="another node has the file; nothing was replaced")
            return None
        except Exception as exc:
            self.log.exception("worker_error")
            result = FileProcessingResult(
                path=job.path, success=False, reason=Reason.INTERNAL_ERROR, permanent=False,
                error=f"{display_path(job.path)}: internal error in vpod (a bug, please report it): {exc!r}",
                duration_seconds=time.monotonic() - clock, started_at=started, ended_at=time.time(),
                worker=worker,
            )
            attempt, delay = job.attempts + 1, 0.0
            # Outcome(result) only: nothing from the failed attempt is trusted.
            try:
                self._record(lambda: self.store.finish(job, Outcome(result), batch_id))
            except LeaseLost as lost:
                self.log.error("lease_lost", error=str(lost), hint="another node has the file")
                return None
        if result.retrying:
            self.log.warning(
                "file_retry", error=utf8_text(result.error), reason=result.reason, attempt=attempt,
                retry_in_seconds=delay,
            )
        else:
            self._log(result)
        if self.on_outcome:
            self.on_outcome(result, result.retrying)
        return result

    def _attempt(
        self, job: Job, policies: PolicySelector, worker: str, batch_id: str
    ) -> tuple[FileProcessingResult, int, Callable[[], None], float]:
        """Run the pipeline on a started job; returns (result, attempt number, the Store
        write that records it, the retry delay in seconds). A transient failure with
        attempts left, or a file waiting for space, comes back marked ``retrying``, its
        write a :meth:`Store.retry_later` with backoff."""
        try:
            selection = policies.select(job.path, root=job.root, library=job.library or None)
        except MediaError as exc:  # a bad folder file: the file cannot be judged until it is fixed
            failed = FileProcessingResult(
                path=job.path, success=False, reason=exc.reason, error=str(exc), permanent=exc.permanent,
                started_at=time.time(), ended_at=time.time(), worker=worker,
            )
            return failed, job.attempts + 1, lambda: self.store.finish(job, Outcome(failed), batch_id), 0.0
        policy = selection.policy
        progress = FileProgress(lambda percent, eta: self._note_progress(job, percent, eta), self.log)
        ticket = self.lane.ticket(job) if self.lane is not None else None

        def before_apply(plan: Plan) -> None:
            if ticket is not None:
                ticket.admit(plan)  # raises TranscodeDeferred: nothing was touched
                progress.transcoding = ticket.holds
            self._record(lambda: self._note_plan(job, plan.describe()))

        self.progress_board.follow(worker, progress, display_path(job.path))
        try:
            with ticket if ticket is not None else contextlib.nullcontext():
                output = self.processor.process(
                    job.path, policy, before_apply=before_apply, on_progress=progress.update,
                )
        except StoreBusy as exc:
            # A temp file could not be registered: nothing was changed yet (or, if the
            # lock hit after the change, the redo finds the file done and counts it).
            busy = FileProcessingResult(
                path=job.path, success=False, reason=Reason.DATABASE_BUSY, error=str(exc), permanent=False
            )
            return self._retry(job, busy, max(job.attempts, 1), batch_id)
        finally:
            self.progress_board.drop(worker)
        result = _account_interrupted(
            job, output, output.result._replace(worker=worker, policy=selection.name, policy_why=selection.why)
        )
        attempt = job.attempts + 1
        waits = self._note_space_wait(job, result)
        if waits:
            return self._wait_for_space(job, result, attempt, waits, batch_id)
        if result.failed and not result.permanent:
            if attempt < attempts_allowed(result.reason, self.max_attempts):
                return self._retry(job, result, attempt, batch_id)
            if result.reason in TIMEOUT_REASONS:
                result = result._replace(permanent=True)  # no more tries on these bytes
        final_relpath = None
        if result.final_path is not None and result.final_path != job.path:
            final_relpath = _relative(result.final_path, job.root)
        tracks = output.media_after.tracks if output.media_after else ()
        outcome = Outcome(
            result, output.fingerprint_after, output.stat_after, final_relpath, tracks, policy.digest,
            selection.name, selection.why,
        )
        return result, attempt, lambda: self.store.finish(job, outcome, batch_id), 0.0

    def _hung(
        self, job: Job, result: FileProcessingResult, batch_id: str
    ) -> tuple[FileProcessingResult, int, Callable[[], None], float]:
        """The work on ``job`` made no progress until its claim was fenced (its tool hung
        and was killed): recorded as a ``timeout`` (tried once more, then a permanent
        failure: :func:`attempts_allowed`), if the claim still holds the row. A retry is
        reported to ``on_hung`` first, so this node leaves it to the others for a while."""
        limit = self.leases.lease_seconds - self.leases.margin_seconds if self.leases is not None else 0.0
        hung = result._replace(
            reason=Reason.TIMEOUT, permanent=False, retrying=False,
            error=f"{display_path(job.path)}: the work made no progress for {limit:g} s (its claim's lease was not "
            f"renewed) and was stopped: {utf8_text(result.error)}",
        )  # fmt: skip
        attempt = job.attempts + 1
        if attempt < attempts_allowed(Reason.TIMEOUT, self.max_attempts):
            if self.on_hung is not None:
                self.on_hung(job)  # the retry is for another node first
            return self._retry(job, hung, attempt, batch_id)
        hung = hung._replace(permanent=True)
        return hung, attempt, lambda: self.store.finish(job, Outcome(hung), batch_id), 0.0

    def _note_progress(self, job: Job, percent: float, eta: float | None) -> None:
        """A remux's progress: recorded for ``vpod status``, and a step for the lease keeper."""
        if self.leases is None:
            self.store.note_progress(job, percent, eta)
            return
        self.leases.beat()
        try:
            self.leases.bounded("recording progress", lambda: self.store.note_progress(job, percent, eta))
        except LeaseLost:
            pass  # the claim is fenced: its tool is being killed, its result discarded

    def _note_plan(self, job: Job, actions: Sequence[str]) -> None:
        if self.leases is None:
            self.store.note_plan(job, actions)
            return
        self.leases.beat()
        self.leases.bounded("recording the plan", lambda: self.store.note_plan(job, actions))

    def _note_space_wait(self, job: Job, result: FileProcessingResult) -> int:
        """How many times in a row ``job`` has now had to wait (:data:`WAIT_REASONS`: too
        little free space, an original language not known yet; 0: it did not, or this
        runner does not wait; the count starts again then)."""
        with self._space_lock:
            if self.wait_for_space and result.failed and result.reason in WAIT_REASONS:
                self._space_waits[job.id] = self._space_waits.get(job.id, 0) + 1
                return self._space_waits[job.id]
            self._space_waits.pop(job.id, None)
            return 0

    def _wait_for_space(
        self, job: Job, result: FileProcessingResult, attempt: int, waits: int, batch_id: str
    ) -> tuple[FileProcessingResult, int, Callable[[], None], float]:
        """A file that had to wait (too little free space, ...) ``waits`` times in a row goes back to
        the queue with backoff, and the attempt is given back."""
        result = result._replace(retrying=True)
        delay = retry_delay(waits)
        return result, attempt, lambda: self.store.retry_later(job, result, delay, batch_id, counted=False), delay

    def _retry(
        self, job: Job, result: FileProcessingResult, attempt: int, batch_id: str
    ) -> tuple[FileProcessingResult, int, Callable[[], None], float]:
        """A transient failure goes back to the queue with backoff: ``result`` marked
        ``retrying``, ``attempt``, the write that requeues it, and the delay."""
        result = result._replace(retrying=True)
        delay = retry_delay(attempt)
        return result, attempt, lambda: self.store.retry_later(job, result, delay, batch_id), delay

    def _log(self, result: FileProcessingResult) -> None:
        judged = {"policy": result.policy, "policy_why": result.policy_why} if result.policy is not None else {}
        if result.status is Status.DONE:
            moved_to = result.final_path if result.final_path != result.path else None
            self.log.info(
                "file_processed",
                success=True,
                changes=result.changes,
                duration_seconds=round(result.duration_seconds, 3),
                actions=list(result.actions),
                **({"final_path": display_path(moved_to)} if moved_to is not None else {}),
                **judged,
            )
        elif result.reason == Reason.DRY_RUN:
            self.log.info("file_planned", actions=list(result.actions), **judged)
        elif result.status is Status.SKIPPED:
            # A hard-linked file may have had the header part of its plan applied.
            applied = {"changes": result.changes, "actions": list(result.actions)} if result.changes else {}
            self.log.info("file_skipped", reason=result.reason, detail=utf8_text(result.error), **applied, **judged)
        else:
            self.log.error("file_failed", error=utf8_text(result.error), reason=result.reason, **judged)


def _account_interrupted(job: Job, output: PipelineOutput, result: FileProcessingResult) -> FileProcessingResult:
    """Count changes an interrupted attempt made (killed after applying, before recording).

    The redo finds the file conforming; its content differs from what was queued and
    the Store still holds the interrupted plan, so that plan's changes are reported
    now, exactly once.
    """
    if (
        job.pending_actions
        and result.success
        and result.changes == 0
        and output.fingerprint_before is not None
        and output.fingerprint_before != job.fingerprint
    ):
        return result._replace(changes=len(job.pending_actions), actions=job.pending_actions)
    return result


def _relative(path: Path, root: Path) -> bytes | None:
    try:
        return os.fsencode(path.relative_to(root))
    except ValueError:
        return None  # a followed symlink's target lives outside the root
