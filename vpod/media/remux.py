"""Remux a file into a new Matroska file with the planned track layout, in one pass.

Which tool (:func:`choose_remuxer`):

* ``mkvmerge`` when it reads every stream the plan keeps. It is MKVToolNix's own
  Matroska writer: it carries attachments, chapters and tags, turns MP4 cover art into
  a Matroska attachment and writes both language elements.
* ``ffmpeg -map … -c copy`` otherwise. MKVToolNix 74 silently drops MP4 ``mov_text``
  (tx3g) subtitles, so ffmpeg copies every stream and converts ``mov_text`` to SRT
  (Matroska has no ``mov_text`` codec). FFmpeg 5.1 would write MP4 cover art as a
  video track; it is extracted first and added back as an attachment.

Streams that neither tool can put into Matroska (``data`` streams such as WebVTT in
MP4, which FFmpeg 5.1 cannot decode) make the remux fail rather than silently drop
them. Every run goes through :class:`ToolRunner` (argument lists, a timeout).
"""

from __future__ import annotations

import errno
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from vpod.errors import MediaError, ToolError
from vpod.media.limits import SIZE_KEYS
from vpod.media.flags import TRACK_FLAGS
from vpod.media.layout import changed_fields, expected_tracks
from vpod.media.model import MediaInfo, Track
from vpod.media.probe import ffmpeg_input
from vpod.media.tool_progress import FFMPEG_ARGS, MKVMERGE_ARGS, ProgressSink, ffmpeg_line_reader, mkvmerge_line_reader
from vpod.media.tools import ToolRunner
from vpod.outcomes import Reason
from vpod.policy.languages import track_language
from vpod.policy.plan import Plan
from vpod.tempfiles import TempRegistry, temp_beside

_MKVMERGE_TYPES = {"video": "video", "audio": "audio", "subtitles": "subtitle"}
_COVER_FORMATS = {"mjpeg": (".jpg", "image/jpeg"), "png": (".png", "image/png"), "bmp": (".bmp", "image/bmp")}
_CONVERTED_SUBTITLES = {"mov_text": "srt"}  # codecs Matroska cannot hold → what ffmpeg converts them to
# Subtitle codecs (ffprobe names) FFmpeg 5.1's Matroska muxer writes (libavformat/matroskaenc.c codec tags).
_MATROSKA_SUBTITLES = frozenset(
    {"subrip", "srt", "ass", "ssa", "webvtt", "text", "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"}
)
_NO_SPACE_HINTS = ("no space left", "drive may be full", "disk full")
# Dispositions a remux by ffmpeg keeps as the source has them: those that are not one of
# vpod's track flags (vpod.media.flags), which come from the planned track instead.
_OTHER_DISPOSITIONS = ("dub", "lyrics", "karaoke", "clean_effects", "captions", "metadata", "dependent", "still_image")


def choose_remuxer(media: MediaInfo) -> str:
    """``"mkvmerge"`` or ``"ffmpeg"``: which tool can read every stream of ``media``.

    Matroska probed by mkvmerge: mkvmerge. Other containers: mkvmerge when its
    ``mkvmerge -J`` lists the same video/audio/subtitle tracks as ffprobe (same types
    and languages, in the same order) with no codec it calls unsupported, and as many
    attachments as ffprobe shows cover pictures; ffmpeg otherwise.
    """
    if media.probed_with == "mkvmerge":
        return "mkvmerge"
    identified = media.extra.get("mkvmerge")
    if not identified:
        return "ffmpeg"
    theirs = []
    for raw in identified.get("tracks", []):
        if str(raw.get("codec", "")).lower().startswith("unsupported"):
            return "ffmpeg"
        props = raw.get("properties", {})
        theirs.append((_MKVMERGE_TYPES.get(raw.get("type", ""), "data"), track_language(props.get("language"))))
    ours = [(t.type, t.language) for t in media.tracks if t.type in ("video", "audio", "subtitle")]
    covers = sum(1 for t in media.tracks if t.type == "attachment")
    if theirs != ours or len(identified.get("attachments", [])) != covers:
        return "ffmpeg"
    return "mkvmerge"


