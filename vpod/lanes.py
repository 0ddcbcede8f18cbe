"""The transcode lane: at most ``max_transcodes`` files encode at once on a node, within the workers.

A header edit takes a fraction of a second, an encode minutes to hours. So that a file
needing a flag fix is done at once even while long encodes run, the workers form two
lanes: every worker takes header edits and remuxes, and at most ``[processing]
max_transcodes`` of them encode at once (a slot each), and only inside ``[processing]
transcode_hours`` (local time; empty: any time).

A worker learns a plan's cost only after it probed and planned the file
(:attr:`vpod.policy.plan.Plan.cost`), in the pipeline's ``before_apply`` hook. There a
plan that costs ``"transcode"`` takes a slot (:meth:`LaneTicket.admit`, never waits) or
raises :class:`TranscodeDeferred` before the file is touched: the job goes back to the
queue without counting an attempt (:class:`vpod.jobs.JobRunner`), ``transcode_deferred``
is logged once per file with its reason (``lane_full`` / ``outside_transcode_hours``,
and when the next window opens), and this node passes the file over in its claims
(:meth:`TranscodeLane.passed_over` → :meth:`vpod.feeder.Feeder.try_claim` →
``Store.claim(exclude=...)``) until a slot frees (the lane pokes the workers) or the
window opens, so free workers take the other files meanwhile. docs/architecture.md
"The transcode lane".

At shutdown, :meth:`TranscodeLane.cancel_all` kills the encoders of the running
transcodes at once (they do not wait for ``shutdown_timeout_seconds``); each such job
is given back to the queue without counting an attempt and restarts from zero at the
next start (an encode cannot resume from a partial temp file).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import structlog

from vpod.outcomes import Reason
from vpod.results import display_path

if TYPE_CHECKING:
    from vpod.config import ProcessingConfig, VPOConfig
    from vpod.db.store import Job
    from vpod.media.tools import ToolRunner
    from vpod.policy.plan import Plan

LANE_FULL = "lane_full"
OUTSIDE_HOURS = Reason.OUTSIDE_TRANSCODE_HOURS.value  # vpod process reports it as the file's skip reason


class HoursWindow(NamedTuple):
    """One ``"HH:MM-HH:MM"`` window of ``transcode_hours``, in minutes after local midnight.

    ``start == end`` means the whole day. ``start > end`` crosses midnight
    (``"22:00-07:00"``: from 22:00 to 07:00 the next morning). The end is exclusive.
    """

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> HoursWindow:
        """``"22:00-07:00"`` → ``HoursWindow(1320, 420)``.

        Raises:
            ValueError: not ``HH:MM-HH:MM`` (the config checks it first: :mod:`vpod.config`).
        """
        first, _, second = text.partition("-")
        return cls(_minutes(first), _minutes(second))

    def contains(self, minute: int) -> bool:
        """True when ``minute`` (0 to 1439 after local midnight) is inside the window."""
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


def _minutes(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes)
    if not (0 <= int(hours) <= 23 and 0 <= int(minutes) <= 59):
        raise ValueError(f"not a time of day: {text!r}")
    return value


class TranscodeHours:
    """``[processing] transcode_hours``: when new transcodes may start (local time).

    Args:
        windows: the ``"HH:MM-HH:MM"`` strings; empty: any time.
    """

    def __init__(self, windows: Sequence[str] = ()) -> None:
        self.windows = tuple(HoursWindow.parse(w) for w in windows)
        self.text = tuple(windows)

    def open_at(self, when: dt.datetime) -> bool:
        """True when a transcode may start at ``when`` (a local, naive datetime)."""
        if not self.windows:
            return True
        minute = when.hour * 60 + when.minute
        return any(w.contains(minute) for w in self.windows)

    def next_open(self, when: dt.datetime) -> dt.datetime | None:
        """The first minute at or after ``when`` at which a window is open (``when``
        itself when one is open now; ``None``: no window at all, i.e. always open)."""
        if not self.windows:
            return None
        start = when.replace(second=0, microsecond=0)
        if self.open_at(when):
            return when
        for step in range(1, 24 * 60 + 1):
            candidate = start + dt.timedelta(minutes=step)
            if self.open_at(candidate):
                return candidate
        return None  # unreachable: a window holds at least one minute


class TranscodeDeferred(Exception):
    """A transcode may not start now (raised by :meth:`LaneTicket.admit` from the
    pipeline's ``before_apply``, before the file is touched).

    Attributes:
        reason: ``lane_full``, ``outside_transcode_hours`` or ``shutting_down`` (not logged).
        next_window: when the next window opens (local time; only for outside hours).
    """

    def __init__(self, reason: str, message: str, next_window: dt.datetime | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.next_window = next_window


class _Running(NamedTuple):
    job: Job
    thread_id: int


class TranscodeLane:
    """The slots of one node's transcode lane (a non-blocking semaphore), the files it
    deferred, and the cancellation of running encodes at shutdown. Thread-safe.

    Args:
        max_transcodes: slots (``[processing] max_transcodes``).
        hours: ``[processing] transcode_hours``.
        now: local wall-clock time (a naive datetime; tests pass a fake clock).
        on_free: called (outside the lock) when a slot frees: the Feeder's poke, so the
            workers claim the files passed over.
        on_change: called (outside the lock) when a transcode takes or frees a slot: the
            daemon's :meth:`vpod.daemon.transcodes.TranscodeStatus.changed`, so ``vpod
            status`` shows an encode's start and end without waiting for a timer.
    """

    def __init__(
        self,
        max_transcodes: int = 1,
        hours: TranscodeHours | None = None,
        *,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        on_free: Callable[[], None] = lambda: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.max_transcodes = max_transcodes
        self.hours = hours or TranscodeHours()
        self.now = now
        self.on_free = on_free
        self.on_change = on_change
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}  # job id → the running transcode
        self._deferred: dict[int, str] = {}  # job id → reason: passed over in claims
        self._logged: dict[int, str] = {}  # job id → the reason logged (transcode_deferred once)
        self._cancelled: set[int] = set()  # job ids whose encoder shutdown killed
        self._closed = False  # shutdown: no transcode starts any more
        self._canceller: ToolRunner | None = None  # the runner cancel_all cancelled the encodes' threads in
        self.log = structlog.get_logger("vpod")

    @classmethod
    def from_config(cls, processing: ProcessingConfig, **kwargs: object) -> TranscodeLane:
        """The lane ``[processing]`` describes (``max_transcodes``, ``transcode_hours``)."""
        return cls(processing.max_transcodes, TranscodeHours(processing.transcode_hours), **kwargs)  # type: ignore[arg-type]

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply reloaded ``[processing] max_transcodes`` and ``transcode_hours`` (live:
        from the next admission; running transcodes go on). Workers are poked: a wider
        lane or a new window may let a deferred file start."""
        processing = config.processing
        with self._lock:
            self.max_transcodes = processing.max_transcodes
            self.hours = TranscodeHours(processing.transcode_hours)
            self._deferred.clear()
        self.on_free()

    def check_width(self, workers: int, encoding: Sequence[str] = ()) -> None:
        """Log ``transcode_lane_wide`` (warning) when ``max_transcodes >= workers``
        (:func:`lane_warning`; ``encoding``: the config's policies that encode): at
        start and after a reload."""
        warning = lane_warning(workers, self.max_transcodes, encoding)
        if warning is not None:
            self.log.warning(
                "transcode_lane_wide", workers=workers, max_transcodes=self.max_transcodes, warning=warning
            )

    def ticket(self, job: Job) -> LaneTicket:
        """The lane's part in one attempt on ``job`` (a context manager: the slot, if
        taken, is freed when the attempt ends)."""
        return LaneTicket(self, job)

    def running(self) -> int:
        """Transcodes running now on this node."""
        with self._lock:
            return len(self._running)

    def deferred(self) -> int:
        """Files deferred and passed over now (lane full, or outside the hours)."""
        with self._lock:
            return len(self._deferred)

    def outside_hours(self) -> tuple[int, dt.datetime | None]:
        """Of :meth:`deferred`, the files waiting for a ``transcode_hours`` window (the
        others wait for a slot: lane full), and when the next window opens (local time;
        ``None`` when none waits)."""
        now = self.now()
        with self._lock:
            waiting = sum(1 for reason in self._deferred.values() if reason == OUTSIDE_HOURS)
            opens = self.hours.next_open(now) if waiting else None
        return waiting, opens

    def passed_over(self) -> tuple[list[int], float | None]:
        """The job ids a claim must pass over now, and the seconds until that may change
        by itself (a window opens; ``None``: only when a slot frees, which pokes).

        A deferral holds while every slot is taken, and an outside-hours one also until a
        window opens. When slots are free, only as many deferred files as free slots are
        let through (the oldest deferrals first) and forgotten here; the others stay
        passed over, so a freed slot costs one more probe, not one per waiting file. A
        file let through that is then not claimed here (another node did it) keeps no
        slot: the next call lets the next one through."""
        now = self.now()
        with self._lock:
            open_now = self.hours.open_at(now)
            free = max(0, self.max_transcodes - len(self._running))
            for job_id, reason in list(self._deferred.items()):
                if reason == OUTSIDE_HOURS and not open_now:
                    continue
                if free > 0:
                    del self._deferred[job_id]
                    free -= 1
                else:
                    self._deferred[job_id] = LANE_FULL  # the window is open, the lane is not
            ids = sorted(self._deferred)
            wait = None
            if any(r == OUTSIDE_HOURS for r in self._deferred.values()):
                opens = self.hours.next_open(now)
                wait = max(1.0, (opens - now).total_seconds()) if opens is not None else None
        return ids, wait

    def was_cancelled(self, job: Job) -> bool:
        """True (once) when shutdown killed ``job``'s encoder: the job is given back."""
        with self._lock:
            if job.id in self._cancelled:
                self._cancelled.discard(job.id)
                return True
            return False

    def cancel_all(self, runner: ToolRunner) -> list[Job]:
        """Shutdown: kill the tools of every running transcode at once (SIGKILL to each
        tool's process group, :meth:`vpod.media.tools.ToolRunner.cancel_thread` then
        :meth:`~vpod.media.tools.ToolRunner.reap`) and refuse the tools their threads
        would start next, until their slots are freed; the pipeline removes their temp
        files and the workers give the jobs back (:meth:`was_cancelled`). Returns the jobs."""
        killed = []
        with self._lock:  # held while refusing: a slot freed meanwhile (_free) allows its thread after
            self._closed = True
            self._canceller = runner
            running = list(self._running.values())
            self._cancelled.update(r.job.id for r in running)
            for entry in running:
                # Its current tool is killed, and no next one starts: the worker may be between
                # two tools (probed, its encoder not started yet) (ToolRunner.cancel_thread).
                killed.extend(runner.cancel_thread(entry.thread_id))
        for entry in running:
            self.log.warning(
                "transcode_cancelled", path=display_path(entry.job.path),
                hint="shutdown: the encoder was killed and its temp file removed; the file is queued again and its "
                "transcode restarts from zero at the next start",
            )
        runner.reap(killed, grace_seconds=0.0)
        return [r.job for r in running]

    def _admit(self, job: Job, plan: Plan, thread_id: int) -> bool:
        """Take a slot for ``plan`` (True), or nothing to take (a plan that does not
        transcode: False). Raises :class:`TranscodeDeferred`."""
        if plan.cost != "transcode":
            return False
        now = self.now()
        deferred: TranscodeDeferred | None = None
        first = False
        with self._lock:
            if self._closed:
                raise TranscodeDeferred("shutting_down", f"{display_path(job.path)}: vpod is stopping")
            if not self.hours.open_at(now):
                opens = self.hours.next_open(now)
                deferred = TranscodeDeferred(
                    OUTSIDE_HOURS,
                    f"{display_path(job.path)}: a transcode starts only inside transcode_hours "
                    f"{list(self.hours.text)}; the next window opens at {opens:%Y-%m-%d %H:%M}",
                    opens,
                )
            elif len(self._running) >= self.max_transcodes:
                deferred = TranscodeDeferred(
                    LANE_FULL,
                    f"{display_path(job.path)}: {len(self._running)} of max_transcodes = {self.max_transcodes} "
                    "transcodes run; it starts when one ends",
                )
            else:
                self._running[job.id] = _Running(job, thread_id)
                self._deferred.pop(job.id, None)
                self._logged.pop(job.id, None)
            if deferred is not None:
                self._deferred[job.id] = deferred.reason
                first = self._logged.get(job.id) != deferred.reason
                self._logged[job.id] = deferred.reason
        if deferred is None:
            self.on_change()  # outside the lock: it wakes the daemon's main loop
            return True
        if first:
            fields = {"next_window": f"{deferred.next_window:%Y-%m-%dT%H:%M}"} if deferred.next_window else {}
            self.log.info(
                "transcode_deferred", path=display_path(job.path), reason=deferred.reason,
                running=self.running(), max_transcodes=self.max_transcodes, **fields,
            )
        raise deferred

    def _free(self, job: Job) -> None:
        with self._lock:
            entry = self._running.pop(job.id, None)
            if entry is not None and job.id in self._cancelled and self._canceller is not None:
                self._canceller.allow_thread(entry.thread_id)  # its cancelled work has ended
        if entry is not None:
            self.on_change()
            self.on_free()

    def forget(self, job: Job) -> None:
        """``job`` left this node's hands for good (finished, failed): no deferral kept."""
        with self._lock:
            self._logged.pop(job.id, None)
            self._deferred.pop(job.id, None)


class LaneTicket:
    """One attempt's use of the lane: :meth:`admit` from ``before_apply``; the slot it
    took is freed when the ``with`` block ends (whatever happened)."""

    def __init__(self, lane: TranscodeLane, job: Job) -> None:
        self.lane = lane
        self.job = job
        self.holds = False

    def admit(self, plan: Plan) -> None:
        """Let ``plan`` be applied now: a transcode takes a slot, anything else passes.

        Raises:
            TranscodeDeferred: a transcode with no free slot, or outside the hours.
        """
        if not self.holds:
            self.holds = self.lane._admit(self.job, plan, threading.get_ident())

    def __enter__(self) -> LaneTicket:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.holds:
            self.holds = False
            self.lane._free(self.job)


def lane_warning(workers: int, max_transcodes: int, encoding: Sequence[str] = ()) -> str | None:
    """The warning for a lane as wide as the workers (``max_transcodes >= workers``):
    every worker may then be encoding, and header edits and remuxes wait behind the
    encodes (issue 18: "transcodes must not starve header edits"). ``encoding``: the
    config's policies that encode (:func:`vpod.cpu.encoding_policies`).

    ``None`` when a worker stays free for them; also with one worker when no policy of
    the config encodes (only a folder ``.vpod.toml`` could then encode, unknown up
    front: ``vpod doctor`` says so). The fix named: ``workers = max_transcodes + 1``,
    which the cap always allows (:func:`vpod.cpu.worker_cap`), or leaving ``workers``
    unset when a policy encodes (the default is then half the CPUs plus
    ``max_transcodes``), or a lower ``max_transcodes``."""
    if max_transcodes < workers or (workers <= 1 and not encoding):
        return None
    fixes = [f"set workers = {max_transcodes + 1}"]
    if encoding:
        fixes.append("leave workers unset (then half the CPUs plus max_transcodes)")
    if workers > 1:
        fixes.append("set max_transcodes below workers")
    who = f" (policy {', '.join(encoding)} encodes)" if encoding else ""
    return (
        f"max_transcodes = {max_transcodes} is not below workers = {workers}{who}: every worker may be encoding at "
        f"once, and header edits and remuxes then wait behind the encodes; {', or '.join(fixes)}"
    )
