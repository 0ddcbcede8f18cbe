"""Probe a media file into a :class:`MediaInfo`.

Which tool: ``mkvmerge -J`` first. It starts in about a third of ffprobe's time
(see BENCHMARKS.md) and knows Matroska best: track numbers, the default flag as
Matroska defines it (absent means set), ``LanguageIETF``. When the file is not
Matroska or mkvmerge cannot read it, ``ffprobe -of json`` answers instead: it reads
more formats (MP4 ``mov_text`` subtitles, which MKVToolNix 74 does not list) and says
why a broken file is broken.

Before either runs, the file's first bytes must look like media
(:mod:`vpod.media.signature`), and each probing run has its own short time limit
(``ToolLimits.probe_seconds``): it reads headers, so one that takes longer is stuck on
a malformed file (mkvmerge can spin forever on bad lacing) and is killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vpod.errors import MediaError, ToolError, ToolTimeout
from vpod.media.flags import ffprobe_flags, mkvmerge_flags
from vpod.media.model import MATROSKA, MediaInfo, Track
from vpod.media.signature import check_media_signature
from vpod.media.tools import ToolResult, ToolRunner
from vpod.outcomes import Reason
from vpod.policy.languages import languages_agree, track_language

_MKVMERGE_TYPES = {"video": "video", "audio": "audio", "subtitles": "subtitle"}
_EBML_ID = b"\x1a\x45\xdf\xa3"
_SEGMENT_ID = b"\x18\x53\x80\x67"


def ffmpeg_input(path: Path) -> str:
    """``path`` as an ffmpeg/ffprobe input URL: absolute, behind the ``file:`` protocol,
    so names with a leading ``-`` or a ``proto:`` prefix are never parsed otherwise."""
    return "file:" + os.fspath(path.absolute())


def probe(path: Path, runner: ToolRunner) -> MediaInfo:
    """Probe ``path`` (a regular file) and return its container and tracks.

    Raises:
        MediaError: the file is not media (reason ``not_media``, found before any tool
            runs), is truncated, or has no tracks (permanent); a probing tool ran past
            the probe limit (reason ``probe_timeout``, not permanent).
        ToolMissing: a tool is missing (transient).
    """
    path = path.absolute()
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)", reason=Reason.EMPTY)
    check_media_signature(path)
    info, identified = _probe_mkvmerge(path, size, runner)
    if info is None:
        info = _probe_ffprobe(path, size, runner)
        if identified is not None:
            # What mkvmerge can read of a non-Matroska file decides the remux tool.
            info.extra["mkvmerge"] = identified
    if not info.tracks:
        raise MediaError(f"{path}: no tracks found ({info.probed_with})", reason=Reason.NO_TRACKS)
    return info


def _probe_mkvmerge(
    path: Path, size: int, runner: ToolRunner
) -> tuple[MediaInfo | None, dict[str, Any] | None]:
    """(the Matroska probe or ``None``, mkvmerge's JSON when it recognized the container)."""
    result = _run_probe(runner, path, ["mkvmerge", "-J", path], ok_codes=(0, 1, 2))
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise ToolError(f"{path}: mkvmerge -J printed no JSON: {result.stdout[-300:]!r}", reason=Reason.TOOL_FAILED) from None
    container = data.get("container") or {}
    readable = container.get("recognized") and container.get("supported") and not data.get("errors")
    identified = data if readable else None
    if container.get("type") != "Matroska" or data.get("errors"):
        return None, identified
    _check_matroska_size(path, size)
    tracks = tuple(_mkvmerge_track(t) for t in data.get("tracks", []))
    duration_ns = (container.get("properties") or {}).get("duration")
    return (
        MediaInfo(
            path=path,
            container=MATROSKA,
            duration_seconds=duration_ns / 1e9 if duration_ns else None,
            tracks=tracks,
            size_bytes=size,
            probed_with="mkvmerge",
            attachments=len(data.get("attachments", [])),
            extra={"mkvmerge": data},
        ),
        identified,
    )


def _run_probe(runner: ToolRunner, path: Path, args: list[Any], ok_codes: tuple[int, ...] = (0,)) -> ToolResult:
    """Run a probing tool on ``path`` under the probe limit.

    Raises:
        MediaError: reason ``probe_timeout`` (not permanent; the job runner retries it
            once at most, see :func:`vpod.jobs.attempts_allowed`).
        ToolError / ToolMissing: as :meth:`ToolRunner.run`.
    """
    limit = runner.limits.probe_seconds
    try:
        return runner.run(args, timeout_seconds=limit, ok_codes=ok_codes)
    except ToolTimeout as exc:
        raise MediaError(
            f"{path}: {exc.tool} did not finish reading the file's headers within {limit:g} s and was killed; "
            "the file is probably malformed (if it lies on very slow storage, raise "
            "[processing] probe_timeout_seconds)",
            reason=Reason.PROBE_TIMEOUT,
            permanent=False,
        ) from None


def _mkvmerge_track(raw: dict[str, Any]) -> Track:
    props = raw.get("properties", {})
    duration = props.get("tag_duration")
    legacy = track_language(props.get("language"))
    ietf = track_language(props.get("language_ietf")) if props.get("language_ietf") else None
    return Track(
        index=raw["id"],
        type=_MKVMERGE_TYPES.get(raw.get("type", ""), raw.get("type", "data")),
        codec=raw.get("codec", ""),
        # RFC 9559 §5.1.4.1.20: when LanguageIETF is present, Language is ignored.
        language=ietf if ietf is not None else legacy,
        title=props.get("track_name") or None,
        channels=props.get("audio_channels"),
        number=props.get("number"),
        duration_seconds=_hms_seconds(duration) if duration else None,
        languages_agree=languages_agree(props.get("language"), props.get("language_ietf")),
        language_tag=props.get("language_ietf") or None,
        **mkvmerge_flags(props),
    )


def probe_with_ffprobe(path: Path, runner: ToolRunner) -> MediaInfo:
    """Probe ``path`` with ``ffprobe`` only: the file as FFmpeg-based players and media
    servers (Jellyfin, Plex, Kodi) read it.

    Raises:
        MediaError: reason ``unreadable`` when ffprobe rejects the file.
    """
    path = path.absolute()
    return _probe_ffprobe(path, path.stat().st_size, runner)


def _probe_ffprobe(path: Path, size: int, runner: ToolRunner) -> MediaInfo:
    args = ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", ffmpeg_input(path)]
    try:
        result = _run_probe(runner, path, args)
    except ToolError as exc:
        if exc.reason != Reason.TOOL_FAILED:
            raise
        raise MediaError(f"{path}: not a readable media file: {exc}", reason=Reason.UNREADABLE) from None
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise ToolError(f"{path}: ffprobe printed no JSON", reason=Reason.TOOL_FAILED) from None
    fmt = data.get("format") or {}
    tracks = tuple(_ffprobe_track(s) for s in data.get("streams", []))
    duration = fmt.get("duration")
    name = fmt.get("format_name", "unknown")
    return MediaInfo(
        path=path,
        container=MATROSKA if name.startswith("matroska") else name,
        duration_seconds=float(duration) if duration else None,
        tracks=tracks,
        size_bytes=size,
        probed_with="ffprobe",
        attachments=sum(1 for t in tracks if t.type == "attachment"),
        extra={"ffprobe": data},
    )


def _ffprobe_track(raw: dict[str, Any]) -> Track:
    tags = {k.lower(): v for k, v in (raw.get("tags") or {}).items()}
    disposition = raw.get("disposition") or {}
    kind = raw.get("codec_type", "data")
    if kind == "video" and disposition.get("attached_pic"):
        kind = "attachment"  # cover art: an image, not a video track
    duration = raw.get("duration") or tags.get("duration")
    return Track(
        index=raw["index"],
        type=kind if kind in ("video", "audio", "subtitle", "attachment") else "data",
        # Streams FFmpeg cannot decode (WebVTT in MP4: "wvtt") have only a codec tag.
        codec=raw.get("codec_name") or raw.get("codec_tag_string", ""),
        language=track_language(tags.get("language")),
        title=tags.get("title") or None,
        channels=raw.get("channels"),
        duration_seconds=_duration_value(duration),
        **ffprobe_flags(disposition, kind),
    )


def _duration_value(value: Any) -> float | None:
    if value in (None, "", "N/A"):
        return None
    try:
        return float(value)
    except ValueError:
        return _hms_seconds(str(value))


def _hms_seconds(value: str) -> float | None:
    """``"00:01:02.500000000"`` → 62.5 (the form of Matroska ``DURATION`` tags)."""
    try:
        hours, minutes, seconds = value.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _read_vint(data: bytes, pos: int) -> tuple[int, int, bool]:
    """Decode an EBML variable-size integer at ``pos``: (value, length, all_ones).

    EBML encoding per RFC 8794 §4: the count of leading zero bits of the first byte
    gives the length; an all-ones value means "unknown size".
    """
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8 or pos + length > len(data):
        raise ValueError("bad EBML integer")
    value = first & (mask - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, length, value == (1 << (7 * length)) - 1


def _check_matroska_size(path: Path, size: int) -> None:
    """Fail on a Matroska file shorter than its Segment element says it is.

    mkvmerge -J and ffprobe both accept a cut-off file as long as its headers are
    intact, so a download that stopped early would otherwise look fine.

    Raises:
        MediaError: reason ``truncated``.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    try:
        if not head.startswith(_EBML_ID):
            return
        header_size, length, _ = _read_vint(head, 4)
        pos = 4 + length + header_size
        if head[pos : pos + 4] != _SEGMENT_ID:
            return
        segment_size, length, unknown = _read_vint(head, pos + 4)
    except (ValueError, IndexError):
        return
    if unknown:
        return  # live-streamed Matroska: size not recorded
    expected = pos + 4 + length + segment_size
    if size < expected:
        raise MediaError(
            f"{path}: truncated Matroska file: its Segment declares {expected} bytes, the file has {size}",
            reason=Reason.TRUNCATED,
        )
