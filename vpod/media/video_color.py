"""A video stream's bit depth, colour description and HDR metadata, and how an encoder keeps them.

Read from ffprobe: the stream's ``pix_fmt``, ``color_primaries``, ``color_transfer``,
``color_space`` and ``color_range``, and the side data of the stream (Matroska's
``Colour`` element, MP4 ``mdcv``/``clli`` boxes) or of its first frame (HEVC SEI):
"Mastering display metadata", "Content light level metadata", and "DOVI configuration
record" (Dolby Vision). HDR10 is primaries ``bt2020`` with transfer ``smpte2084`` (PQ);
HLG is transfer ``arib-std-b67`` and needs no metadata beyond the colour tags.

What can be kept: the bit depth, whenever the encoder takes a pixel format of that
depth; PQ's mastering display and content light level by libx265 (``x265-params``
``master-display``/``max-cll``, x265 docs "VUI/SEI options") and libsvtav1
(``svtav1-params`` ``mastering-display``/``content-light``, SVT-AV1 docs
Parameters.md); HLG's colour tags by every software encoder. Dolby Vision's RPU cannot be
re-encoded by any of them, and PQ into H.264 loses its metadata: those decline the
video encode with reason ``hdr_not_kept`` before anything is written.

Interlacing is never kept: FFmpeg 5.1's libx265 codes the fields of an interlaced source
as progressive frames and writes a field order into the header all the same, and vpod
passes no interlaced-coding options to any encoder. A source whose ffprobe
``field_order`` is ``tt``, ``bb``, ``tb`` or ``bt`` (ffprobe's names of FFmpeg's
``AVFieldOrder``, libavcodec/codec_par.h: the field coded and the field displayed first)
declines the video encode with reason ``interlaced_not_kept``. The pipeline then applies
the rest of the plan (:meth:`vpod.pipeline.FileProcessor._video_declined`).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from vpod.errors import MediaError
from vpod.outcomes import Reason

_DEPTH = re.compile(r"p(9|10|12|14|16)(le|be)?$")
PQ, HLG = "smpte2084", "arib-std-b67"


class MasteringDisplay(NamedTuple):
    """SMPTE ST 2086 values: chromaticities (x, y) of the primaries and white point, and
    the display's luminance range in cd/m²."""

    green: tuple[Fraction, Fraction]
    blue: tuple[Fraction, Fraction]
    red: tuple[Fraction, Fraction]
    white: tuple[Fraction, Fraction]
    max_luminance: Fraction
    min_luminance: Fraction


class VideoColor(NamedTuple):
    """What an encode must keep of one video stream.

    Attributes:
        pix_fmt: ffmpeg's pixel format name (``yuv420p10le``).
        depth: bits per sample (8, 10, 12).
        primaries, transfer, matrix, range: ffprobe's names, ``""`` when unknown.
        mastering: the mastering display (ST 2086) or ``None``.
        light: (MaxCLL, MaxFALL) in cd/m² (CTA-861.3) or ``None``.
        dolby_vision: the stream carries a Dolby Vision configuration record.
    """

    pix_fmt: str
    depth: int
    primaries: str = ""
    transfer: str = ""
    matrix: str = ""
    range: str = ""
    mastering: MasteringDisplay | None = None
    light: tuple[int, int] | None = None
    dolby_vision: bool = False

    @property
    def hdr(self) -> bool:
        """PQ or HLG transfer (HDR10 / HLG)."""
        return self.transfer in (PQ, HLG)


def _fraction(value: Any) -> Fraction | None:
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None


def _mastering(side: dict[str, Any]) -> MasteringDisplay | None:
    keys = ("green_x", "green_y", "blue_x", "blue_y", "red_x", "red_y", "white_point_x", "white_point_y",
            "max_luminance", "min_luminance")  # fmt: skip
    values = [_fraction(side.get(k)) for k in keys]
    if any(v is None for v in values):
        return None
    v: list[Fraction] = [x for x in values if x is not None]
    return MasteringDisplay((v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]), v[8], v[9])


