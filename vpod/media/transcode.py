"""Write a plan that encodes (:attr:`vpod.policy.plan.Plan.transcodes`) in one ffmpeg run.

One run writes the whole plan into the temp ``.mkv`` beside the source: the kept tracks
in the planned order (removals, :class:`~vpod.policy.plan.Reorder`), their flags,
languages and titles, every untouched stream copied (``-c copy``), the encoded ones
(:class:`~vpod.policy.plan.TranscodeVideo`, :class:`~vpod.policy.plan.ConvertAudio`)
re-encoded in place, each added track (:class:`~vpod.policy.plan.AddAudio`) right after
its source, attachments (``-map 0:t?``) and chapters (``-map_chapters 0``) kept, and
``-progress pipe:1`` for the progress sink (speed and fps included).

The encoder of a video transcode is chosen by :mod:`vpod.media.encoders` (hardware only
when present, else software with an ``encoder_fallback`` warning); its bit depth and HDR
are kept, or its encode is declined before anything is written, as it is for an
interlaced source (:mod:`vpod.media.video_color`, :func:`check_picture_kept`) and for a
plan that encodes more than one video track (:func:`check_one_video_encode`).
The encoder runs under ``[processing] transcode_nice`` / ``transcode_ionice`` and a
time limit that grows with the file's duration (:meth:`vpod.media.limits.ToolLimits.for_encode`).
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from vpod.errors import MediaError, ToolError
from vpod.media.encoders import SOFTWARE, EncoderCatalog, EncoderChoice, TranscodeSettings
from vpod.media.limits import BASE_KEYS, PROBE_KEYS
from vpod.media.layout import OutputTrack, changed_fields, planned_layout
from vpod.media.model import MediaInfo
from vpod.media.probe import ffmpeg_input
from vpod.media.remux import _CONVERTED_SUBTITLES, Remuxer, _disposition, unsupported_stream_error
from vpod.media.tool_progress import FFMPEG_ARGS, ProgressSink, ffmpeg_line_reader
from vpod.media.tools import ToolRunner
from vpod.media.video_color import (
    VideoColor, check_hdr_kept, check_progressive, color_args, output_pixel_format, video_color,
)
from vpod.outcomes import Reason
from vpod.policy.plan import AddAudio, ConvertAudio, Plan, TranscodeVideo
from vpod.tempfiles import TempRegistry, temp_beside

AUDIO_ENCODERS = {"aac": "aac", "ac3": "ac3", "eac3": "eac3", "opus": "libopus", "flac": "flac"}
"""Audio codec family → ffmpeg's encoder (FFmpeg's native AAC/AC-3/E-AC-3/FLAC, libopus)."""

# mkvmerge's statistics tags (BPS, NUMBER_OF_BYTES ...) describe the source's stream: an
# encoded stream must not carry them over (ffmpeg copies stream tags by default).
_STALE_TAGS = ("BPS", "NUMBER_OF_BYTES", "NUMBER_OF_FRAMES", "DURATION", "_STATISTICS_TAGS",
               "_STATISTICS_WRITING_APP", "_STATISTICS_WRITING_DATE_UTC", "ENCODER")  # fmt: skip
_NO_SPACE_HINTS = ("no space left", "disk full")


class VideoEncode(NamedTuple):
    """How one video stream is encoded: the encoder, the source's colour, the output pixel format."""

    choice: EncoderChoice
    color: VideoColor
    pix_fmt: str


def ffmpeg_indexes(media: MediaInfo, streams: list[dict[str, Any]]) -> dict[int, int]:
    """Track index of ``media`` → ffmpeg's stream index in the same file.

    ffprobe-probed files use ffmpeg's indexes already. In Matroska, mkvmerge's track IDs
    and ffmpeg's streams both follow the ``TrackEntry`` order; ffmpeg adds attachments
    (and image attachments as ``attached_pic`` video) after them.

    Raises:
        MediaError: the two tools disagree on the tracks (reason ``verify_failed`` is
            wrong here; ``error``): nothing is written rather than the wrong stream encoded.
    """
    if media.probed_with != "mkvmerge":
        return {t.index: t.index for t in media.tracks}
    tracks = [
        s for s in streams
        if s.get("codec_type") != "attachment" and not (s.get("disposition") or {}).get("attached_pic")
    ]  # fmt: skip
    kinds = {"subtitle": "subtitle", "video": "video", "audio": "audio"}
    if [kinds.get(s.get("codec_type", ""), "data") for s in tracks] != [t.type for t in media.tracks]:
        raise MediaError(
            f"{media.path}: ffmpeg and mkvmerge list different tracks, so vpod cannot tell which stream to "
            "encode; the file is left unchanged"
        )
    return {track.index: int(stream["index"]) for track, stream in zip(media.tracks, tracks)}


