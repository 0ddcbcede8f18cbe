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
from dataclasses import dataclass, field

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


@dataclass
class _Window:
    result: BatchResult
    deadline: float  # monotonic; no new files join after it
    active: int = 0
    clock_start: float = field(default_factory=time.monotonic)


class BatchWindows:
    """The daemon's batch windows.

    A window opens when a file starts while none is open, and stops taking files after
    ``window_seconds`` or when the daemon goes idle; it closes (yielding a
    :class:`BatchResult`) once its last file has finished. Files that start after a
    window stopped taking files open the next one, so two windows can overlap while the
    older one drains. Thread-safe.
    """

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._lock = threading.Lock()
        self._open: _Window | None = None
        self._draining: dict[str, _Window] = {}

    def start_file(self) -> str:
        """A worker is about to start a file; returns the batch id it belongs to."""
        with self._lock:
            now = time.monotonic()
            if self._open is not None and now >= self._open.deadline:
                self._retire_open()
            if self._open is None:
                result = BatchResult(batch_id=new_batch_id(), started_at=time.time())
                self._open = _Window(result, now + self.window_seconds)
            self._open.active += 1
            self._open.result.total_files += 1
            return self._open.result.batch_id

    def cancel_file(self, batch_id: str) -> None:
        """A file counted by :meth:`start_file` was not processed after all."""
        with self._lock:
            window = self._find(batch_id)
            if window is not None:
                window.active -= 1
                window.result.total_files -= 1

    def finish_file(self, batch_id: str, result: FileProcessingResult, *, stopped_early: bool = False) -> None:
        """Record a finished file in its window; ``stopped_early`` ends that window
        (``on_error = "fail"``): it takes no more files and closes once drained."""
        with self._lock:
            window = self._find(batch_id)
            if window is None:
                return
            window.active -= 1
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

        Windows that did no work are dropped silently.
        """
        with self._lock:
            if self._open is not None and (idle or time.monotonic() >= self._open.deadline):
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
