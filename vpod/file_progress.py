"""Progress of one file's remux, for people: the log and ``vpod status``.

A remux of a large file takes minutes; the tool's own progress output
(:mod:`vpod.media.tool_progress`) becomes:

* a ``file_progress`` log line (info) each time the remux passes another 10 % step
  (10, 20, … 90 %; at most 9 lines per remux, however long or short it is), with
  ``percent`` and ``eta_seconds``;
* the file's database row (``vpod status``), written when the first percentage arrives
  and then at most once every :data:`STORE_INTERVAL_SECONDS`, so a remux costs a
  handful of small writes however long it runs.

The estimate is linear: the time since the tool started, scaled by what is left.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from vpod.db.store import StoreError

LOG_STEP_PERCENT = 10.0
STORE_INTERVAL_SECONDS = 5.0


class FileProgress:
    """Turns percentages (0 to 100, from :meth:`update`) into log lines and row updates.

    Args:
        note: records (percent, eta_seconds or ``None``) in the file's row; a busy or
            failing database is skipped (logged at debug level): progress is best-effort
            and never fails a file.
        log: the structlog logger; lines carry the context bound by the caller
            (``path``, ``worker``, ``batch_id``).
        clock: monotonic seconds.
    """

    def __init__(
        self,
        note: Callable[[float, float | None], None],
        log: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.note = note
        self.log = log
        self.clock = clock
        self._started: float | None = None
        self._logged_step = 0
        self._stored_at: float | None = None

    def update(self, percent: float, *, speed: float | None = None, fps: float | None = None) -> None:
        """The tool reports ``percent`` done; 0 marks its start (the estimate's origin).
        ``speed`` and ``fps`` (an encode's, :data:`vpod.media.tool_progress.ProgressSink`)
        are accepted and not used here yet."""
        now = self.clock()
        if self._started is None:
            self._started = now
        if percent <= 0 or percent >= 100:
            return  # nothing to estimate from yet, or done: file_processed follows
        eta = (now - self._started) * (100.0 - percent) / percent
        if self._stored_at is None or now - self._stored_at >= STORE_INTERVAL_SECONDS:
            self._stored_at = now
            try:
                self.note(percent, eta)
            except StoreError as exc:
                self.log.debug("progress_not_recorded", error=str(exc))
        step = int(percent // LOG_STEP_PERCENT)
        if step > self._logged_step:
            self._logged_step = step
            self.log.info("file_progress", percent=round(percent, 1), eta_seconds=round(eta))