def _stale_tag_args(n: int) -> list[str]:
    return [arg for tag in _STALE_TAGS for name in (tag, f"{tag}-eng") for arg in (f"-metadata:s:{n}", f"{name}=")]


def _video_args(encode: TranscodeVideo, how: VideoEncode, n: int) -> list[str]:
    """Encoder options of output stream ``n`` (ffmpeg-codecs(1) for each encoder)."""
    name, hardware = how.choice.name, how.choice.hardware
    args = [f"-c:{n}", name]
    if hardware == "vaapi":
        surface = "p010" if how.color.depth > 8 else "nv12"
        args += [f"-filter:{n}", f"format={surface},hwupload", f"-rc_mode:{n}", "CQP", f"-qp:{n}", str(encode.crf)]
    elif hardware == "qsv":
        surface = "p010le" if how.color.depth > 8 else "nv12"
        args += [f"-filter:{n}", f"format={surface},hwupload=extra_hw_frames=64", f"-global_quality:{n}", str(encode.crf)]
    elif hardware == "nvenc":
        args += [f"-pix_fmt:{n}", how.pix_fmt, f"-rc:{n}", "vbr", f"-cq:{n}", str(encode.crf), f"-b:{n}", "0"]
    else:
        args += [f"-pix_fmt:{n}", how.pix_fmt, f"-crf:{n}", str(encode.crf)]
        if encode.preset:
            args += [f"-preset:{n}", encode.preset]
    return args + color_args(how.color, name, n, rgb=how.pix_fmt.startswith("gbr"))


def _audio_args(encode: ConvertAudio | AddAudio, n: int) -> list[str]:
    args = [f"-c:{n}", AUDIO_ENCODERS[encode.codec]]
    if encode.bitrate_kbps:
        args += [f"-b:{n}", f"{encode.bitrate_kbps}k"]
    if encode.channels:
        args += [f"-ac:{n}", str(encode.channels)]
    return args


def as_done(plan: Plan, video: dict[int, VideoEncode]) -> Plan:
    """``plan`` as carried out: each :class:`TranscodeVideo` whose encoder fell back
    (``encoder_fallback``) gets ``ran`` = the encoder that ran and why, e.g. ``libx265,
    vaapi not usable``, so the recorded actions do not name a hardware encoder that did
    not run. Only what is reported changes: the planner never sets ``ran``."""
    actions = tuple(
        a._replace(ran=f"{video[a.track].choice.name}, {video[a.track].choice.short or a.encoder + ' not usable'}")
        if isinstance(a, TranscodeVideo) and a.track in video and video[a.track].choice.fallback else a
        for a in plan.actions
    )  # fmt: skip
    return plan._replace(actions=actions)