def video_color(stream: dict[str, Any], first_frame: dict[str, Any] | None = None) -> VideoColor:
    """The :class:`VideoColor` of an ffprobe stream (``-show_streams``) and, when given,
    its first frame (``-show_frames``): the frame's side data fills what the stream lacks."""
    pix_fmt = str(stream.get("pix_fmt") or "")
    match = _DEPTH.search(pix_fmt)
    depth = int(match.group(1)) if match else int(stream.get("bits_per_raw_sample") or 8)
    mastering: MasteringDisplay | None = None
    light: tuple[int, int] | None = None
    dolby = False
    for side in [*(stream.get("side_data_list") or []), *((first_frame or {}).get("side_data_list") or [])]:
        kind = str(side.get("side_data_type", "")).lower()
        if "dovi" in kind or "dolby vision" in kind:
            dolby = True
        elif "mastering display" in kind and mastering is None:
            mastering = _mastering(side)
        elif "content light level" in kind and light is None:
            light = (int(side.get("max_content") or 0), int(side.get("max_average") or 0))
    return VideoColor(
        pix_fmt=pix_fmt, depth=depth, primaries=str(stream.get("color_primaries") or ""),
        transfer=str(stream.get("color_transfer") or ""), matrix=str(stream.get("color_space") or ""),
        range=str(stream.get("color_range") or ""), mastering=mastering, light=light, dolby_vision=dolby,
    )  # fmt: skip


def output_pixel_format(color: VideoColor, formats: tuple[str, ...], encoder: str, source: Path) -> str:
    """The pixel format to encode ``color``'s stream in with ``encoder`` (which takes
    ``formats``): the source's own when the encoder takes it, else 4:2:0 of the same
    depth (``yuv420p`` / ``yuv420p10le``, or ``nv12`` / ``p010le`` for hardware).

    Raises:
        MediaError: reason ``hdr_not_kept``: no format of the source's depth.
    """
    if color.pix_fmt in formats:
        return color.pix_fmt
    wanted = ("yuv420p", "nv12") if color.depth <= 8 else ("yuv420p10le", "p010le") if color.depth <= 10 else ()
    for name in wanted:
        if name in formats:
            return name
    if not formats:  # hardware frames ("vaapi"): the upload filter picks the format
        return "p010le" if color.depth == 10 else "nv12"
    raise MediaError(
        f"{source}: the video is {color.depth}-bit ({color.pix_fmt}) and {encoder} cannot encode that depth "
        f"(it takes {', '.join(formats)}); re-encoding would lose it, so the video is not re-encoded",
        reason=Reason.HDR_NOT_KEPT,
    )


def check_hdr_kept(color: VideoColor, encoder: str, source: Path) -> None:
    """Raise unless ``encoder`` keeps ``color``'s HDR (see the module).

    Raises:
        MediaError: reason ``hdr_not_kept`` (permanent), saying what would be lost.
    """
    why = ""
    if color.dolby_vision:
        why = "it carries Dolby Vision, whose metadata no encoder vpod uses can re-create"
    elif color.transfer == PQ and encoder not in ("libx265", "libsvtav1"):
        why = f"it is HDR10 (PQ) and {encoder} cannot write its mastering display metadata (libx265 and libsvtav1 can)"
    elif color.hdr and color.depth < 10:
        why = f"it is HDR ({color.transfer}) in {color.depth} bits"
    if why:
        raise MediaError(
            f"{source}: the video cannot be re-encoded without losing its HDR: {why}; the video is not re-encoded",
            reason=Reason.HDR_NOT_KEPT,
        )


