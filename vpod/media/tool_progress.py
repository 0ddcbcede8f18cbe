"""Read a remuxing tool's progress output into a percentage.

* ``mkvmerge --gui-mode`` prints ``#GUI#progress NN%`` lines (mkvmerge(1), ``--gui-mode``:
  "specially-formatted lines ... follow the format '#GUI#message'"), twice a second.
* ``ffmpeg -progress pipe:1 -nostats`` prints blocks of ``key=value`` lines, each ended
  by ``progress=continue`` or ``progress=end`` (ffmpeg(1), ``-progress url``), every
  ``-stats_period`` (0.5 s by default). ``out_time_us`` is the output's position in
  microseconds; against the file's duration from the probe it gives the percentage.
  ``speed`` (``1.23x``: seconds of media per second of wall clock) and ``fps`` (frames
  encoded per second) come in the same block; an encode's sink gets them too.
"""

from __future__ import annotations

import re
from typing import Callable

ProgressSink = Callable[..., None]
"""Called as ``sink(percent)`` or ``sink(percent, speed=S, fps=F)``: the percentage done
(0 to 100), and from ffmpeg also its speed (media seconds per wall-clock second, ``1.5``
for ffmpeg's ``speed=1.5x``) and frames per second, each ``None`` while ffmpeg reports
``N/A``. Consumers take both keywords as optional."""

MKVMERGE_ARGS: tuple[str, ...] = ("--gui-mode",)
FFMPEG_ARGS: tuple[str, ...] = ("-progress", "pipe:1", "-nostats")

_MKVMERGE_PROGRESS = re.compile(r"^#GUI#progress (\d{1,3})%")


def mkvmerge_line_reader(sink: ProgressSink) -> Callable[[str], None]:
    """A stdout line reader for ``mkvmerge --gui-mode`` that passes each progress value on."""

    def read(line: str) -> None:
        match = _MKVMERGE_PROGRESS.match(line)
        if match:
            sink(min(100.0, float(match.group(1))))

    return read


def _number(text: str) -> float | None:
    """``"1.23x"`` / ``"24.5"`` → the number; ``"N/A"`` or garbage → ``None``."""
    try:
        return float(text.strip().rstrip("x"))
    except ValueError:
        return None


def ffmpeg_line_reader(sink: ProgressSink, duration_seconds: float | None) -> Callable[[str], None]:
    """A stdout line reader for ``ffmpeg -progress pipe:1``.

    At the end of each block (its ``progress=`` line) the sink gets ``out_time_us`` as a
    share of ``duration_seconds`` (no call without a positive duration and a position),
    with the block's ``speed`` and ``fps`` as keywords; after the last block
    (``progress=end``) it gets 100 too. Values are capped at 99.9 until the end: a stream may
    run past the container's duration.
    """
    block: dict[str, str] = {}

    def read(line: str) -> None:
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key != "progress":
            block[key] = value
            return
        speed, fps = _number(block.get("speed", "")), _number(block.get("fps", ""))
        position = block.get("out_time_us", "")
        block.clear()
        try:
            seconds = int(position) / 1e6  # "N/A" before the first packet
        except ValueError:
            seconds = None
        if seconds is not None and duration_seconds and duration_seconds > 0:
            sink(max(0.0, min(99.9, 100.0 * seconds / duration_seconds)), speed=speed, fps=fps)
        if value == "end":
            sink(100.0, speed=speed, fps=fps)

    return read
