"""Read a remuxing tool's progress output into a percentage.

* ``mkvmerge --gui-mode`` prints ``#GUI#progress NN%`` lines (mkvmerge(1), ``--gui-mode``:
  "specially-formatted lines ... follow the format '#GUI#message'"), twice a second.
* ``ffmpeg -progress pipe:1 -nostats`` prints blocks of ``key=value`` lines, each ended
  by ``progress=continue`` or ``progress=end`` (ffmpeg(1), ``-progress url``), every
  ``-stats_period`` (0.5 s by default). ``out_time_us`` is the output's position in
  microseconds; against the file's duration from the probe it gives the percentage.
"""

from __future__ import annotations

import re
from typing import Callable

ProgressSink = Callable[[float], None]
"""Called with the percentage done (0 to 100)."""

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


def ffmpeg_line_reader(sink: ProgressSink, duration_seconds: float | None) -> Callable[[str], None]:
    """A stdout line reader for ``ffmpeg -progress pipe:1``: ``out_time_us`` as a share
    of ``duration_seconds`` (nothing without a positive duration), and 100 at
    ``progress=end``. Values are capped at 99.9 until the end: a stream may run past
    the container's duration."""

    def read(line: str) -> None:
        key, _, value = line.partition("=")
        if key == "progress" and value.strip() == "end":
            sink(100.0)
        elif key == "out_time_us" and duration_seconds and duration_seconds > 0:
            try:
                position = int(value) / 1e6  # "N/A" before the first packet
            except ValueError:
                return
            sink(max(0.0, min(99.9, 100.0 * position / duration_seconds)))

    return read