def _mkvmerge_ids(media: MediaInfo) -> dict[int, int]:
    """Source stream index → mkvmerge track ID (the same for Matroska; by position otherwise)."""
    if media.probed_with == "mkvmerge":
        return {t.index: t.index for t in media.tracks}
    carried = [t for t in media.tracks if t.type in ("video", "audio", "subtitle")]
    return {t.index: position for position, t in enumerate(carried)}


def mkvmerge_args(media: MediaInfo, plan: Plan, output: Path) -> list[str]:
    """The ``mkvmerge`` argument list (without the program name) for ``plan``.

    Track selection (``--video-tracks``/``--audio-tracks``/``--subtitle-tracks``),
    ``--track-order``, the flags of every kept track, and the language and name of the
    tracks the plan changes (options as in mkvmerge(1), MKVToolNix 74). Paths are
    absolute, so no name is read as an option or as an ``@options-file``.

    Every flag (:data:`vpod.media.flags.TRACK_FLAGS`) is given as ``TID:0`` or ``TID:1``
    for every kept track, so flags that mkvmerge does not read from the source (MP4's
    ``kind`` boxes, which ffprobe reads) are not lost; except ``FlagOriginal`` off, which
    is given only when the plan turns it off: an explicit 0 means "a translation"
    (FFmpeg reads it as ``dub``), so a track with no ``FlagOriginal`` keeps none.
    """
    layout = expected_tracks(media, plan)
    ids = _mkvmerge_ids(media)
    changes = changed_fields(media, plan)
    args: list[str] = ["--output", os.fspath(output.absolute())]
    selections = {"video": "--video-tracks", "audio": "--audio-tracks", "subtitle": "--subtitle-tracks"}
    empties = {"video": "--no-video", "audio": "--no-audio", "subtitle": "--no-subtitles"}
    for kind, option in selections.items():
        present = [t for t in media.tracks if t.type == kind]
        kept = [t for t in layout if t.type == kind]
        if len(kept) == len(present):
            continue
        args += [option, ",".join(str(ids[t.index]) for t in kept)] if kept else [empties[kind]]
    for track in layout:
        if track.type not in ("video", "audio", "subtitle"):
            continue
        tid = ids[track.index]
        fields = changes.get(track.index, set())
        for flag in TRACK_FLAGS:
            value = flag.of(track)
            if value or flag.name != "original" or flag.name in fields:
                args += [flag.mkvmerge_option, f"{tid}:{int(value)}"]
        if "language" in fields:
            args += ["--language", f"{tid}:{track.language_tag or track.language}"]
        if "title" in fields:
            args += ["--track-name", f"{tid}:{track.title or ''}"]
    args.append(os.fspath(media.path.absolute()))
    carried = [t for t in layout if t.type in ("video", "audio", "subtitle")]
    args += ["--track-order", ",".join(f"0:{ids[t.index]}" for t in carried)]
    return args


def _ffprobe_streams(media: MediaInfo) -> dict[int, dict[str, Any]]:
    data = media.extra.get("ffprobe") or {}
    return {s["index"]: s for s in data.get("streams", [])}


def _is_cover(stream: dict[str, Any]) -> bool:
    return stream.get("codec_type") == "video" and bool((stream.get("disposition") or {}).get("attached_pic"))


