"""Batches: :class:`BatchController` (stop on error) and the daemon's batch windows.

Batch states: INITIALIZING → PROCESSING → COMPLETED, or PROCESSING → STOPPING →
COMPLETED with ``stopped_early`` when a file fails under ``on_error = "fail"``: no
pending file starts, files in progress complete.
"""

from __future__ import annotations

import enum
import threading
import time
import uuid

from vpod.results import BatchResult, FileProcessingResult


class BatchState(enum.Enum):
    """Life cycle of a batch."""

    INITIALIZING = "initializing"
    PROCESSING = "processing"
    STOPPING = "stopping"
    COMPLETED = "completed"


def new_batch_id() -> str:
    """A unique, time-sortable batch id: ``YYYYmmddTHHMMSS-xxxxxxxx`` (UTC)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


class BatchController:
    """Decides whether a batch goes on after a failure.

    Args:
        on_error: ``"skip"`` records failures and goes on; ``"fail"`` stops the batch
            at the first failure (pending work is not started).

    Thread-safe; the stop flag is a :class:`threading.Event`.
    """

    def __init__(self, on_error: str) -> None:
        if on_error not in ("skip", "fail"):
            raise ValueError(f'on_error must be "skip" or "fail", not {on_error!r}')
        self.on_error = on_error
        self._stop = threading.Event()
        self.first_failure: FileProcessingResult | None = None
        self._lock = threading.Lock()

    def should_stop(self) -> bool:
        """True once the batch must not start any more files."""
        return self._stop.is_set()

    def signal_stop(self) -> None:
        """Stop starting files (also used for shutdown)."""
        self._stop.set()

    def record(self, result: FileProcessingResult) -> bool:
        """Account for a finished file; returns True when this failure stops the batch."""
        if not result.failed or self.on_error != "fail":
            return False
        with self._lock:
            if self.first_failure is None:
                self.first_failure = result
                self._stop.set()
                return True
        return False

    def reset(self) -> None:
        """Lift a stop (``vpod resume``)."""
        with self._lock:
            self.first_failure = None
            self._stop.clear()


class _Window:
    # A plain class, not a dataclass: nothing compares or copies it, and vpod process
    # builds this module's classes at every start (contrib/bench/findings.md, round 3).
    __slots__ = ("result", "deadline", "active", "running", "clock_start")

    def __init__(self, result: BatchResult, deadline: float) -> None:
        self.result = result
        self.deadline = deadline  # monotonic; no new files join after it
        self.active = 0  # files counted and not finished (running, or waiting for a retry)
        self.running = 0  # of those, files a worker runs now
        self.clock_start = time.monotonic()


class BatchWindows:
    """The daemon's batch windows.

    A window opens when a file starts while none is open, and stops taking files after
    ``window_seconds`` or when the daemon goes idle; it closes (yielding a
    :class:`BatchResult`) once its last file has finished. Files that start after a
    window stopped taking files open the next one, so two windows can overlap while the
    older one drains. Thread-safe.

    A file belongs to the window it first started in. A transient failure that goes
    back to the queue (:meth:`defer_file`) has not finished: its retries run in the
    same window (same batch id on every log line), which closes only once the file has
    its final outcome, counted once. A file whose retry will not come back to this
    daemon (shutdown, a pause, another process took it) is let go by
    :meth:`drop_waiting`, and its window closes without it.
    """

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._lock = threading.Lock()
        self._open: _Window | None = None
        self._draining: dict[str, _Window] = {}
        self._waiting: dict[int, str] = {}  # job id → batch id of a file waiting for its retry
        self._reserved: str | None = None  # the id the next window opens with (named by a claim)

    def start_file(self, job_id: int | None = None) -> str:
        """A worker is about to start a file (the queue's ``job_id``); returns the batch
        id it belongs to: the window of its earlier attempt when it waits for a retry."""
        with self._lock:
            earlier = self._waiting.pop(job_id, None) if job_id is not None else None
            window = self._find(earlier) if earlier is not None else None
            if window is not None:
                window.running += 1
                return window.result.batch_id  # still counted in that window since its first attempt
            now = time.monotonic()
            if self._open is not None and now >= self._open.deadline:
                self._retire_open()
            if self._open is None:
                result = BatchResult(batch_id=self._reserved or new_batch_id(), started_at=time.time())
                self._reserved = None
                self._open = _Window(result, now + self.window_seconds)
            self._open.active += 1
            self._open.running += 1
            self._open.result.total_files += 1
            return self._open.result.batch_id

    def next_batch_id(self) -> str:
        """The id of the window a file starting now joins: the open one's, else the id
        the next window will open with. What a claim names in its row before its file
        starts (:meth:`start_file` gives the file's own: a retry's earlier window)."""
        with self._lock:
            if self._open is not None and time.monotonic() < self._open.deadline:
                return self._open.result.batch_id
            if self._reserved is None:
                self._reserved = new_batch_id()
            return self._reserved

    def cancel_file(self, batch_id: str) -> None:
        """A file counted by :meth:`start_file` was not processed after all."""
        with self._lock:
            window = self._find(batch_id)
            if window is not None:
                window.active -= 1
                window.running -= 1
                window.result.total_files -= 1

    def defer_file(self, batch_id: str, job_id: int) -> None:
        """A file of ``batch_id`` failed transiently and waits in the queue for a retry:
        it stays counted, and keeps its window from closing, until it finishes."""
        with self._lock:
            window = self._find(batch_id)
            if window is not None:
                window.running -= 1
                self._waiting[job_id] = batch_id

    def waiting(self) -> int:
        """How many files wait for a retry in a window."""
        with self._lock:
            return len(self._waiting)

    def drop_waiting(self) -> int:
        """Stop waiting for the retries of :meth:`defer_file` (their windows close
        without them; a retry that comes later opens a new window); returns how many."""
        with self._lock:
            dropped = list(self._waiting.values())
            self._waiting.clear()
            for batch_id in dropped:
                window = self._find(batch_id)
                if window is not None:
                    window.active -= 1
                    window.result.total_files -= 1
            return len(dropped)

    def finish_file(self, batch_id: str, result: FileProcessingResult, *, stopped_early: bool = False) -> None:
        """Record a finished file in its window; ``stopped_early`` ends that window
        (``on_error = "fail"``): it takes no more files and closes once drained."""
        with self._lock:
            window = self._find(batch_id)
            if window is None:
                return
            window.active -= 1
            window.running -= 1
            window.result.results.append(result)
            if stopped_early:
                window.result.stopped_early = True
                if window is self._open:
                    self._retire_open()

    def next_deadline(self) -> float | None:
        """Monotonic time at which the open window stops taking files, if one is open."""
        with self._lock:
            return self._open.deadline if self._open is not None else None

    def close_ready(self, idle: bool) -> list[BatchResult]:
        """Windows that are done: past their deadline or ``idle``, with no file in progress.

        ``idle`` is the caller's view (nothing running, nothing queued), read a moment
        before this lock: a file claimed in between may already run in the open window,
        which then keeps taking files (the caller's idle was stale). Windows that did no
        work are dropped silently.
        """
        with self._lock:
            window = self._open
            if window is not None and ((idle and window.running <= 0) or time.monotonic() >= window.deadline):
                self._retire_open()
            done = [w for w in self._draining.values() if w.active <= 0]
            for window in done:
                del self._draining[window.result.batch_id]
        closed = []
        for window in done:
            result = window.result
            result.ended_at = time.time()
            result.total_duration_seconds = time.monotonic() - window.clock_start
            if result.total_files:
                closed.append(result)
        return closed

    def _retire_open(self) -> None:
        assert self._open is not None
        self._draining[self._open.result.batch_id] = self._open
        self._open = None

    def _find(self, batch_id: str) -> _Window | None:
        if self._open is not None and self._open.result.batch_id == batch_id:
            return self._open
        return self._draining.get(batch_id)
