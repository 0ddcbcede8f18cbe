"""Which of several tracks of one language is the best: the default audio, the subtitle
``default_subtitle = "preferred"`` picks, and what ``max_*_per_language`` keeps.

Audio, best first: a main track (not commentary, not audio description), then more
channels, then (with ``audio_compat``) a track that is not of a kind an ``audio_compat``
entry asks for (:func:`vpod.policy.transcoding.compat_like`), then the earlier codec in ``audio_codec_preference`` (codecs not listed come
after the listed ones), then file order.

Subtitles, best first, by role: with ``subtitle_preference = "full"`` full subtitles,
then forced, then SDH; with ``"sdh"`` SDH, then full, then forced; commentary
subtitles last; then file order.
"""

from __future__ import annotations

from typing import Callable

from vpod.media.model import Track
from vpod.policy.codecs import codec_family, track_codec_family
from vpod.policy.policy import Policy
from vpod.policy.roles import Roles
from vpod.policy.transcoding import compat_like


def _codec_family(track: Track) -> str:
    return track_codec_family(track.codec)


def audio_rank(
    policy: Policy, roles: Callable[[Track], Roles], family: Callable[[Track], str] = _codec_family
) -> Callable[[tuple[int, Track]], tuple[int, ...]]:
    """Sort key for (file position, audio track): smaller is better (module docstring).
    ``family``: a track's audio family as the plan leaves it (after ``audio_convert``,
    :func:`vpod.policy.transcoding.audio_family_after`); by default its codec's."""
    preference = [codec_family(c) for c in policy.audio_codec_preference]  # known: checked at load

    def key(item: tuple[int, Track]) -> tuple[int, ...]:
        position, track = item
        kind = family(track)
        codec = preference.index(kind) if kind in preference else len(preference)
        secondary = roles(track).secondary_audio
        compat = bool(policy.audio_compat) and not secondary and compat_like(policy, kind, track.channels)
        return (int(secondary), -(track.channels or 0), int(compat), codec, position)

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