def ffmpeg_args(media: MediaInfo, plan: Plan, output: Path, covers: dict[int, Path] | None = None) -> list[str]:
    """The ``ffmpeg`` argument list (without the program name) for ``plan``.

    ``covers`` maps the stream index of each cover picture to a file holding it
    (see :meth:`Remuxer.remux`); they are written as Matroska attachments
    (``-attach``) instead of video tracks. ``-xerror`` makes ffmpeg exit non-zero on
    any error: FFmpeg 5.1 otherwise exits 0 when writing the trailer fails (a full
    disk). ``-default_mode passthrough`` writes the default flags exactly as given
    (FFmpeg muxers documentation, "matroska").
    """
    covers = covers or {}
    raw = _ffprobe_streams(media)
    changes = changed_fields(media, plan)
    layout = [t for t in expected_tracks(media, plan) if t.index not in covers]
    args = ["-nostdin", "-hide_banner", "-v", "error", "-xerror", "-y", "-i", ffmpeg_input(media.path)]
    for cover in covers.values():
        args += ["-attach", ffmpeg_input(cover)]
    for track in layout:
        args += ["-map", f"0:{track.index}"]
    args += ["-c", "copy", "-map_chapters", "0"]
    for n, track in enumerate(layout):
        stream = raw.get(track.index, {})
        target = _CONVERTED_SUBTITLES.get(stream.get("codec_name", ""))
        if target:
            args += [f"-c:{n}", target]
        fields = changes.get(track.index, set())
        if track.type in ("video", "audio", "subtitle"):
            args += [f"-disposition:{n}", _disposition(stream, track, original_cleared="original" in fields)]
        if "language" in fields:
            args += [f"-metadata:s:{n}", f"language={track.language}"]
        if "title" in fields:
            args += [f"-metadata:s:{n}", f"title={track.title or ''}"]
    for n, index in enumerate(covers, start=len(layout)):
        extension, mimetype = _COVER_FORMATS[raw[index]["codec_name"]]
        name = "cover" + extension if n == len(layout) else f"cover-{n - len(layout) + 1}{extension}"
        args += [f"-metadata:s:{n}", f"mimetype={mimetype}", f"-metadata:s:{n}", f"filename={name}"]
    muxer = "webm" if output.suffix.lower() == ".webm" else "matroska"
    args += ["-default_mode", "passthrough", "-f", muxer, ffmpeg_input(output)]
    return args


def _disposition(stream: dict[str, Any], track: Track, *, original_cleared: bool) -> str:
    """ffmpeg's ``-disposition`` value: every flag of the planned ``track``, plus the
    source's dispositions that are not vpod flags. ``dub`` is FFmpeg's ``FlagOriginal``
    0: dropped from a track that is now original, added to one the plan turned off
    (as mkvmerge writes it, :func:`mkvmerge_args`)."""
    source = stream.get("disposition") or {}
    names = [name for name in _OTHER_DISPOSITIONS if source.get(name) and not (name == "dub" and track.original)]
    names += [flag.disposition for flag in TRACK_FLAGS if flag.of(track)]
    if original_cleared and not track.original and "dub" not in names:
        names.append("dub")
    return "+".join(names) or "0"


def unsupported_streams(media: MediaInfo, plan: Plan, tool: str) -> list[Track]:
    """Kept streams ``tool`` cannot put into Matroska: ``data`` streams (WebVTT in MP4,
    QuickTime timecode), and for ffmpeg, cover pictures in a format vpod does not name
    and subtitle codecs FFmpeg's Matroska muxer rejects (XSUB from AVI)."""
    raw = _ffprobe_streams(media)
    bad = []
    for track in expected_tracks(media, plan):
        stream = raw.get(track.index, {})
        codec = stream.get("codec_name", "")
        if track.type == "data":
            bad.append(track)
        elif tool == "ffmpeg" and _is_cover(stream) and codec not in _COVER_FORMATS:
            bad.append(track)
        elif (
            tool == "ffmpeg"
            and track.type == "subtitle"
            and codec not in _MATROSKA_SUBTITLES
            and codec not in _CONVERTED_SUBTITLES
        ):
            bad.append(track)
    return bad


def unsupported_stream_error(media: MediaInfo, plan: Plan) -> MediaError | None:
    """Why a remux of ``media`` by ``plan`` would fail before it starts, or ``None``.

    The one stream-support rule of vpod: :func:`choose_remuxer` picks the tool and
    :func:`unsupported_streams` lists the kept streams it cannot put into Matroska.
    ``vpod plan``, ``--dry-run`` and the run itself all ask this function, so a plan
    never promises a remux the run then refuses.

    Returns:
        A :class:`MediaError` with reason ``unsupported_stream`` (permanent: the same
        bytes under the same policy always fail) naming each such stream, or ``None``.
    """
    bad = unsupported_streams(media, plan, choose_remuxer(media))
    if not bad:
        return None
    names = ", ".join(f"stream {t.index} ({t.type}, codec {t.codec or 'unknown'})" for t in bad)
    return MediaError(
        f"{media.path}: cannot remux into Matroska without losing {names}: neither mkvmerge nor "
        f"ffmpeg can write it there, and vpod never drops a stream silently; the file is left unchanged",
        reason=Reason.UNSUPPORTED_STREAM,
    )


