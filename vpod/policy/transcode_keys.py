"""The transcoding keys of a policy: ``audio_compat``, ``audio_convert`` and
``video_codec`` (tables, parsed here), beside ``keep_if_larger`` and
``min_saving_percent`` (plain keys of :class:`vpod.policy.policy.Policy`).

Each table becomes a frozen dataclass whose defaults mean "nothing": ``audio_compat =
[]``, ``audio_convert = { to = "keep" }``, ``video_codec = "keep"``. Every value is
resolved when the config loads (a title, CRF or preset left out gets its codec's
default), so ``vpod config check`` prints what applies and the plan never guesses; a
bitrate left out is 0, "the codec's default for the channels actually written"
(:func:`default_bitrate_kbps`), which only the plan knows. A sub-key that would have no
effect (``crf`` under ``codec = "keep"``, ``codecs`` without ``to``, ``convert = []``)
is refused rather than dropped, as FLAC's ``bitrate_kbps`` is: a policy may live in a
folder's ``.vpod.toml``, which no ``vpod config check`` reads, so a warning would go
unseen. docs/policy.md "Transcoding" describes every key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vpod.errors import ConfigError
from vpod.tomlschema import shown_value
from vpod.policy.codecs import CODEC_NAMES, VIDEO_CODEC_NAMES, codec_family, video_codec_family

TABLE_KEYS = ("audio_compat", "audio_convert", "video_codec")
"""The policy keys whose values are tables, parsed by :func:`transcode_keys`."""

AUDIO_TARGETS = ("aac", "ac3", "eac3", "opus", "flac")
"""Audio families vpod can encode into (the executor's encoders)."""

VIDEO_TARGETS = ("hevc", "av1", "h264")
"""Video families vpod can encode into: software libx265, libsvtav1, libx264."""

ENCODERS = ("software", "vaapi", "nvenc", "qsv")

VIDEO_DEFAULTS = {"hevc": (22, "medium"), "av1": (30, "8"), "h264": (20, "medium")}
"""Per target: (CRF, preset) when ``video_codec`` leaves them out."""

CRF_RANGE = {"hevc": (0, 51), "h264": (0, 51), "av1": (0, 63)}
"""Per target: the CRF range of its software encoder (x264/x265 ``--crf`` 0–51;
SVT-AV1 ``--crf`` 0–63, its Docs/Parameters.md)."""

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
"""x264 and x265 ``--preset`` names (x265 docs, "Presets")."""

SVTAV1_PRESETS = tuple(str(n) for n in range(0, 14))
"""SVT-AV1 ``--preset`` values, 0 (slowest) to 13 (fastest) (its Docs/Parameters.md)."""

DEFAULT_VIDEO_CONVERT = ("h264", "mpeg2", "mpeg4", "vc1")
"""Source families ``video_codec`` converts when ``convert`` is left out (minus the target)."""

CODEC_LABELS = {"aac": "AAC", "ac3": "AC-3", "eac3": "E-AC-3", "opus": "Opus", "flac": "FLAC"}
LAYOUT_LABELS = {1: "Mono", 2: "Stereo", 6: "5.1", 8: "7.1"}

_COMPAT_KEYS = ("codec", "channels", "bitrate_kbps", "title", "default")
_CONVERT_KEYS = ("codecs", "to", "bitrate_kbps")
_VIDEO_KEYS = ("codec", "convert", "min_bitrate_kbps", "min_gb_per_hour", "encoder", "crf", "preset")


def default_bitrate_kbps(codec: str, channels: int) -> int:
    """The bitrate (kilobits per second) of ``codec`` at ``channels`` when the policy
    gives none: AAC 192 (stereo or less) / 384; AC-3 192 / 640; E-AC-3 224 / 640; Opus
    128 / 256; FLAC 0 (lossless: no bitrate)."""
    stereo = channels <= 2
    return {"aac": (192, 384), "ac3": (192, 640), "eac3": (224, 640), "opus": (128, 256)}.get(
        codec, (0, 0)
    )[0 if stereo else 1]


def default_title(codec: str, channels: int) -> str:
    """``AAC Stereo``, ``AC-3 5.1``, ``Opus 4 ch``: the title of an added track when
    ``audio_compat`` gives none."""
    return f"{CODEC_LABELS.get(codec, codec.upper())} {LAYOUT_LABELS.get(channels, f'{channels} ch')}"


@dataclass(frozen=True)
class AudioCompat:
    """One ``audio_compat`` entry: the default audio language must have a track in
    ``codec`` (an :data:`AUDIO_TARGETS` family) with ``channels`` (or fewer, when its
    source has fewer), at ``bitrate_kbps`` (0: the codec's default for the channels
    written, :meth:`bitrate_for`; FLAC takes none), titled ``title``, FlagDefault
    ``default`` (the default title names the layout written, :meth:`title_for`)."""

    codec: str = "aac"
    channels: int = 2
    bitrate_kbps: int = 0
    title: str = "AAC Stereo"
    default: bool = False

    def bitrate_for(self, channels: int) -> int | None:
        """The bitrate (kb/s) of the track this entry adds with ``channels`` (those
        written: the entry's, or the source's when fewer); ``None`` for FLAC. An AC-3
        5.1 entry made from a mono source gets AC-3's mono/stereo default, 192, not 640."""
        if self.codec == "flac":
            return None
        return self.bitrate_kbps or default_bitrate_kbps(self.codec, channels)

    def title_for(self, channels: int) -> str:
        """The title of the track this entry adds with ``channels`` (those written): the
        entry's, except that the default title (:func:`default_title` of the entry's
        channels) names the layout written when there are fewer (``AAC Mono``, not ``AAC
        Stereo``, from a mono source). A title the user wrote is kept; one written equal
        to the default cannot be told from it and is treated as the default."""
        if channels != self.channels and self.title == default_title(self.codec, self.channels):
            return default_title(self.codec, channels)
        return self.title


@dataclass(frozen=True)
class AudioConvert:
    """``audio_convert``: every kept audio track whose family is in ``codecs`` is
    re-encoded into ``to`` at ``bitrate_kbps`` (0: the codec's default for the track's
    channels, :func:`default_bitrate_kbps`). ``to = "keep"`` (the default) converts
    nothing. ``"dts"`` in ``codecs`` also covers DTS-HD (``dtshd``): both carry DTS;
    ``"dtshd"`` alone covers only DTS-HD."""

    codecs: tuple[str, ...] = ()
    to: str = "keep"
    bitrate_kbps: int = 0

    @property
    def active(self) -> bool:
        """Whether it converts anything."""
        return self.to != "keep" and bool(self.codecs)

    def converts(self, family: str) -> bool:
        """Whether a track of the audio ``family`` (:func:`track_codec_family`) is converted."""
        if not self.active or family == self.to:
            return False
        return family in self.codecs or (family == "dtshd" and "dts" in self.codecs)

    def bitrate_for(self, channels: int | None) -> int | None:
        """The bitrate (kb/s) of a converted track with ``channels``; ``None`` for FLAC."""
        if self.to == "flac":
            return None
        return self.bitrate_kbps or default_bitrate_kbps(self.to, channels or 2)


@dataclass(frozen=True)
class VideoCodec:
    """``video_codec``: a video track whose family is in ``convert`` (and is not
    ``codec``) is re-encoded into ``codec`` with ``encoder`` at ``crf``/``preset``,
    when the file's bitrate is at least ``min_bitrate_kbps`` (kilobits per second:
    size × 8 / duration) and its size per hour at least ``min_gb_per_hour`` (10^9
    bytes per hour), its size less its ``audio_compat`` tracks' nominal size
    (:func:`vpod.policy.transcoding.video_measure`). ``codec = "keep"`` (the default)
    re-encodes nothing."""

    codec: str = "keep"
    convert: tuple[str, ...] = ()
    min_bitrate_kbps: int = 0
    min_gb_per_hour: float = 0.0
    encoder: str = "software"
    crf: int = 0
    preset: str = ""

    @property
    def active(self) -> bool:
        """Whether it re-encodes anything."""
        return self.codec != "keep" and bool(self.convert)


def transcode_keys(table: Mapping[str, Any], source: Path | None) -> dict[str, Any]:
    """The :data:`TABLE_KEYS` present in ``table`` (a ``[policy]`` table), parsed:
    key -> ``tuple[AudioCompat, ...]``, :class:`AudioConvert` or :class:`VideoCodec`.

    Raises:
        ConfigError: naming ``[policy] KEY`` and what was wrong (an unknown sub-key or
            codec, a wrong type, a value out of range).
    """
    parsers = {"audio_compat": _audio_compat, "audio_convert": _audio_convert, "video_codec": _video_codec}
    return {key: parsers[key](table[key], source) for key in TABLE_KEYS if key in table}


def _fail(source: Path | None, key: str, reason: str) -> ConfigError:
    return ConfigError(source, f"[policy] {key}", reason)


def _table(value: Any, known: tuple[str, ...], source: Path | None, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(source, key, f"expected a table {{ {', '.join(known)} }}, got {shown_value(value)}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _fail(source, key, f"unknown key {unknown[0]!r} (known keys: {', '.join(known)})")
    return value


def _int(table: Mapping[str, Any], name: str, default: int, low: int, high: int, source: Path | None, key: str) -> int:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(source, key, f"{name}: expected an integer from {low:,} to {high:,}, got {shown_value(value)}")
    return value


def _audio_family(name: Any, source: Path | None, key: str, what: str) -> str:
    family = codec_family(name) if isinstance(name, str) else None
    if family is None:
        raise _fail(source, key, f"{what}: {shown_value(name)} is not an audio codec vpod knows; known: {', '.join(CODEC_NAMES)}")
    return family


def _audio_compat(value: Any, source: Path | None) -> tuple[AudioCompat, ...]:
    items = value if isinstance(value, list) else [value]
    entries: list[AudioCompat] = []
    for i, item in enumerate(items):
        key = f"audio_compat[{i}]" if isinstance(value, list) else "audio_compat"
        table = _table(item, _COMPAT_KEYS, source, key)
        if "codec" not in table:
            raise _fail(source, key, f'codec is required (one of {", ".join(AUDIO_TARGETS)})')
        codec = _audio_family(table["codec"], source, key, "codec")
        if codec not in AUDIO_TARGETS:
            raise _fail(source, key, f"codec: vpod encodes only {', '.join(AUDIO_TARGETS)}, not {shown_value(table['codec'])}")
        channels = _int(table, "channels", 2, 1, 8, source, key)
        bitrate = _bitrate(table, codec, source, key)
        title = table.get("title", default_title(codec, channels))
        if not isinstance(title, str):
            raise _fail(source, key, f"title: expected a string, got {shown_value(title)}")
        default = table.get("default", False)
        if not isinstance(default, bool):
            raise _fail(source, key, f"default: expected true or false, got {shown_value(default)}")
        entry = AudioCompat(codec, channels, bitrate, title, default)
        if any((e.codec, e.channels) == (codec, channels) for e in entries):
            raise _fail(source, key, f"{codec} with {channels} channels is already listed")
        entries.append(entry)
    if sum(e.default for e in entries) > 1:
        raise _fail(source, "audio_compat", "at most one entry can be the default audio (default = true)")
    return tuple(entries)


def _bitrate(table: Mapping[str, Any], codec: str, source: Path | None, key: str) -> int:
    """``bitrate_kbps`` of ``codec`` as given, 0 when absent (the codec's default then
    applies, :func:`default_bitrate_kbps`). FLAC takes none; AC-3 at most 640 kb/s (ATSC
    A/52, Table 5.18: the highest frmsizecod rate)."""
    if codec == "flac":
        if table.get("bitrate_kbps", 0) != 0:
            raise _fail(source, key, "bitrate_kbps: FLAC is lossless and takes no bitrate; leave it out")
        return 0
    high = 640 if codec == "ac3" else 6144
    value = table.get("bitrate_kbps", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not (value == 0 or 8 <= value <= high):
        raise _fail(source, key, f"bitrate_kbps: expected 0 (the codec's default) or from 8 to {high:,}, got {shown_value(value)}")
    return value


def _audio_convert(value: Any, source: Path | None) -> AudioConvert:
    key = "audio_convert"
    if value == "keep":
        return AudioConvert()
    table = _table(value, _CONVERT_KEYS, source, key)
    targets = ", ".join(AUDIO_TARGETS)
    if "to" not in table and table:
        raise _fail(
            source, key, f"to is required when {' and '.join(sorted(table))} {'is' if len(table) == 1 else 'are'} "
            f'given: the codec the listed tracks are converted into, one of {targets}; to convert nothing, '
            'write audio_convert = "keep" (or leave audio_convert out)',
        )  # fmt: skip
    to = table.get("to", "keep")
    if to == "keep":
        unused = sorted(set(table) - {"to"})
        if unused:
            raise _fail(
                source, key, f'{" and ".join(unused)}: no effect under to = "keep" (nothing is converted); '
                f"leave {'it' if len(unused) == 1 else 'them'} out, or set to (one of {targets})",
            )  # fmt: skip
        return AudioConvert()
    family = _audio_family(to, source, key, "to")
    if family not in AUDIO_TARGETS:
        raise _fail(source, key, f'to: vpod encodes only {", ".join(AUDIO_TARGETS)} (or "keep"), not {shown_value(to)}')
    raw = table.get("codecs", [])
    if not isinstance(raw, list) or not raw:
        raise _fail(source, key, f'codecs: expected a non-empty list of codecs, e.g. ["dts", "truehd"], got {shown_value(raw)}')
    codecs = tuple(dict.fromkeys(_audio_family(c, source, key, "codecs") for c in raw))
    if family in codecs:
        raise _fail(source, key, f"codecs: lists {family}, the codec it converts to")
    return AudioConvert(codecs, family, _bitrate(table, family, source, key))


def _video_codec(value: Any, source: Path | None) -> VideoCodec:
    key = "video_codec"
    table: Mapping[str, Any] = {"codec": value} if isinstance(value, str) else _table(value, _VIDEO_KEYS, source, key)
    name = table.get("codec")
    if name is None:
        raise _fail(source, key, f'codec is required (one of {", ".join(VIDEO_TARGETS)}, or "keep")')
    if name == "keep":
        unused = [k for k in _VIDEO_KEYS if k in table and k != "codec"]
        if unused:
            raise _fail(
                source, key, f'{", ".join(unused)}: no effect under codec = "keep" (nothing is re-encoded); '
                f"leave {'it' if len(unused) == 1 else 'them'} out, or name a codec ({', '.join(VIDEO_TARGETS)})",
            )  # fmt: skip
        return VideoCodec()
    codec = video_codec_family(name) if isinstance(name, str) else None
    if codec not in VIDEO_TARGETS:
        raise _fail(source, key, f'codec: expected one of {", ".join(VIDEO_TARGETS)} or "keep", got {shown_value(name)}')
    raw = table.get("convert", [c for c in DEFAULT_VIDEO_CONVERT if c != codec])
    if not isinstance(raw, list):
        raise _fail(source, key, f"convert: expected a list of video codecs, got {shown_value(raw)}")
    if not raw:
        # Refused like audio_convert's empty codecs: it would mean "re-encode nothing",
        # which codec = "keep" says, or be read as "re-encode every codec", which it is not.
        default = ", ".join(f'"{c}"' for c in DEFAULT_VIDEO_CONVERT if c != codec)
        raise _fail(
            source, key, f"convert = [] converts nothing: list the source codecs to re-encode into {codec} "
            f'(leave convert out for [{default}]), or write video_codec = "keep" to re-encode none',
        )  # fmt: skip
    convert: list[str] = []
    for item in raw:
        family = video_codec_family(item) if isinstance(item, str) else None
        if family is None:
            raise _fail(source, key, f"convert: {shown_value(item)} is not a video codec vpod knows; known: {', '.join(VIDEO_CODEC_NAMES)}")
        if family == codec:
            raise _fail(source, key, f"convert: lists {codec}, the codec it converts to")
        convert.append(family)
    encoder = table.get("encoder", "software")
    if encoder not in ENCODERS:
        raise _fail(source, key, f"encoder: expected one of {', '.join(ENCODERS)}, got {shown_value(encoder)}")
    crf = _int(table, "crf", VIDEO_DEFAULTS[codec][0], *CRF_RANGE[codec], source, key)
    preset = table.get("preset", VIDEO_DEFAULTS[codec][1])
    if isinstance(preset, int) and not isinstance(preset, bool):
        preset = str(preset)  # preset = 8 for SVT-AV1
    presets = SVTAV1_PRESETS if codec == "av1" else X26X_PRESETS
    if not isinstance(preset, str) or not preset or (encoder == "software" and preset not in presets):
        raise _fail(source, key, f"preset: expected one of {', '.join(presets)} for {codec}, got {shown_value(preset)}")
    minimum = _int(table, "min_bitrate_kbps", 0, 0, 1_000_000, source, key)
    per_hour = table.get("min_gb_per_hour", 0.0)
    if isinstance(per_hour, bool) or not isinstance(per_hour, (int, float)) or not math.isfinite(per_hour) or per_hour < 0:
        raise _fail(source, key, f"min_gb_per_hour: expected a number >= 0, got {shown_value(per_hour)}")
    return VideoCodec(codec, tuple(dict.fromkeys(convert)), minimum, float(per_hour), encoder, crf, preset)
