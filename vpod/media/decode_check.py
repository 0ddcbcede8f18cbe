"""Decode a few seconds of a written file's encoded streams: at the start, middle and end.

A transcode's verification (:func:`vpod.media.verify.verify_written`) reads the headers
of the new file; this reads its frames. Each window is one run of ``ffmpeg -v error
-xerror -ss T -t 2 -i FILE -map 0:N -f null -`` (ffmpeg(1): ``-xerror`` stops at the
first error with a non-zero status; ``-f null`` decodes and discards). An error, any
line ffmpeg prints at level ``error``, or a video window in which no frame decoded
(``-progress``'s ``frame=`` count: damage a demuxer skips silently) fails the file with
reason ``verify_failed``.
"""

from __future__ import annotations

import re
from pathlib import Path

from vpod.errors import ToolError, ToolTimeout
from vpod.media.limits import BASE_KEYS
from vpod.media.probe import ffmpeg_input
from vpod.media.tools import ToolRunner

WINDOW_SECONDS = 2.0
"""Seconds decoded at each point."""

_FOREIGN_LINES = re.compile(r"^(Warning: using insecure memory!$|\[null @ 0x[0-9a-f]+\] )")
"""Lines about neither the file nor its decoding:

* libgcrypt (Debian's FFmpeg links it through libssh) prints "Warning: using insecure
  memory!" when ``mlock`` is refused, as under systemd's
  ``SystemCallFilter=@system-service``, which has no ``@memlock`` (systemd.exec(5)).
  Left in, every decode check under the unit failed.
* The ``null`` muxer (``-f null``), which writes nothing, complains of the timestamps
  ffmpeg hands it ("Application provided invalid, non monotonically increasing dts to
  muxer"): after ``-ss`` into a film at 24 fps whose video starts 21 ms late (an AAC
  track's priming), decoded frames round to equal timestamps. Left in, every film with
  an added AAC track failed."""


def decode_errors(stderr: str) -> str:
    """What ffmpeg said at level ``error`` or worse in ``stderr``, without
    :data:`_FOREIGN_LINES` (``""``: nothing)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip() and not _FOREIGN_LINES.match(line.strip())]
    return "\n".join(lines)


def check_points(duration_seconds: float | None) -> tuple[float, ...]:
    """Where the windows start (seconds): 0, the middle and ``WINDOW_SECONDS`` + 1 before the
    end; only 0 for a file shorter than three windows or of unknown duration."""
    if not duration_seconds or duration_seconds < 3 * WINDOW_SECONDS:
        return (0.0,)
    return (0.0, round(duration_seconds / 2, 3), round(max(0.0, duration_seconds - WINDOW_SECONDS - 1.0), 3))


def decode_check(
    path: Path, streams: list[tuple[int, str]], duration_seconds: float | None, runner: ToolRunner
) -> list[str]:
    """Decode ``WINDOW_SECONDS`` of each of ``streams`` ((ffmpeg stream index, track type)
    of ``path``) at each of :func:`check_points`; returns the problems found (empty: all decoded).

    Raises:
        ToolMissing: ffmpeg is not installed.
    """
    problems: list[str] = []
    for stream, kind in streams:
        for start in check_points(duration_seconds):
            args = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-progress", "pipe:1", "-nostats",
                    "-ss", f"{start:g}",
                    "-t", f"{WINDOW_SECONDS:g}", "-i", ffmpeg_input(path), "-map", f"0:{stream}", "-f", "null", "-"]  # fmt: skip
            try:
                result = runner.run(args, timeout_seconds=runner.limits.base_seconds, timeout_keys=BASE_KEYS)
            except ToolTimeout:
                raise
            except ToolError as exc:
                problems.append(f"stream {stream} does not decode at {start:g} s: {str(exc)[-300:]}")
                continue
            errors = decode_errors(result.stderr)
            if errors:
                problems.append(f"stream {stream} decodes with errors at {start:g} s: {errors[-300:]}")
            elif kind == "video" and _frames(result.stdout) == 0:
                problems.append(f"stream {stream}: no frame decodes at {start:g} s")
    return problems


def _frames(progress: str) -> int:
    """The last ``frame=N`` of ``-progress`` output (0 when none)."""
    counts = [line.partition("=")[2].strip() for line in progress.splitlines() if line.startswith("frame=")]
    return int(counts[-1]) if counts and counts[-1].isdigit() else 0