FIELD_ORDERS = {
    "tt": "top field coded and displayed first",
    "bb": "bottom field coded and displayed first",
    "tb": "top field coded first, bottom displayed first",
    "bt": "bottom field coded first, top displayed first",
}
"""ffprobe's ``field_order`` of an interlaced stream (``progressive`` and ``unknown`` are
the others), ffprobe's names of FFmpeg's ``AVFieldOrder`` (libavcodec/codec_par.h)."""


def check_progressive(stream: dict[str, Any], source: Path) -> None:
    """Raise when the ffprobe ``stream`` (``-show_streams``) is interlaced (see the module).

    Raises:
        MediaError: reason ``interlaced_not_kept`` (permanent), naming the field order
            and what the user can do.
    """
    order = str(stream.get("field_order") or "")
    if order in FIELD_ORDERS:
        raise MediaError(
            f"{source}: the video is interlaced (field order {order}: {FIELD_ORDERS[order]}) and re-encoding it "
            "would make progressive frames of its fields, with a wrong field order in the header; the video is "
            'not re-encoded. Set video_codec = "keep" for it (e.g. in its folder\'s .vpod.toml), or deinterlace '
            "it first (e.g. ffmpeg -vf bwdif)",
            reason=Reason.INTERLACED_NOT_KEPT,
        )


def _x265_point(x: Fraction, y: Fraction) -> str:
    return f"({round(x * 50000)},{round(y * 50000)})"


def _svt_point(x: Fraction, y: Fraction) -> str:
    return f"({float(x):.4f},{float(y):.4f})"


def color_args(color: VideoColor, encoder: str, n: int, *, rgb: bool = False) -> list[str]:
    """ffmpeg options for output stream ``n`` that keep ``color``'s colour tags and HDR
    metadata with ``encoder``: ``-color_primaries``/``-color_trc``/``-colorspace``/
    ``-color_range`` (every encoder writes them into its VUI / sequence header), and for
    libx265 and libsvtav1 the mastering display and content light level. The matrix
    ``gbr`` (an RGB source, H.273's identity matrix) is passed only to an ``rgb`` output,
    and by its option name ``rgb`` (ffprobe prints ``av_color_space_name``, ``gbr``;
    ``ffmpeg -h full``, ``-colorspace``, knows it as ``rgb``: the one name of the four
    tags that differs): an RGB source encoded as YUV has no such matrix."""
    args: list[str] = []
    for option, value in (("color_primaries", color.primaries), ("color_trc", color.transfer),
                          ("colorspace", color.matrix), ("color_range", color.range)):  # fmt: skip
        if option == "colorspace" and value == "gbr":
            if not rgb:
                continue
            value = "rgb"
        if value and value != "unknown":
            args += [f"-{option}:{n}", value]
    params: list[str] = []
    m = color.mastering
    if encoder == "libx265":
        params.append("log-level=error")
        if color.transfer == PQ:
            params += ["hdr10=1", "repeat-headers=1"]
            if m is not None:
                params.append(
                    "master-display=G{}B{}R{}WP{}L({},{})".format(
                        _x265_point(*m.green), _x265_point(*m.blue), _x265_point(*m.red), _x265_point(*m.white),
                        round(m.max_luminance * 10000), round(m.min_luminance * 10000),
                    )
                )
            if color.light is not None:
                params.append(f"max-cll={color.light[0]},{color.light[1]}")
        args += [f"-x265-params:{n}", ":".join(params)]
    elif encoder == "libsvtav1" and color.transfer == PQ:
        if m is not None:
            params.append(
                "mastering-display=G{}B{}R{}WP{}L({:.4f},{:.4f})".format(
                    _svt_point(*m.green), _svt_point(*m.blue), _svt_point(*m.red), _svt_point(*m.white),
                    float(m.max_luminance), float(m.min_luminance),
                )
            )
        if color.light is not None:
            params.append(f"content-light={color.light[0]},{color.light[1]}")
        if params:
            args += [f"-svtav1-params:{n}", ":".join(params)]
    return args
