"""Evaluate a :class:`Policy` against a probed file into a :class:`Plan`.

Pure functions of (policy, media): no I/O, so every rule is testable on its own, and
``vpod plan`` shows exactly what ``vpod run`` would do.
"""

from __future__ import annotations

from vpod.media.model import MediaInfo, Track
from vpod.policy.plan import Action, Plan, SetFlag
from vpod.policy.policy import Policy


def first_preferred(tracks: tuple[Track, ...], preference: tuple[str, ...]) -> Track | None:
    """The first track, in preference order of languages, then file order; ``None`` if no match."""
    for language in preference:
        for track in tracks:
            if track.language == language:
                return track
    return None


def _default_audio(policy: Policy, media: MediaInfo) -> list[Action]:
    """Exactly one default audio track: the first in a preferred language.

    When no audio track has a preferred language the flags are left alone: a file in
    an unexpected language has no better choice to offer.
    """
    audio = media.tracks_of("audio")
    chosen = first_preferred(audio, policy.audio_languages)
    if chosen is None:
        return []
    return [
        SetFlag(track.index, "default", track is chosen)
        for track in audio
        if track.default != (track is chosen)
    ]


def plan(policy: Policy, media: MediaInfo) -> Plan:
    """The actions that make ``media`` conform to ``policy``; empty when it conforms."""
    actions: list[Action] = []
    actions += _default_audio(policy, media)
    return Plan(actions=tuple(actions))