class Remuxer:
    """Writes a planned layout into a new file with mkvmerge or ffmpeg.

    Args:
        runner: runs the tools; a run's limit grows with the source's size
            (``ToolLimits.for_size``).
        temps: registers the extra temp files (cover pictures) a remux needs.
    """

    def __init__(self, runner: ToolRunner, temps: TempRegistry) -> None:
        self.runner = runner
        self.temps = temps

    def remux(self, media: MediaInfo, plan: Plan, output: Path, on_progress: ProgressSink | None = None) -> str:
        """Write ``media`` with ``plan`` applied into ``output`` (an existing empty temp
        file beside the source); returns the tool used. The source is only read.

        ``on_progress`` gets 0 when the tool starts, then the percentage done as the
        tool reports it (:mod:`vpod.media.tool_progress`), in this thread.

        Raises:
            MediaError: reason ``unsupported_stream`` (a kept stream Matroska cannot
                hold), ``disk_full`` (message contains "No space left on device"), or
                the tool's failure with its stderr.
            ToolTimeout / ToolMissing: the tool hung or is not installed.
        """
        unsupported = unsupported_stream_error(media, plan)
        if unsupported is not None:
            raise unsupported
        tool = choose_remuxer(media)
        limit = self.runner.limits.for_size(media.size_bytes)  # the whole file is read and written
        try:
            if tool == "mkvmerge":
                extra, reader = (MKVMERGE_ARGS, mkvmerge_line_reader(on_progress)) if on_progress else ((), None)
                if on_progress:
                    on_progress(0.0)
                # Exit status 1 means "finished with warnings" (mkvmerge(1), EXIT CODES).
                self.runner.run(
                    ["mkvmerge", *extra, *mkvmerge_args(media, plan, output)], ok_codes=(0, 1),
                    on_output_line=reader, timeout_seconds=limit, timeout_keys=SIZE_KEYS,
                )
            else:
                with ExitStack() as stack:
                    covers = self._extract_covers(media, plan, stack)
                    extra, reader = (
                        (FFMPEG_ARGS, ffmpeg_line_reader(on_progress, media.duration_seconds))
                        if on_progress else ((), None)
                    )  # fmt: skip
                    if on_progress:
                        on_progress(0.0)
                    self.runner.run(
                        ["ffmpeg", *extra, *ffmpeg_args(media, plan, output, covers)],
                        on_output_line=reader, timeout_seconds=limit, timeout_keys=SIZE_KEYS,
                    )
        except ToolError as exc:
            if any(hint in str(exc).lower() for hint in _NO_SPACE_HINTS):
                # mkvmerge says "The drive may be full ... No space left to write to".
                raise MediaError(
                    f"{media.path}: remux with {tool} failed: {os.strerror(errno.ENOSPC)} ({exc})",
                    reason=Reason.DISK_FULL,
                    permanent=False,
                ) from None
            raise MediaError(
                f"{media.path}: remux with {tool} failed: {exc}", reason=exc.reason, permanent=exc.permanent
            ) from None
        return tool

    def _extract_covers(self, media: MediaInfo, plan: Plan, stack: ExitStack) -> dict[int, Path]:
        """Write each kept cover picture into a registered temp file beside the source."""
        raw = _ffprobe_streams(media)
        covers: dict[int, Path] = {}
        for track in expected_tracks(media, plan):
            stream = raw.get(track.index, {})
            if not _is_cover(stream):
                continue
            extension, _ = _COVER_FORMATS[stream["codec_name"]]
            picture = stack.enter_context(temp_beside(media.path, self.temps, suffix=extension))
            self.runner.run(
                ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-y", "-i", ffmpeg_input(media.path),
                 "-map", f"0:{track.index}", "-c", "copy", "-frames:v", "1", "-f", "image2", ffmpeg_input(picture)],
                timeout_seconds=self.runner.limits.for_size(media.size_bytes), timeout_keys=SIZE_KEYS,
            )  # fmt: skip
            covers[track.index] = picture
        return covers
