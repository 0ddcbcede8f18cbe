"""Codec families: the names mkvmerge, ffprobe and users give one codec, reduced to one
family name: audio for ``audio_codec_preference``, ``audio_compat`` and
``audio_convert``; video for ``video_codec``.

mkvmerge -J reports codecs by their MKVToolNix names (``AC-3``, ``E-AC-3``, ``TrueHD
Atmos``, ``DTS-HD Master Audio``), ffprobe by FFmpeg's ``codec_name`` (``ac3``,
``eac3``, ``truehd``, ``dts``, ``pcm_s24le``).
"""

from __future__ import annotations

import re

_FAMILIES = (
    # (family, names: lower-case, letters and digits only, "+" read as "plus")
    ("truehd", ("truehd", "mlp", "dolbytruehd")),
    ("dtshd", ("dtshd", "dtsma", "dtshdma", "dtshdmasteraudio", "dtshdhighresolutionaudio", "dtshra", "dtsx")),
    ("dts", ("dts",)),
    ("eac3", ("eac3", "ec3", "ddp", "ddplus", "dolbydigitalplus")),
    ("ac3", ("ac3", "dd", "dolbydigital")),
    ("aac", ("aac",)),
    ("flac", ("flac",)),
    ("opus", ("opus",)),
    ("vorbis", ("vorbis",)),
    ("mp3", ("mp3", "mpegaudio")),
    ("mp2", ("mp2",)),
    ("pcm", ("pcm", "lpcm")),
)
CODEC_NAMES = tuple(family for family, _ in _FAMILIES)
"""The family names, in the order docs/policy.md lists them."""

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _normalized(name: str) -> str:
    return _NOT_ALNUM.sub("", name.casefold().replace("+", "plus"))


def codec_family(name: str) -> str | None:
    """The family of a codec name as a user writes it in ``audio_codec_preference``
    (``E-AC-3``, ``eac3``, ``DD+``, ``DTS-HD MA``), or ``None`` when vpod does not know
    the name. Case, spaces and punctuation do not count."""
    text = _normalized(name)
    return next((family for family, names in _FAMILIES if text in names), None)


def track_codec_family(codec: str) -> str:
    """The family of a track's codec as mkvmerge (``TrueHD Atmos``) or ffprobe
    (``pcm_s24le``) reports it: the family whose name the normalized text starts with
    (the longest such name); an unknown codec is its own family."""
    return _family_by_prefix(codec, _FAMILIES)


def _family_by_prefix(codec: str, families: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """The family in ``families`` with the longest name the normalized ``codec`` starts
    with; an unknown codec is its own family."""
    text = _normalized(codec)
    best = ("", "")
    for family, names in families:
        for known in names:
            if text.startswith(known) and len(known) > len(best[1]):
                best = (family, known)
    return best[0] or text


_VIDEO_FAMILIES = (
    # (family, names as in _FAMILIES): mkvmerge -J codec names (AVC/H.264/MPEG-4p10,
    # HEVC/H.265/MPEG-H, MPEG-1/2, MPEG-4p2, VC-1, AV1, VP9) and ffprobe codec_name
    # (h264, hevc, mpeg2video, mpeg1video, mpeg4, vc1, av1, vp9), normalized.
    ("h264", ("h264", "avc", "x264")),
    ("hevc", ("hevc", "h265", "x265")),
    ("av1", ("av1",)),
    ("mpeg2", ("mpeg12", "mpeg2", "mpeg1")),
    ("mpeg4", ("mpeg4p2", "mpeg4", "xvid", "divx")),
    ("vc1", ("vc1", "wvc1")),
    ("vp9", ("vp9",)),
    ("vp8", ("vp8",)),
)
VIDEO_CODEC_NAMES = tuple(family for family, _ in _VIDEO_FAMILIES)
"""The video family names, in the order docs/policy.md lists them."""


def video_codec_family(name: str) -> str | None:
    """The video family of a codec name as a user writes it in ``video_codec``
    (``hevc``, ``H.265``, ``AVC``, ``mpeg2``), or ``None`` when vpod does not know it."""
    text = _normalized(name)
    return next((family for family, names in _VIDEO_FAMILIES if text in names), None)


def track_video_family(codec: str) -> str:
    """The video family of a track's codec as mkvmerge (``AVC/H.264/MPEG-4p10``,
    ``MPEG-1/2``) or ffprobe (``mpeg2video``) reports it: the family whose name the
    normalized text starts with (the longest such name); an unknown codec (``mjpeg``)
    is its own family, so no ``video_codec`` rule names it."""
    return _family_by_prefix(codec, _VIDEO_FAMILIES)
