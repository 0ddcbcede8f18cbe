"""The seven track flags vpod reads, writes and verifies, and what each tool calls them.

Each is a Matroska ``TrackEntry`` element (RFC 9559 §5.1.4.1), an attribute of
:class:`vpod.media.model.Track` and a :data:`vpod.policy.plan.FlagName` of the same
name. The tools name them differently; the names below are those of MKVToolNix 74
(``mkvmerge -J`` track properties, ``mkvpropedit --list-property-names``, mkvmerge(1)
"Options that apply to a track") and FFmpeg 5.1 (``ffprobe -show_streams``
dispositions, the ``-disposition`` option of ffmpeg(1)).

What FFmpeg 5.1 does with them in Matroska (libavformat ``matroskadec.c`` and
``matroskaenc.c``), which decides what ffprobe can confirm after a write:

* it reads and writes ``FlagHearingImpaired``, ``FlagVisualImpaired``,
  ``FlagCommentary`` and ``FlagOriginal`` on every track type;
* ``FlagTextDescriptions`` only on subtitle tracks (disposition ``descriptions``);
* ``FlagOriginal`` set to 0 is read as disposition ``dub``, and ``dub`` is written as
  ``FlagOriginal`` 0: unlike the other flags, an explicit 0 says something (the track
  is a translation) that an absent element does not;
* the WebM muxer writes none of the five.

In MP4 FFmpeg maps the flags to DASH role ``kind`` boxes, not one for one:
``hearing_impaired`` is written as "caption" and read back as ``hearing_impaired`` +
``captions``, ``visual_impaired`` and ``descriptions`` as "description", read back as
both; ``original`` is not stored at all.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict, cast

from vpod.media.model import Track
from vpod.policy.plan import FlagName


class TrackFlag(NamedTuple):
    """One track flag and its name in each tool.

    Attributes:
        name: the :class:`Track` attribute and :data:`FlagName`.
        label: the name shown to people (``vpod inspect``).
        mkvmerge_property: the key in ``mkvmerge -J``'s track ``properties``.
        absent: the value ``mkvmerge -J`` leaves out (FlagDefault is set when absent,
            RFC 9559 §5.1.4.1.5; the others are not).
        mkvpropedit: the ``--set`` property name.
        mkvmerge_option: the mkvmerge option taking ``TID:0|1``.
        disposition: the ffprobe/ffmpeg disposition.
        subtitles_only_in_ffmpeg: FFmpeg reads and writes it in Matroska for subtitle
            tracks only.
    """

    name: FlagName
    label: str
    mkvmerge_property: str
    absent: bool
    mkvpropedit: str
    mkvmerge_option: str
    disposition: str
    subtitles_only_in_ffmpeg: bool = False

    def of(self, track: Track) -> bool:
        """The flag's value on ``track``."""
        value: bool = getattr(track, self.name)
        return value

    def read_by_ffprobe(self, track_type: str) -> bool:
        """True when ffprobe reports this flag of a Matroska track of ``track_type``."""
        return not self.subtitles_only_in_ffmpeg or track_type == "subtitle"


TRACK_FLAGS: tuple[TrackFlag, ...] = (
    TrackFlag("default", "default", "default_track", True, "flag-default", "--default-track-flag", "default"),
    TrackFlag("forced", "forced", "forced_track", False, "flag-forced", "--forced-display-flag", "forced"),
    TrackFlag(
        "hearing_impaired", "hearing-impaired", "flag_hearing_impaired", False, "flag-hearing-impaired",
        "--hearing-impaired-flag", "hearing_impaired",
    ),
    TrackFlag(
        "visual_impaired", "visual-impaired", "flag_visual_impaired", False, "flag-visual-impaired",
        "--visual-impaired-flag", "visual_impaired",
    ),
    TrackFlag("commentary", "commentary", "flag_commentary", False, "flag-commentary", "--commentary-flag", "comment"),
    TrackFlag("original", "original", "flag_original", False, "flag-original", "--original-flag", "original"),
    TrackFlag(
        "text_descriptions", "text-descriptions", "flag_text_descriptions", False, "flag-text-descriptions",
        "--text-descriptions-flag", "descriptions", subtitles_only_in_ffmpeg=True,
    ),
)  # fmt: skip
"""Every flag, in the order ``vpod inspect`` lists them."""

FLAGS_BY_NAME: dict[str, TrackFlag] = {flag.name: flag for flag in TRACK_FLAGS}


class FlagValues(TypedDict, total=False):
    """Flag values as :class:`Track` keyword arguments (to build one, or to ``replace`` it)."""

    default: bool
    forced: bool
    hearing_impaired: bool
    visual_impaired: bool
    commentary: bool
    original: bool
    text_descriptions: bool


def mkvmerge_flags(properties: dict[str, Any]) -> FlagValues:
    """The seven flags of one ``mkvmerge -J`` track (its ``properties``)."""
    return cast(FlagValues, {flag.name: bool(properties.get(flag.mkvmerge_property, flag.absent)) for flag in TRACK_FLAGS})


def flag_value(name: FlagName, value: bool) -> FlagValues:
    """One flag's value, for ``dataclasses.replace(track, **flag_value(name, value))``."""
    return cast(FlagValues, {name: value})


def ffprobe_flags(disposition: dict[str, Any], track_type: str) -> FlagValues:
    """The seven flags of one ffprobe stream (its ``disposition``).

    ``descriptions`` counts only on subtitles: FFmpeg's MP4 demuxer reports it, with
    ``visual_impaired``, for an audio description track ("description" kind), which is
    audio for the visually impaired, not text (see the module docstring).
    """
    return cast(
        FlagValues,
        {flag.name: bool(disposition.get(flag.disposition)) and flag.read_by_ffprobe(track_type) for flag in TRACK_FLAGS},
    )
