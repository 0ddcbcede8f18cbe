"""Progress of one file's remux or transcode, for people: the log, ``vpod status`` and /metrics.

A remux of a large file takes minutes, an encode hours; the tool's own progress output
(:mod:`vpod.media.tool_progress`) becomes:

* a ``file_progress`` log line (info), with ``percent`` and ``eta_seconds``:
  for a remux each time it passes another 10 % step (10, 20, … 90 %; at most 9 lines
  however long or short it is); for a transcode (:attr:`FileProgress.transcoding`) at
  most once and at least once every :data:`TRANSCODE_LOG_SECONDS` while the encoder
  reports (ffmpeg reports every 0.5 s: ``-stats_period``, ffmpeg(1)), with ``speed``
  (ffmpeg's ``speed=1.23x``: media seconds per second) and ``fps`` as well;
* the file's database row (``vpod status``: percent and ETA), written when the first
  percentage arrives and then at most once every :data:`STORE_INTERVAL_SECONDS`, so a
  long run costs a handful of small writes, and once more when the tool ends (100 %, no
  ETA: verification follows);
* the latest values in :attr:`FileProgress.latest` (the daemon's /metrics gauges).

The estimate is linear: the time since the tool started, scaled by what is left (for an
encode this equals the media time left divided by the mean speed).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, NamedTuple

from vpod.db.store import StoreError

LOG_STEP_PERCENT = 10.0
STORE_INTERVAL_SECONDS = 5.0
TRANSCODE_LOG_SECONDS = 30.0
"""A transcode's ``file_progress`` line comes at most, and (while the encoder reports) at
least, once per this many seconds (issue 18: "a file_progress event at most every 30 s")."""


class ProgressPoint(NamedTuple):
    """The latest report of a tool: ``percent`` (0 to 100), ``eta_seconds`` (seconds
    left, ``None`` before it can be estimated), ``speed`` (media seconds per second) and
    ``fps`` (frames per second) when the tool gives them."""

    percent: float
    eta_seconds: float | None
    speed: float | None
    fps: float | None


class FileProgress:
    """Turns percentages (0 to 100, from :meth:`update`) into log lines and row updates.

    Args:
        note: records (percent, eta_seconds or ``None``) in the file's row; a busy or
            failing database is skipped (logged at debug level): progress is best-effort
            and never fails a file.
        log: the structlog logger; lines carry the context bound by the caller
            (``path``, ``worker``, ``batch_id``).
        clock: monotonic seconds.

    Attributes:
        transcoding: set (before the tool starts) when the file is being encoded: the
            log follows the 30 s cadence instead of the 10 % steps.
        latest: the last :class:`ProgressPoint` (``None`` before the first report).
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
        self.transcoding = False
        self.latest: ProgressPoint | None = None
        self._started: float | None = None
        self._logged_step = 0
        self._logged_at: float | None = None
        self._stored_at: float | None = None

    def update(self, percent: float, *, speed: float | None = None, fps: float | None = None) -> None:
        """The tool reports ``percent`` done (0 marks its start: the estimate's origin),
        with ffmpeg's ``speed`` (×, media seconds per second) and ``fps`` when known
        (the sink signature of :data:`vpod.media.tool_progress.ProgressSink`)."""
        now = self.clock()
        if self._started is None:
            self._started = now
            self._logged_at = now
        if percent >= 100:
            self._tool_done(now, speed, fps)
            return  # done: verification, then file_processed, follow
        if percent <= 0:
            return  # nothing to estimate from yet
        eta = (now - self._started) * (100.0 - percent) / percent
        self.latest = ProgressPoint(percent, eta, speed, fps)
        if self._stored_at is None or now - self._stored_at >= STORE_INTERVAL_SECONDS:
            self._stored_at = now
            try:
                self.note(percent, eta)
            except StoreError as exc:
                self.log.debug("progress_not_recorded", error=str(exc))
        if self.transcoding:
            assert self._logged_at is not None
            if now - self._logged_at >= TRANSCODE_LOG_SECONDS:
                self._logged_at = now
                self.log.info(
                    "file_progress", percent=round(percent, 1), eta_seconds=round(eta),
                    speed=None if speed is None else round(speed, 3), fps=None if fps is None else round(fps, 1),
                )
            return
        step = int(percent // LOG_STEP_PERCENT)
        if step > self._logged_step:
            self._logged_step = step
            self.log.info("file_progress", percent=round(percent, 1), eta_seconds=round(eta))


    def _tool_done(self, now: float, speed: float | None, fps: float | None) -> None:
        """The tool reported 100 %: the row, if it was written, says 100 % with no ETA
        (the last noted percent and estimate, up to :data:`STORE_INTERVAL_SECONDS`
        old, would otherwise show through the verification that follows, the estimate
        counted down to nothing: "78 %, 0.0 s left"); once per tool run."""
        last = self.latest
        if last is None or last.percent >= 100:
            return
        self.latest = ProgressPoint(
            100.0, None, last.speed if speed is None else speed, last.fps if fps is None else fps
        )
        if self._stored_at is None:
            return
        self._stored_at = now
        try:
            self.note(100.0, None)
        except StoreError as exc:
            self.log.debug("progress_not_recorded", error=str(exc))


class ProgressBoard:
    """The files in progress on this node that report progress, by worker name (the
    daemon's /metrics gauges read it at scrape time). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_worker: dict[str, FileProgress] = {}
        self._paths: dict[str, str] = {}

    def follow(self, worker: str, progress: FileProgress, path: str = "") -> None:
        """``worker`` is now working on the file ``path`` (as shown) whose progress
        ``progress`` follows."""
        with self._lock:
            self._by_worker[worker] = progress
            self._paths[worker] = path

    def drop(self, worker: str) -> None:
        """``worker``'s file left the pipeline."""
        with self._lock:
            self._by_worker.pop(worker, None)
            self._paths.pop(worker, None)

    def points(self) -> dict[str, tuple[ProgressPoint, bool]]:
        """worker → (its file's latest :class:`ProgressPoint`, True when it is a transcode),
        for the workers whose tool reported at least once."""
        with self._lock:
            followed = list(self._by_worker.items())
        return {w: (p.latest, p.transcoding) for w, p in followed if p.latest is not None}

    def encodes(self) -> dict[str, dict[str, float | None]]:
        """path → ``{"speed": ..., "fps": ...}`` of each transcode that reported progress
        (``vpod status`` shows them beside the row's percent and ETA)."""
        with self._lock:
            followed = [(self._paths.get(w, ""), p) for w, p in self._by_worker.items()]
        return {
            path: {"speed": p.latest.speed, "fps": p.latest.fps}
            for path, p in followed
            if p.transcoding and p.latest is not None
        }
