"""Prometheus metrics of one daemon, in its own ``prometheus_client.CollectorRegistry``.

Names follow the Prometheus naming rules (https://prometheus.io/docs/practices/naming/):
a ``vpod_`` prefix, ``_total`` on counters, base units (seconds) in the name.

| metric | type | labels |
|---|---|---|
| ``vpod_files_processed_total`` | counter | (files that conform now: changed or already conforming) |
| ``vpod_files_failed_total`` | counter | ``reason`` (final failures; retries are not counted) |
| ``vpod_files_skipped_total`` | counter | ``reason`` |
| ``vpod_file_retries_total`` | counter | ``reason`` (transient failures sent back to the queue) |
| ``vpod_file_processing_seconds`` | histogram | (wall time per file, every outcome) |
| ``vpod_queue_depth`` | gauge | (queued files in the database, read at scrape time) |
| ``vpod_active_workers`` | gauge | (files being processed now) |
| ``vpod_workers`` | gauge | (worker threads running) |
| ``vpod_paused`` | gauge | (1 while paused after a failure under ``on_error = "fail"``) |
| ``vpod_batches_total`` | counter | (batches closed) |
| ``vpod_last_batch_files`` | gauge | ``outcome``: total, success, failed, skipped |
| ``vpod_last_batch_duration_seconds`` | gauge | |
| ``vpod_last_batch_end_time_seconds`` | gauge | (epoch seconds) |
| ``vpod_start_time_seconds`` | gauge | (epoch seconds) |
| ``vpod_node_info`` | info (gauge, value 1) | ``node`` (``[node] name``), ``version`` |
| ``vpod_notifications_dropped_total`` | counter | ``reason``: queue_full, undelivered, refused, shutdown, error |
| ``vpod_transcodes_running`` | gauge | (encodes running now on this node: the transcode lane's slots taken) |
| ``vpod_transcodes_deferred`` | gauge | (files passed over now: lane full or outside ``transcode_hours``) |
| ``vpod_file_progress_percent`` | gauge | ``worker``, ``kind`` (remux, transcode): the file in progress, read at scrape time |
| ``vpod_file_eta_seconds`` | gauge | ``worker``, ``kind``: its estimated seconds left |
| ``vpod_transcode_speed`` | gauge | ``worker``: the encode's speed (ffmpeg's ``speed``, media seconds per second) |
| ``vpod_transcode_fps`` | gauge | ``worker``: the encode's frames per second |
| ``vpod_integration_calls_total`` | counter | ``kind`` (sonarr, radarr, jellyfin, emby, plex, apprise), ``outcome`` (notified, failed, skipped) |

Several nodes: the ``node`` label is on one info metric, not on every metric. Prometheus
tells exporters not to put one label on all their metrics ("Target labels, not static
scraped labels", https://prometheus.io/docs/instrumenting/writing_exporters/): each node
is its own scrape target, told apart by its ``instance`` label, and an ``_info`` pseudo
metric carries the rest (https://prometheus.io/docs/practices/naming/, "foobar_build_info").
A query joins it where the node name is wanted, e.g.
``vpod_queue_depth * on (instance) group_left (node) vpod_node_info``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily

from vpod.db.store import StoreError
from vpod.events import BatchClosed, FileFinished
from vpod.outcomes import Reason, Status
from vpod.results import BatchResult, FileProcessingResult

if TYPE_CHECKING:
    from vpod.file_progress import ProgressPoint
    from vpod.lanes import TranscodeLane

# From 0.1 s (a header edit of a small file) to an hour (the default tool timeout).
PROCESSING_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    """The daemon's metrics. Thread-safe (prometheus_client metrics are). A subscriber
    of the daemon's :class:`vpod.events.EventBus` (file outcomes, closed batches).

    Args:
        queue_depth: returns the number of queued files; called at scrape time. A
            database error makes the gauge NaN for that scrape instead of failing it.
        active: returns the number of files in progress.
        workers: returns the number of worker threads.
        paused: returns True while processing is paused.
        started_at: daemon start, epoch seconds.
        node: this node's name (``[node] name``), the ``node`` label of ``vpod_node_info``.
        version: vpod's version, its ``version`` label.
        lane: the transcode lane (its running and deferred gauges); ``None``: no gauges.
        progress: worker → (latest progress point, is a transcode) of the files in
            progress (:meth:`vpod.file_progress.ProgressBoard.points`), read at scrape time.
    """

    def __init__(
        self,
        *,
        queue_depth: Callable[[], int],
        active: Callable[[], int],
        workers: Callable[[], int],
        paused: Callable[[], bool],
        started_at: float,
        node: str,
        version: str,
        lane: TranscodeLane | None = None,
        progress: Callable[[], dict[str, tuple[ProgressPoint, bool]]] = dict,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        if lane is not None:
            Gauge("vpod_transcodes_running", "Encodes running now on this node", registry=r).set_function(lane.running)
            Gauge(
                "vpod_transcodes_deferred", "Files passed over now: transcode lane full or outside transcode_hours",
                registry=r,
            ).set_function(lane.deferred)
        r.register(_ProgressCollector(progress))
        self.processed = Counter("vpod_files_processed", "Files that conform to the policy after processing", registry=r)
        self.failed = Counter("vpod_files_failed", "Files that failed for good, by reason", ["reason"], registry=r)
        self.skipped = Counter("vpod_files_skipped", "Files skipped, by reason", ["reason"], registry=r)
        self.retries = Counter("vpod_file_retries", "Transient failures queued again, by reason", ["reason"], registry=r)
        self.seconds = Histogram(
            "vpod_file_processing_seconds", "Wall time spent on one file", buckets=PROCESSING_BUCKETS, registry=r
        )
        Gauge("vpod_queue_depth", "Files queued in the database", registry=r).set_function(_or_nan(queue_depth))
        Gauge("vpod_active_workers", "Files being processed now", registry=r).set_function(active)
        Gauge("vpod_workers", "Worker threads running", registry=r).set_function(workers)
        Gauge("vpod_paused", "1 while paused after a failure (on_error = fail)", registry=r).set_function(
            lambda: float(paused())
        )
        self.batches = Counter("vpod_batches", "Batches closed", registry=r)
        self.last_batch_files = Gauge("vpod_last_batch_files", "Files in the last batch, by outcome", ["outcome"], registry=r)
        self.last_batch_seconds = Gauge("vpod_last_batch_duration_seconds", "Duration of the last batch", registry=r)
        self.last_batch_end = Gauge("vpod_last_batch_end_time_seconds", "When the last batch closed (epoch)", registry=r)
        Gauge("vpod_start_time_seconds", "When the daemon started (epoch)", registry=r).set(started_at)
        Info("vpod_node", "This vpod node: its [node] name and version", registry=r).info(
            {"node": node, "version": version}
        )
        self.notifications_dropped = Counter(
            "vpod_notifications_dropped", "Notifications dropped, by reason", ["reason"], registry=r
        )
        self.integration_calls = Counter(
            "vpod_integration_calls", "Calls to *arr instances, media servers and notification URLs, by outcome",
            ["kind", "outcome"], registry=r,
        )

    def on_file_finished(self, event: FileFinished) -> None:
        """Event subscriber: :meth:`observe_file`."""
        self.observe_file(event.result, retrying=event.retrying)

    def on_batch_closed(self, event: BatchClosed) -> None:
        """Event subscriber: :meth:`observe_batch`."""
        self.observe_batch(event.batch)

    def integration_dropped(self, kind: str, reason: str) -> None:
        """A call of :mod:`vpod.integrations` was dropped; notifications (``apprise``)
        count in ``vpod_notifications_dropped_total``."""
        if kind == "apprise":
            self.notifications_dropped.labels(reason).inc()

    def integration_ended(self, kind: str, outcome: str) -> None:
        """A call of :mod:`vpod.integrations` ended (``notified``, ``failed``, ``skipped``)."""
        self.integration_calls.labels(kind, outcome).inc()

    def observe_file(self, result: FileProcessingResult, *, retrying: bool) -> None:
        """Count one file outcome; ``retrying`` when it went back to the queue."""
        self.seconds.observe(result.duration_seconds)
        reason = result.reason or Reason.ERROR
        if retrying:
            self.retries.labels(reason).inc()
        elif result.status is Status.DONE:
            self.processed.inc()
        elif result.status is Status.SKIPPED:
            self.skipped.labels(reason).inc()
        else:
            self.failed.labels(reason).inc()

    def observe_batch(self, batch: BatchResult) -> None:
        """Record a closed batch."""
        self.batches.inc()
        for outcome, value in (
            ("total", batch.total_files),
            ("success", batch.success_count),
            ("failed", batch.fail_count),
            ("skipped", batch.skipped_count),
        ):
            self.last_batch_files.labels(outcome).set(value)
        self.last_batch_seconds.set(batch.total_duration_seconds)
        self.last_batch_end.set(batch.ended_at)


def _or_nan(read: Callable[[], int]) -> Callable[[], float]:
    def value() -> float:
        try:
            return float(read())
        except StoreError:
            return math.nan

    return value


class _ProgressCollector:
    """The progress gauges of the files in progress, built at scrape time (one sample per
    busy worker: the label set stays as small as the worker count)."""

    def __init__(self, progress: Callable[[], dict[str, tuple[ProgressPoint, bool]]]) -> None:
        self.progress = progress

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # the families vary per scrape: not checked at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        percent = GaugeMetricFamily(
            "vpod_file_progress_percent", "How far the tool of a file in progress is (0 to 100)", labels=["worker", "kind"]
        )
        eta = GaugeMetricFamily(
            "vpod_file_eta_seconds", "Estimated seconds left of a file in progress", labels=["worker", "kind"]
        )
        speed = GaugeMetricFamily(
            "vpod_transcode_speed", "Speed of an encode (media seconds per second)", labels=["worker"]
        )
        fps = GaugeMetricFamily("vpod_transcode_fps", "Frames per second of an encode", labels=["worker"])
        for worker, (point, transcoding) in sorted(self.progress().items()):
            kind = "transcode" if transcoding else "remux"
            percent.add_metric([worker, kind], point.percent)
            if point.eta_seconds is not None:
                eta.add_metric([worker, kind], point.eta_seconds)
            if transcoding and point.speed is not None:
                speed.add_metric([worker], point.speed)
            if transcoding and point.fps is not None:
                fps.add_metric([worker], point.fps)
        yield from (percent, eta, speed, fps)