def transcode_args(
    media: MediaInfo,
    plan: Plan,
    output: Path,
    streams: list[dict[str, Any]],
    video: dict[int, VideoEncode],
    *,
    covers: dict[int, Path] | None = None,
    pictures: list[tuple[Path, str, str]] | None = None,
    vaapi_device: str = "",
    progress: bool = True,
) -> list[str]:
    """The ffmpeg argument list (with the program name) that writes ``media`` with
    ``plan`` applied into ``output`` (Matroska).

    Args:
        streams: ffprobe's ``streams`` of the source (``-show_streams``).
        video: per source track index of each :class:`TranscodeVideo`, how it is encoded.
        covers: MP4 cover pictures extracted to files (:meth:`Remuxer._extract_covers`),
            attached instead of mapped.
        pictures: a Matroska source's image attachments extracted to files, with their
            file names and MIME types (ffmpeg reads them as ``attached_pic`` video
            streams, which FFmpeg 5.1's Matroska muxer would write as video tracks), attached again.
        vaapi_device: the render node, when a VAAPI encoder runs.
        progress: ask for ``-progress pipe:1`` blocks on stdout.

    Output streams are numbered in the order of :func:`planned_layout`; each gets
    ``-disposition`` (every vpod flag as planned, the source's other dispositions), and
    an encoded or added one its language and, when planned, its title. ``-xerror`` makes
    any error fatal (FFmpeg 5.1 exits 0 when writing the trailer fails otherwise);
    ``-default_mode passthrough`` writes the default flags as given (ffmpeg-formats(1),
    "matroska").

    Raises:
        KeyError: a codec family of an audio action that :data:`AUDIO_ENCODERS` lacks.
    """
    covers = covers or {}
    raw = {int(s["index"]): s for s in streams}
    index = ffmpeg_indexes(media, streams)
    changes = changed_fields(media, plan)
    layout = [o for o in planned_layout(media, plan) if o.track.index not in covers]
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-y"]
    if progress:
        args += list(FFMPEG_ARGS)
    if vaapi_device:
        args += ["-vaapi_device", vaapi_device]
    args += ["-i", ffmpeg_input(media.path)]
    for cover in covers.values():
        args += ["-attach", ffmpeg_input(cover)]
    for out in layout:
        args += ["-map", f"0:{index[out.track.index]}"]
    pictures = pictures or []
    for picture, _, _ in pictures:
        args += ["-attach", ffmpeg_input(picture)]
    if media.probed_with == "mkvmerge":
        args += ["-map", "0:t?"]  # the other attachments (fonts, text), copied as they are
    args += ["-map_chapters", "0", "-c", "copy"]
    for n, out in enumerate(layout):
        stream = raw.get(index[out.track.index], {})
        track = out.track
        encode = out.encode
        if isinstance(encode, TranscodeVideo):
            args += _video_args(encode, video[track.index], n) + _stale_tag_args(n)
        elif isinstance(encode, (ConvertAudio, AddAudio)):
            args += _audio_args(encode, n) + _stale_tag_args(n)
        else:
            target = _CONVERTED_SUBTITLES.get(stream.get("codec_name", ""))
            if target:
                args += [f"-c:{n}", target]
        fields = changes.get(track.index, set())
        if out.added:
            args += [f"-disposition:{n}", "default" if track.default else "0"]
            args += [f"-metadata:s:{n}", f"language={track.language}", f"-metadata:s:{n}", f"title={track.title or ''}"]
            continue
        args += [f"-disposition:{n}", _disposition(stream, track, original_cleared="original" in fields)]
        if "language" in fields or encode is not None:
            args += [f"-metadata:s:{n}", f"language={track.language}"]
        if "title" in fields:
            args += [f"-metadata:s:{n}", f"title={track.title or ''}"]
    for n, source in enumerate(covers, start=len(layout)):
        codec = raw[index[source]].get("codec_name", "mjpeg")
        extension, mimetype = {"png": (".png", "image/png"), "bmp": (".bmp", "image/bmp")}.get(
            codec, (".jpg", "image/jpeg")
        )
        name = "cover" + extension if n == len(layout) else f"cover-{n - len(layout) + 1}{extension}"
        args += [f"-metadata:s:{n}", f"mimetype={mimetype}", f"-metadata:s:{n}", f"filename={name}"]
    after = len(layout) + len(covers)
    if media.probed_with == "mkvmerge":
        after += sum(1 for stream in streams if stream.get("codec_type") == "attachment")
    for n, (_, name, mimetype) in enumerate(pictures, start=after):  # -attach streams come after mapped ones
        args += [f"-metadata:s:{n}", f"mimetype={mimetype}", f"-metadata:s:{n}", f"filename={name}"]
    args += ["-default_mode", "passthrough", "-f", "matroska", ffmpeg_input(output)]
    return args


def source_streams(media: MediaInfo, runner: ToolRunner) -> list[dict[str, Any]]:
    """ffprobe's ``streams`` of ``media`` (``-show_streams``, side data included): the
    probe's own when it ran ffprobe, else one ffprobe run.

    Raises:
        ToolError / ToolMissing / ToolTimeout: ffprobe failed.
    """
    data = media.extra.get("ffprobe")
    if data is None:
        result = runner.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_streams", ffmpeg_input(media.path)],
            timeout_seconds=runner.limits.probe_seconds, timeout_keys=PROBE_KEYS,
        )
        data = json.loads(result.stdout or "{}")
    streams: list[dict[str, Any]] = data.get("streams", [])
    return streams


