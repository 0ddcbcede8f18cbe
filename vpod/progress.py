"""Progress of a ``vpod process`` run on stderr: one line redrawn in place on a terminal.

:class:`StatusLine` wraps stderr. On a terminal it keeps one status line at the bottom,
redrawn with a carriage return; log lines and warnings written through it go above
that line (it is erased first and drawn again after). When stderr is not a terminal
(a file, a pipe, the journal) it never writes a carriage return: the
:class:`ProgressTracker` prints a plain line now and then instead. Nothing here
writes to stdout, which belongs to the summary and ``--json``.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TextIO

PLAIN_INTERVAL_SECONDS = 30.0
"""Least time between two plain progress lines when stderr is not a terminal."""


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # ValueError: closed stream
        return False


class StatusLine:
    """A text stream (``write``/``flush``/``isatty``) over ``stream`` with one status line.

    Thread-safe. Give it to loggers as their output, so their lines never collide with
    the status line.

    Args:
        stream: normally ``sys.stderr``; ``interactive`` is ``stream.isatty()``.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = _isatty(stream)
        self._lock = threading.RLock()
        self._status = ""  # what the status line says; "" when there is none
        self._drawn = 0  # characters of the status line on screen now
        self._mid_line = False  # the last write did not end a line

    # -- the file-like side, for loggers and warnings --------------------------------

    def write(self, text: str) -> int:
        """Write ``text`` above the status line (which is redrawn after a full line)."""
        with self._lock:
            self._erase()
            written = self.stream.write(text)
            if text:
                self._mid_line = not text.endswith("\n")
            self._draw()
            return written

    def flush(self) -> None:
        """Flush the underlying stream."""
        with self._lock:
            self.stream.flush()

    def isatty(self) -> bool:
        """True when the underlying stream is a terminal (loggers pick colors by it)."""
        return self.interactive

    def fileno(self) -> int:
        """The underlying stream's file descriptor."""
        return self.stream.fileno()

    # -- the status line ---------------------------------------------------------------

    def show(self, status: str) -> None:
        """Make the status line say ``status`` (terminals only; elsewhere a no-op)."""
        if not self.interactive:
            return
        with self._lock:
            self._status = status
            if self._mid_line:
                return  # drawn once the partial line is finished
            # Overwrite in place; spaces cover the rest of a longer previous text.
            pad = max(0, self._drawn - len(status))
            self.stream.write("\r" + status + " " * pad)
            self._drawn = len(status) + pad
            self.stream.flush()

    def end(self) -> None:
        """Leave the status line as it is and move below it; later writes start a new line."""
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
            self._status = ""
            self._drawn = 0

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def _draw(self) -> None:
        if self.interactive and self._status and not self._mid_line:
            self.stream.write("\r" + self._status)
            self._drawn = len(self._status)


class ProgressTracker:
    """Counts files of a batch and shows ``Processing: 3/10 files [2 active]``.

    Thread-safe: workers call :meth:`start_file` and :meth:`complete_file`. On a
    terminal every change redraws the status line in place; otherwise a plain line is
    printed at most every ``plain_interval_seconds`` (never a carriage return).

    Args:
        total: files in the batch.
        line: where to show progress (stderr, never stdout).
        plain_interval_seconds: least time between plain lines; ``None`` prints none.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        total: int,
        line: StatusLine,
        *,
        plain_interval_seconds: float | None = PLAIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.completed = 0
        self.active = 0
        self.failed = 0
        self.line = line
        self.plain_interval_seconds = plain_interval_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._last_plain = clock()

    def start_file(self) -> None:
        """A worker starts a file."""
        with self._lock:
            self.active += 1
            self._print_locked()

    def put_back(self) -> None:
        """A worker gave its file back to run later (a transcode waiting for a slot)."""
        with self._lock:
            self.active -= 1
            self._print_locked()

    def count_unchanged(self, count: int) -> None:
        """``count`` files of the batch are complete without work (unchanged since vpod
        left them conforming)."""
        with self._lock:
            self.completed += count
            if count:
                self._print_locked()

    def complete_file(self, success: bool) -> None:
        """A worker finished a file; ``success`` is False for a failure (a skip is not one)."""
        with self._lock:
            self.active -= 1
            self.completed += 1
            if not success:
                self.failed += 1
            self._print_locked()

    def text(self) -> str:
        """The progress line, e.g. ``Processing: 3/10 files [2 active, 1 failed]``."""
        with self._lock:
            return self._text_locked()

    def print_progress(self, *, force: bool = False) -> None:
        """Show the current counts: redraw on a terminal; elsewhere a plain line if
        ``plain_interval_seconds`` passed since the last one (or ``force``)."""
        with self._lock:
            self._print_locked(force=force)

    def finish(self) -> None:
        """Draw the final counts and leave the line (terminal); nothing elsewhere."""
        with self._lock:
            if self.line.interactive:
                self.line.show(self._text_locked())
                self.line.end()

    def _text_locked(self) -> str:
        extra = f", {self.failed} failed" if self.failed else ""
        return f"Processing: {self.completed}/{self.total} files [{self.active} active{extra}]"

    def _print_locked(self, *, force: bool = False) -> None:
        if self.line.interactive:
            self.line.show(self._text_locked())
            return
        if self.plain_interval_seconds is None and not force:
            return
        now = self.clock()
        if force or now - self._last_plain >= (self.plain_interval_seconds or 0.0):
            self._last_plain = now
            self.line.write(self._text_locked() + "\n")
            self.line.flush()
