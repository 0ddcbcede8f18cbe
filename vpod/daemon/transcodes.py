"""The transcode lane's state for ``vpod status``: running and deferred counts, and each
running encode's speed and fps, recorded in the ``daemon`` row (key ``transcodes``).

The files' rows hold percent and ETA (:mod:`vpod.file_progress`); an encode's speed has
no column (no schema change for a number that is stale seconds later), so the daemon
records it here: at once (but at most once per :data:`MIN_RECORD_SECONDS`) when an encode
starts or ends (the lane calls :meth:`TranscodeStatus.changed`, which wakes the main
loop), else at most every :data:`RECORD_SECONDS` while encodes run or wait, and once
more when they are over. An idle daemon writes nothing and sets no timer.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Callable

from vpod.file_progress import ProgressBoard
from vpod.lanes import TranscodeLane

RECORD_SECONDS = 5.0
"""How often the record is written while encodes run (seconds): as often as a file's
progress is written to its row (:data:`vpod.file_progress.STORE_INTERVAL_SECONDS`)."""

MIN_RECORD_SECONDS = 1.0
"""The shortest time between two writes (seconds), also when encodes start and end in a burst."""


class TranscodeStatus:
    """A ticking part (:class:`vpod.daemon.wiring.Ticking`) recording the lane's state.

    Args:
        lane: the transcode lane (counts).
        board: the progress of the files in progress (speeds).
        record: writes keys into the ``daemon`` row (:meth:`StatusSnapshot.record`);
            returns False when the database refused (tried again at the next tick).
        wake: wakes the main loop (:meth:`changed` calls it from a worker thread).
    """

    def __init__(
        self, lane: TranscodeLane, board: ProgressBoard, record: Callable[..., bool], wake: Callable[[], None] = lambda: None
    ) -> None:
        self.lane = lane
        self.board = board
        self.record = record
        self.wake = wake
        self._recorded: str | None = ""  # at start: a key left by an earlier run is deleted
        self._written_at = -math.inf  # the main loop's clock (seconds) of the last write
        self._changed = threading.Event()  # an encode started or ended since the last write

    def changed(self) -> None:
        """An encode started or ended (the lane's ``on_change``; any thread): record the
        state at the next tick, at most :data:`MIN_RECORD_SECONDS` after the last write."""
        self._changed.set()
        self.wake()

    def value(self) -> str | None:
        """The JSON recorded now (``None``: no encode runs or waits): ``running``,
        ``deferred`` (files waiting), ``encodes``, and when some of the deferred wait for a
        ``transcode_hours`` window (the rest wait for a slot), ``outside_hours`` (how
        many) and ``next_window`` (local ``YYYY-MM-DD HH:MM``)."""
        running, deferred = self.lane.running(), self.lane.deferred()
        if not (running or deferred):
            return None
        data: dict[str, object] = {"running": running, "deferred": deferred, "encodes": self.board.encodes()}
        outside, opens = self.lane.outside_hours()
        if outside:
            data["outside_hours"] = min(outside, deferred)
            data["next_window"] = f"{opens:%Y-%m-%d %H:%M}" if opens is not None else None
        return json.dumps(data, sort_keys=True)

    def tick(self, now: float) -> float:
        """Record the state when it changed: :data:`MIN_RECORD_SECONDS` after the last
        write when an encode started or ended (:meth:`changed`), else
        :data:`RECORD_SECONDS` after it; the next tick in :data:`RECORD_SECONDS` while
        encodes run or wait (``inf`` otherwise: :meth:`changed` wakes the loop)."""
        urgent = self._changed.is_set()
        self._changed.clear()  # before reading the state: a change after this read sets it again
        value = self.value()
        if value == self._recorded:
            return math.inf if value is None else now + RECORD_SECONDS
        due = self._written_at + (MIN_RECORD_SECONDS if urgent else RECORD_SECONDS)
        if now < due:
            if urgent:
                self._changed.set()
            return due
        if self.record(transcodes=value):
            self._recorded, self._written_at = value, now
        elif urgent:
            self._changed.set()
        if self._changed.is_set():
            return now + MIN_RECORD_SECONDS
        return math.inf if value is None and self._recorded is None else now + RECORD_SECONDS
