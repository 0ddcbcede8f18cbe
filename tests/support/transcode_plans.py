"""Transcode plans for pipeline tests while the policy keys are not parsed yet.

The planner of ``video_codec`` / ``audio_compat`` is built on another branch (issue 18,
"policy"). Until it lands, :func:`plan_transcodes` makes the pipeline's planner (the real
one: flags, order, removals) also plan what those keys would: a
:class:`~vpod.policy.plan.TranscodeVideo` of each video track not yet in the target
codec, and an :class:`~vpod.policy.plan.AddAudio` from the default audio track when no
track of the compat codec and channel count exists. It recognises its own output, as the
real planner must: a second pass plans nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

import vpod.media.verify
import vpod.pipeline
from vpod.media.model import MediaInfo
from vpod.media.verify import codec_family_of
from vpod.policy.codecs import track_codec_family
from vpod.policy.plan import Action, AddAudio, ConvertAudio, Plan, TranscodeVideo
from vpod.policy.planner import plan as real_plan


class Wanted(NamedTuple):
    """What the stand-in policy asks: a video codec (``None``: none) and a compat track."""

    video: str | None = "hevc"
    crf: int = 30
    preset: str = "ultrafast"
    encoder: str = "software"
    compat: tuple[str, int, int, str] | None = ("aac", 2, 128, "AAC Stereo")  # codec, channels, kb/s, title
    convert: tuple[tuple[str, ...], str, int] | None = None  # audio families, into codec, kb/s


def transcodes(media: MediaInfo, wanted: Wanted) -> list[Action]:
    """The transcode actions ``wanted`` needs on ``media``."""
    out: list[Action] = []
    if wanted.video:
        out += [
            TranscodeVideo(t.index, wanted.video, wanted.encoder, wanted.crf, wanted.preset, why="video_codec")
            for t in media.tracks_of("video")
            if codec_family_of(t) != wanted.video
        ]
    if wanted.convert:
        families, into, kbps = wanted.convert
        out += [
            ConvertAudio(t.index, into, kbps, why="audio_convert")
            for t in media.tracks_of("audio")
            if track_codec_family(t.codec) in families
        ]
    if wanted.compat:
        codec, channels, rate, title = wanted.compat
        audio = media.tracks_of("audio")
        if audio and not any(track_codec_family(t.codec) == codec and t.channels == channels for t in audio):
            source = next((t for t in audio if t.default), audio[0])
            out.append(AddAudio(source.index, codec, channels, rate, title, why="audio_compat"))
    return out


def plan_transcodes(monkeypatch: pytest.MonkeyPatch, wanted: Wanted) -> None:
    """Make the pipeline and its verification plan ``wanted``'s transcodes too."""

    def planner(policy: Any, media: MediaInfo, original: Any = None, *, header_only: bool = False) -> Plan:
        base = real_plan(policy, media, original, header_only=header_only)
        if header_only:
            return base
        return base._replace(actions=base.actions + tuple(transcodes(media, wanted)))

    monkeypatch.setattr(vpod.pipeline, "make_plan", planner)
    monkeypatch.setattr(vpod.media.verify, "make_plan", planner)
