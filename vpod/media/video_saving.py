"""What a video encode saved, for ``keep_if_larger``: the bytes of the re-encoded video
tracks in the source against the same tracks in the verified result.

``keep_if_larger`` (default true) decides whether a video transcode is kept, and only the
video transcode is dropped when it is not (the rest of the plan is applied: the outcome
``not_smaller``). So the saving is judged on the video alone: audio tracks the plan adds or
converts, and large lossless audio copied as it is, neither dilute nor inflate it (a PCM 5.1
film whose video shrank 30 % saves well under 5 % of the whole file). The encode is kept
when its video is at least ``min_saving_percent`` (default 5) % smaller than the source's.

A track's bytes are the sum of its packets' sizes as ffprobe reads them (``ffprobe
-select_streams v -show_entries packet=stream_index,size``, ffprobe(1) "-show_entries";
``size`` is the packet's payload in bytes, container overhead left out), counted the same
way in both files, in one ffprobe pass per file whose output is read line by line (a
2-hour film has some 170,000 video packets; none is held). The pass reads the whole file
but decodes nothing: its time is that of reading the file once, small beside the encode
that decoded it all.

Matroska's statistics tags (``NUMBER_OF_BYTES``, which mkvmerge writes per track) would
spare the source's pass, but they are not trusted:

* they can be stale, and only a guess tells: ffmpeg copies them into a file it rewrites
  (vpod's own transcode strips them for that reason, :mod:`vpod.media.transcode`), as do
  other tools, and MKVToolNix's way to tell fresh ones (its wiki, "Track statistics tags":
  ``_STATISTICS_WRITING_APP`` and ``_STATISTICS_WRITING_DATE_UTC`` against the segment's
  writing application and date) fails for a file written by ffmpeg, which writes no date;
* they are another tool's measure: mkvmerge counts what it muxes (MKVToolNix issue
  #2022: some versions counted the bytes after the track's own compression, zlib or
  header removal), ffprobe the packets it hands to a decoder. A saving computed from one
  count against the other could discard (or keep) hours of encoding on the difference
  between two tools, and the result, written by ffmpeg, carries no such tags to compare.

Counting packets in both files costs one read of the source and gives one measure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Collection, NamedTuple

from vpod.diskspace import format_bytes
from vpod.errors import MediaError, ToolError, ToolMissing, ToolTimeout
from vpod.media.limits import SIZE_KEYS
from vpod.media.layout import planned_layout
from vpod.media.model import MediaInfo
from vpod.media.probe import ffmpeg_input
from vpod.media.tools import ToolRunner
from vpod.media.transcode import ffmpeg_indexes
from vpod.policy.plan import Plan, TranscodeVideo
from vpod.policy.policy import Policy


class VideoBytes(NamedTuple):
    """The bytes (sums of packet sizes) of the re-encoded video tracks: ``source`` in the
    source file, ``result`` in the encoded file."""

    source: int
    result: int

    @property
    def saved_percent(self) -> float:
        """How much smaller the result's video is, in % of the source's (negative: larger)."""
        return 100.0 * (self.source - self.result) / self.source if self.source else 0.0


def is_judged(plan: Plan, policy: Policy) -> bool:
    """Whether ``keep_if_larger`` judges the result of ``plan``: only a plan that re-encodes
    video (:class:`TranscodeVideo`), and only under ``keep_if_larger`` (default true). A
    remux, a header edit or a plan that encodes audio only is never measured."""
    return policy.keep_if_larger and any(isinstance(a, TranscodeVideo) for a in plan.actions)


def packet_bytes(path: Path, streams: Collection[int], runner: ToolRunner) -> dict[int, int]:
    """Per ffmpeg stream index in ``streams`` (video streams of ``path``), the sum of its
    packets' sizes in bytes, from one ``ffprobe -select_streams v -show_entries
    packet=stream_index,size -of compact=p=0`` run (ffprobe(1): one ``stream_index=N|size=B``
    line per packet) read line by line. The time limit is that of a run that reads the
    whole file (:meth:`vpod.media.limits.ToolLimits.for_size`).

    Raises:
        MediaError: naming ``path``: ffprobe failed or printed what is not a packet line,
            or one of ``streams`` has no packet (``ToolTimeout`` / ``ToolMissing``, which
            are MediaErrors too, propagate with their own reasons).
    """
    wanted = set(streams)
    sums: dict[int, int] = {}

    def count(line: str) -> None:
        if not line.strip():
            return
        fields = {}
        for part in line.strip().split("|"):
            key, _, value = part.partition("=")
            fields[key] = value
        try:
            stream, size = int(fields["stream_index"]), int(fields["size"])
        except (KeyError, ValueError):
            raise MediaError(f"{path}: ffprobe printed {line[:200]!r} where a packet's size was expected") from None
        if stream in wanted:
            sums[stream] = sums.get(stream, 0) + size

    args = ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=stream_index,size",
            "-of", "compact=p=0", ffmpeg_input(path)]  # fmt: skip
    try:
        size_bytes = os.stat(path).st_size
    except OSError as exc:
        raise MediaError(f"{path}: cannot count the bytes of its video: {exc.strerror or exc}") from None
    try:
        runner.run(args, timeout_seconds=runner.limits.for_size(size_bytes), timeout_keys=SIZE_KEYS, on_output_line=count, keep_stdout=False)
    except (ToolTimeout, ToolMissing):
        raise
    except ToolError as exc:
        raise MediaError(
            f"{path}: cannot count the bytes of its video (ffprobe -show_entries packet=size): {exc}",
            reason=exc.reason, permanent=exc.permanent,
        ) from None  # fmt: skip
    missing = sorted(wanted - set(sums))
    if missing:
        raise MediaError(
            f"{path}: ffprobe read no packet of video stream {', '.join(map(str, missing))}, so the saving of "
            "the video encode cannot be judged"
        )
    return sums


def measure_video(
    media: MediaInfo, plan: Plan, written: Path, streams: list[dict[str, Any]], runner: ToolRunner
) -> VideoBytes:
    """The bytes of each video track ``plan`` re-encodes, summed, in the source
    (``media.path``, whose ffprobe ``streams`` map its tracks to ffmpeg's indexes:
    :func:`vpod.media.transcode.ffmpeg_indexes`) and in ``written``, the verified result
    (Matroska, its tracks in the order of :func:`vpod.media.layout.planned_layout`, the
    order the transcode wrote them in). One :func:`packet_bytes` pass per file; the
    source's ``NUMBER_OF_BYTES`` tags are not used (see the module docstring).

    Raises:
        MediaError: as :func:`packet_bytes`, naming the file it could not read; or the
            source's tracks as ffmpeg and mkvmerge list them disagree.
    """
    index = ffmpeg_indexes(media, streams)
    source = {index[a.track] for a in plan.actions if isinstance(a, TranscodeVideo)}
    result = {n for n, out in enumerate(planned_layout(media, plan)) if isinstance(out.encode, TranscodeVideo)}
    return VideoBytes(
        sum(packet_bytes(media.path, source, runner).values()), sum(packet_bytes(written, result, runner).values())
    )


def saving_shortfall(video: VideoBytes, policy: Policy) -> str | None:
    """Why a video encode whose tracks went from ``video.source`` to ``video.result`` bytes
    is not kept under ``keep_if_larger``, or ``None`` to keep it: kept when the result's
    video is at least ``min_saving_percent`` (default 5) % smaller than the source's.

    The message reads "the video encode saved only 2.0 % (12.3 MiB -> 12.1 MiB of video);
    keep_if_larger asks for a saving of at least min_saving_percent = 5 %", or "made the
    video 7.4 % larger" (the wording a user test chose for the whole file, now said of the video).
    """
    percent = float(policy.min_saving_percent)
    if video.source and video.result <= video.source * (1 - percent / 100):
        return None
    saved = video.saved_percent
    change = f"saved only {saved:.1f} %" if saved >= 0 else f"made the video {-saved:.1f} % larger"
    return (
        f"the video encode {change} ({format_bytes(video.source)} -> {format_bytes(video.result)} of video); "
        f"keep_if_larger asks for a saving of at least min_saving_percent = {percent:g} %"
    )
