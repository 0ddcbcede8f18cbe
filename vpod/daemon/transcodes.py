"""The transcode lane's state for ``vpod status``: running and deferred counts, and each
running encode's speed and fps, recorded in the ``daemon`` row (key ``transcodes``).

The files' rows hold percent and ETA (:mod:`vpod.file_progress`); an encode's speed has
no column (no schema change for a number that is stale seconds later), so the daemon
records it here, at most every :data:`RECORD_SECONDS` while encodes run or wait, and
once more when they are over. An idle daemon writes nothing and sets no timer.
"""

from __future__ import annotations

import json
import math
from typing import Callable

from vpod.file_progress import ProgressBoard
from vpod.lanes import TranscodeLane

RECORD_SECONDS = 5.0
"""How often the record is written while encodes run (seconds): as often as a file's
progress is written to its row (:data:`vpod.file_progress.STORE_INTERVAL_SECONDS`)."""


class TranscodeStatus:
    """A ticking part (:class:`vpod.daemon.wiring.Ticking`) recording the lane's state.

    Args:
        lane: the transcode lane (counts).
        board: the progress of the files in progress (speeds).
        record: writes keys into the ``daemon`` row (:meth:`StatusSnapshot.record`);
            returns False when the database refused (tried again at the next tick).
    """

    def __init__(self, lane: TranscodeLane, board: ProgressBoard, record: Callable[..., bool]) -> None:
        self.lane = lane
        self.board = board
        self.record = record
        self._recorded: str | None = ""  # at start: a key left by an earlier run is deleted

    def value(self) -> str | None:
        """The JSON recorded now (``None``: no encode runs or waits)."""
        running, deferred = self.lane.running(), self.lane.deferred()
        if not (running or deferred):
            return None
        return json.dumps({"running": running, "deferred": deferred, "encodes": self.board.encodes()}, sort_keys=True)

    def tick(self, now: float) -> float:
        """Record the state when it changed; the next tick in :data:`RECORD_SECONDS` while
        encodes run or wait (``inf`` otherwise: the heartbeat's tick comes within 30 s of
        a new encode)."""
        value = self.value()
        if value != self._recorded and self.record(transcodes=value):
            self._recorded = value
        return now + RECORD_SECONDS if value is not None else math.inf
