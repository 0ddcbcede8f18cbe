"""Which of several tracks of one language is the best: the default audio, the subtitle
``default_subtitle = "preferred"`` picks, and what ``max_*_per_language`` keeps.

Audio, best first: a main track (not commentary, not audio description), then more
channels, then the earlier codec in ``audio_codec_preference`` (codecs not listed come
after the listed ones), then file order.

Subtitles, best first, by role: with ``subtitle_preference = "full"`` full subtitles,
then forced, then SDH; with ``"sdh"`` SDH, then full, then forced; commentary
subtitles last; then file order.
"""

from __future__ import annotations

import re
from typing import Callable

from vpod.media.model import Track
from vpod.policy.policy import Policy
from vpod.policy.roles import Roles

_CODEC_FAMILIES = (
    # (family, names as mkvmerge -J and ffprobe report them, normalized: lower-case, letters and digits only)
    ("truehd", ("truehd", "mlp")),
    ("dtshd", ("dtshd", "dtsma", "dtshdmasteraudio", "dtshdhighresolutionaudio", "dtsx")),
    ("dts", ("dts",)),
    ("eac3", ("eac3",)),
    ("ac3", ("ac3",)),
    ("aac", ("aac",)),
    ("flac", ("flac",)),
    ("opus", ("opus",)),
    ("vorbis", ("vorbis",)),
    ("mp3", ("mp3", "mpegaudio")),
    ("pcm", ("pcm", "lpcm")),
)
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def codec_family(name: str) -> str:
    """A codec name as mkvmerge (``E-AC-3``, ``DTS-HD Master Audio``, ``TrueHD Atmos``)
    or ffprobe (``eac3``, ``dts``, ``pcm_s24le``) reports it, or as a user writes it,
    reduced to one family name (``eac3``, ``dtshd``, ``truehd``). The longest known
    name the normalized text starts with decides; an unknown name is its own family."""
    text = _NOT_ALNUM.sub("", name.casefold())
    best = ("", "")
    for family, names in _CODEC_FAMILIES:
        for known in names:
            if text.startswith(known) and len(known) > len(best[1]):
                best = (family, known)
    return best[0] or text


def audio_rank(policy: Policy, roles: Callable[[Track], Roles]) -> Callable[[tuple[int, Track]], tuple[int, ...]]:
    """Sort key for (file position, audio track): smaller is better (module docstring)."""
    preference = [codec_family(c) for c in policy.audio_codec_preference]

    def key(item: tuple[int, Track]) -> tuple[int, ...]:
        position, track = item
        family = codec_family(track.codec)
        codec = preference.index(family) if family in preference else len(preference)
        return (int(roles(track).secondary_audio), -(track.channels or 0), codec, position)

    return key


def subtitle_rank(policy: Policy, roles: Callable[[Track], Roles]) -> Callable[[tuple[int, Track]], tuple[int, ...]]:
    """Sort key for (file position, subtitle track): smaller is better (module docstring)."""
    order = ("full", "forced", "sdh") if policy.subtitle_preference == "full" else ("sdh", "full", "forced")

    def key(item: tuple[int, Track]) -> tuple[int, ...]:
        position, track = item
        kind = subtitle_kind(roles(track))
        return (order.index(kind) if kind in order else len(order), position)

    return key


def subtitle_kind(roles: Roles) -> str:
    """``commentary``, ``forced``, ``sdh`` or ``full``, in that order of precedence."""
    if roles.commentary:
        return "commentary"
    if roles.forced:
        return "forced"
    if roles.sdh:
        return "sdh"
    return "full"


def best_first(tracks: list[Track], key: Callable[[tuple[int, Track]], tuple[int, ...]]) -> list[Track]:
    """``tracks`` sorted best first by ``key`` (which sees each track's file position)."""
    return [track for _, track in sorted(enumerate(tracks), key=key)]