def first_frame(media: MediaInfo, stream_index: int, runner: ToolRunner) -> dict[str, Any] | None:
    """The first frame of ffmpeg stream ``stream_index`` as ``ffprobe -show_frames`` reads
    it (its side data: HDR metadata an HEVC stream carries in SEI), or ``None``.

    Raises:
        ToolError / ToolMissing / ToolTimeout: ffprobe failed.
    """
    result = runner.run(
        ["ffprobe", "-v", "error", "-of", "json", "-select_streams", str(stream_index), "-read_intervals",
         "%+#1", "-show_frames", "-show_entries", "frame=side_data_list", ffmpeg_input(media.path)],
        timeout_seconds=runner.limits.probe_seconds, timeout_keys=PROBE_KEYS,
    )  # fmt: skip
    frames = json.loads(result.stdout or "{}").get("frames") or []
    return frames[0] if frames else None


def check_picture_kept(stream: dict[str, Any], color: VideoColor, action: TranscodeVideo, source: Path) -> None:
    """Raise when the video transcode ``action`` of the ffprobe ``stream`` (whose colour
    is ``color``) cannot keep its picture, judged with no encoder run: interlaced
    (:func:`vpod.media.video_color.check_progressive`), or HDR the encoder that would
    write it cannot keep (:func:`vpod.media.video_color.check_hdr_kept` with the
    codec's software encoder: a hardware one gives way to it for HDR, see
    :meth:`Transcoder.plan_video`). The executor and ``vpod plan`` both ask this.

    Raises:
        MediaError: reason ``interlaced_not_kept`` or ``hdr_not_kept`` (permanent).
    """
    check_progressive(stream, source)
    check_hdr_kept(color, SOFTWARE[action.codec], source)


def check_one_video_encode(plan: Plan, source: Path) -> None:
    """Raise when ``plan`` re-encodes more than one video track. FFmpeg 5.1's Matroska
    muxer indexes (Cues) the first video track only, and the encoders' delays give each
    encoded track another first timestamp: a seek to the start (a player's, and the
    verification's ``ffmpeg -ss 0``, :mod:`vpod.media.decode_check`) lands on the first
    track's keyframe and drops an earlier keyframe of the second, whose decode then
    fails ("File is broken, keyframes not correctly marked!", "Could not find ref with
    POC 0"): the result would fail ``verify_failed`` on every attempt. Runs no tool.

    Raises:
        MediaError: reason ``several_video_tracks`` (permanent), naming the tracks and
            what the user can do.
    """
    tracks = [a.track for a in plan.actions if isinstance(a, TranscodeVideo)]
    if len(tracks) > 1:
        raise MediaError(
            f"{source}: the plan would re-encode {len(tracks)} video tracks (tracks "
            f"{', '.join(map(str, tracks))}), and FFmpeg's Matroska muxer writes a file whose second encoded video "
            "track does not decode from its start; the video is not re-encoded. Set video_codec = \"keep\" for it "
            "(e.g. in its folder's .vpod.toml), or remove the extra video track (e.g. mkvmerge -o OUT.mkv "
            "--video-tracks 0 FILE)",
            reason=Reason.SEVERAL_VIDEO_TRACKS,
        )


def picture_refusal(media: MediaInfo, plan: Plan, runner: ToolRunner) -> MediaError | None:
    """Why the video transcodes of ``plan`` would be declined by the executor before
    any encode (:func:`check_one_video_encode`, then :func:`check_picture_kept` of each),
    or ``None``; what ``vpod plan`` predicts. Runs nothing for a plan without a video
    transcode or with several, else one ``ffprobe
    -show_streams`` (unless the probe has it) and one first-frame read per video
    transcode. The bit depth an encoder cannot write (12-bit into libx265's 4:2:0
    formats, :func:`vpod.media.video_color.output_pixel_format`) is known only from the
    encoder's pixel formats, at run time: not predicted here.

    Raises:
        ToolError / ToolMissing / ToolTimeout: ffprobe failed.
        MediaError: ffmpeg and mkvmerge list different tracks (:func:`ffmpeg_indexes`).
    """
    videos = [a for a in plan.actions if isinstance(a, TranscodeVideo)]
    if not videos:
        return None
    try:
        check_one_video_encode(plan, media.path)
    except MediaError as exc:
        return exc
    streams = source_streams(media, runner)
    index = ffmpeg_indexes(media, streams)
    raw = {int(s["index"]): s for s in streams}
    for action in videos:
        stream = raw.get(index[action.track], {})
        try:
            check_picture_kept(stream, video_color(stream, first_frame(media, index[action.track], runner)), action, media.path)
        except MediaError as exc:
            return exc
    return None


class Transcoder:
    """Writes a plan that encodes into a new Matroska file with one ffmpeg run.

    Args:
        runner: runs ffprobe, ffmpeg and the test encodes.
        temps: registers the extra temp files (MP4 cover pictures).
        settings: nice/ionice and the VAAPI device (``[processing]``).
        remuxer: extracts MP4 cover pictures as a remux does.
    """

    def __init__(self, runner: ToolRunner, temps: TempRegistry, settings: TranscodeSettings, remuxer: Remuxer) -> None:
        self.runner = runner
        self.temps = temps
        self.settings = settings
        self.remuxer = remuxer
        self.encoders = EncoderCatalog(runner, settings)
        self.log = structlog.get_logger("vpod")

    def reconfigure(self, settings: TranscodeSettings) -> None:
        """New ``[processing]`` settings, from the next encode on (a reload); a new VAAPI
        device is tested again."""
        if settings != self.settings:
            self.settings = settings
            self.encoders = EncoderCatalog(self.runner, settings)

    def source_streams(self, media: MediaInfo) -> list[dict[str, Any]]:
        """ffprobe's ``streams`` of the source (:func:`source_streams`)."""
        return source_streams(media, self.runner)

    def plan_video(self, media: MediaInfo, plan: Plan, streams: list[dict[str, Any]]) -> dict[int, VideoEncode]:
        """For each :class:`TranscodeVideo`: the encoder (logging ``encoder_fallback`` when
        a planned hardware encoder cannot be used), the source's colour and the output
        pixel format.

        Raises:
            MediaError: reason ``several_video_tracks`` (:func:`check_one_video_encode`),
                ``hdr_not_kept`` or ``interlaced_not_kept`` (see
                :mod:`vpod.media.video_color` and :func:`check_picture_kept`).
            ToolError: no encoder for the codec.
        """
        check_one_video_encode(plan, media.path)
        index = ffmpeg_indexes(media, streams)
        raw = {int(s["index"]): s for s in streams}
        out: dict[int, VideoEncode] = {}
        for action in plan.actions:
            if not isinstance(action, TranscodeVideo):
                continue
            source = index[action.track]
            color = video_color(raw.get(source, {}), first_frame(media, source, self.runner))
            check_picture_kept(raw.get(source, {}), color, action, media.path)
            choice = self.encoders.choose(action.codec, action.encoder)
            if choice.hardware and (color.hdr or color.dolby_vision):
                # Only libx265/libsvtav1 are known to write HDR10's metadata (video_color).
                software = self.encoders.choose(action.codec, "software")
                choice = software._replace(
                    fallback=f"{choice.name} does not keep HDR metadata; {software.name} encodes instead",
                    short=f"{action.encoder} does not keep HDR",
                )  # fmt: skip
            if choice.fallback:
                self.log.warning(
                    "encoder_fallback", path=str(media.path), track=action.track, wanted=action.encoder,
                    encoder=choice.name, why=choice.fallback,
                )  # fmt: skip
            check_hdr_kept(color, choice.name, media.path)  # the encoder that runs (check_picture_kept: the plan's)
            if choice.hardware in ("vaapi", "qsv"):
                # Hardware frames: the upload filter's surface format (nv12 / p010) sets the depth.
                pix_fmt = "p010le" if color.depth > 8 else "nv12"
            else:
                pix_fmt = output_pixel_format(color, choice.pixel_formats, choice.name, media.path)
            out[action.track] = VideoEncode(choice, color, pix_fmt)
        return out

    def transcode(
        self, media: MediaInfo, plan: Plan, output: Path, on_progress: ProgressSink | None = None,
        streams: list[dict[str, Any]] | None = None,
    ) -> tuple[str, Plan]:
        """Write ``media`` with ``plan`` applied into ``output`` (an existing empty temp file
        beside the source); returns the tool used (``ffmpeg (libx265)``) and the plan as
        done (:func:`as_done`: each video transcode names the encoder that ran where the
        asked one was not usable). The source is only read. ``on_progress`` gets 0 at
        the start, then ``(percent, speed=, fps=)``. ``streams``: the source's
        (:meth:`source_streams`) when the caller has them already; else probed here.

        Raises:
            MediaError: reasons ``unsupported_stream``, ``several_video_tracks``,
                ``hdr_not_kept``, ``interlaced_not_kept``, ``disk_full``,
                or the encoder's failure with its stderr (``tool_failed``, or ``killed``,
                not permanent, when a signal ended it).
            ToolTimeout / ToolMissing: the encode ran past its limit, or a tool is missing.
        """
        unsupported = unsupported_stream_error(media, plan)
        if unsupported is not None:
            raise unsupported
        if streams is None:
            streams = self.source_streams(media)
        video = self.plan_video(media, plan, streams)
        vaapi = self.settings.vaapi_device if any(v.choice.hardware == "vaapi" for v in video.values()) else ""
        encoders = ", ".join(sorted({v.choice.name for v in video.values()}))
        tool = f"ffmpeg ({encoders})" if encoders else "ffmpeg"
        limit = self.runner.limits.for_encode(media.size_bytes, media.duration_seconds)
        try:
            with ExitStack() as stack:
                covers = self.remuxer._extract_covers(media, plan, stack) if media.probed_with != "mkvmerge" else {}
                pictures = self._extract_pictures(media, streams, stack)
                args = transcode_args(
                    media, plan, output, streams, video, covers=covers, pictures=pictures, vaapi_device=vaapi,
                    progress=on_progress is not None,
                )  # fmt: skip
                if on_progress is not None:
                    on_progress(0.0)
                reader = ffmpeg_line_reader(on_progress, media.duration_seconds) if on_progress else None
                self.runner.run(
                    args, on_output_line=reader, timeout_seconds=limit, wrapper=self.settings.wrapper(),
                    timeout_keys=self.runner.limits.encode_keys(media.duration_seconds),
                )
            self._write_language_tags(media, plan, output)
        except ToolError as exc:
            if type(exc) is not ToolError:
                raise  # ToolTimeout, ToolMissing: their own reasons
            if any(hint in str(exc).lower() for hint in _NO_SPACE_HINTS):
                raise MediaError(
                    f"{media.path}: transcode with {tool} failed: {os.strerror(28)} ({exc})",
                    reason=Reason.DISK_FULL, permanent=False,
                ) from None  # fmt: skip
            raise MediaError(
                f"{media.path}: transcode with {tool} failed: {exc}", reason=exc.reason, permanent=exc.permanent
            ) from None
        return tool, as_done(plan, video)

    def _extract_pictures(
        self, media: MediaInfo, streams: list[dict[str, Any]], stack: ExitStack
    ) -> list[tuple[Path, str, str]]:
        """Each image attachment of a Matroska source that ffmpeg reads as an
        ``attached_pic`` stream, extracted byte for byte by ``mkvextract attachments``
        (mkvextract(1)) into a registered temp file beside the source: (file, name, MIME type).

        Raises:
            MediaError: such a stream matches no attachment ``mkvmerge -J`` lists.
        """
        if media.probed_with != "mkvmerge":
            return []
        listed = (media.extra.get("mkvmerge") or {}).get("attachments") or []
        out: list[tuple[Path, str, str]] = []
        for stream in streams:
            if not (stream.get("disposition") or {}).get("attached_pic"):
                continue
            name = str((stream.get("tags") or {}).get("filename", ""))
            match = next((a for a in listed if a.get("file_name") == name), None)
            if match is None:
                raise MediaError(f"{media.path}: cannot find the attachment {name!r} to carry it over; left unchanged")
            suffix = Path(name).suffix or ".bin"
            picture = stack.enter_context(temp_beside(media.path, self.temps, suffix=suffix))
            self.runner.run(
                ["mkvextract", os.fspath(media.path.absolute()), "attachments", f"{match['id']}:{os.fspath(picture)}"],
                ok_codes=(0, 1), timeout_seconds=self.runner.limits.base_seconds, timeout_keys=BASE_KEYS,
            )  # fmt: skip
            out.append((picture, name, str(match.get("content_type") or "application/octet-stream")))
        return out

    def _write_language_tags(self, media: MediaInfo, plan: Plan, output: Path) -> None:
        """Give the written tracks their BCP 47 language tags (``pt-BR``, ``yue``): FFmpeg
        5.1 reads and writes only Matroska's ``Language`` element, so one ``mkvpropedit``
        run on the temp file sets ``language`` to each track's tag, which MKVToolNix writes
        into both elements (mkvpropedit(1), track properties). Nothing runs when no
        track has a tag."""
        edits: list[str] = []
        for n, out in enumerate(o for o in planned_layout(media, plan)):
            if out.track.language_tag:
                edits += ["--edit", f"track:{n + 1}", "--set", f"language={out.track.language_tag}"]
        if edits:
            # Exit status 1 means "finished with warnings" (mkvpropedit(1), EXIT CODES).
            self.runner.run(["mkvpropedit", os.fspath(output.absolute()), *edits], ok_codes=(0, 1))

