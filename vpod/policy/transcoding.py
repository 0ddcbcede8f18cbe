"""Planning the transcoding keys: ``audio_compat`` (:class:`AddAudio`),
``audio_convert`` (:class:`ConvertAudio`) and ``video_codec`` (:class:`TranscodeVideo`).

Pure functions of the policy and the probed tracks, called by
:func:`vpod.policy.planner.plan`, which decides the default audio language and which
tracks are kept. The rules (docs/policy.md "Transcoding"):

* A track's audio family *after the plan* is its codec's family
  (:func:`~vpod.policy.codecs.track_codec_family`), or ``audio_convert``'s ``to`` when
  that converts it; every rule below reads that one, so planning the output of a plan
  again gives the same answers.
* A main audio track (not commentary, not audio description) whose family after the
  plan is an ``audio_compat`` codec with at most its channels is *compat-like*: among
  tracks with the same channel count it ranks after the others (the default audio and
  ``max_audio_per_language`` see it so), so the track an added one was made from stays
  the best one.
* For each ``audio_compat`` entry, in the default audio language: the *source* is the
  best main track; the entry is met by the source itself when the source's family is the
  entry's codec with at most its channels, else by another main track of that language
  with the entry's codec and ``min(entry channels, source channels)`` channels (the
  *compat track*: it is never removed by ``max_audio_per_language``, keeps whatever
  FlagOriginal it has, keeps the entry's title under ``clear_track_titles``, and is the
  default audio only when the entry says ``default = true``); else an :class:`AddAudio`
  from the source is planned, titled as the entry says (its default title names the
  layout written, :meth:`AudioCompat.title_for`: ``AAC Mono`` from a mono source).
* ``video_codec``'s minimums judge the file's size less the nominal size (bitrate ×
  duration) of its compat tracks (:class:`VideoMeasure`): the track a plan adds is
  then not counted in its own output, so the plan's output does not cross a minimum
  its source was under.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from vpod.media.model import MediaInfo, Track
from vpod.policy.codecs import track_codec_family, track_video_family
from vpod.policy.plan import AddAudio, ConvertAudio, TranscodeVideo
from vpod.policy.policy import Policy
from vpod.policy.transcode_keys import AudioCompat

GB = 1_000_000_000
"""Bytes in a gigabyte of ``min_gb_per_hour`` (10^9, as disk makers count)."""


def audio_family_after(track: Track, policy: Policy) -> str:
    """The audio family ``track`` has after the plan: ``audio_convert``'s target when it
    converts the track's family, else that family."""
    family = track_codec_family(track.codec)
    return policy.audio_convert.to if policy.audio_convert.converts(family) else family


def compat_like(policy: Policy, family: str, channels: int | None) -> bool:
    """Whether a main audio track of ``family`` (after the plan) with ``channels`` is of
    the kind an ``audio_compat`` entry asks for: its codec, at most its channels."""
    return any(family == e.codec and (channels or 0) <= e.channels for e in policy.audio_compat)


def target_channels(entry: AudioCompat, source: Track) -> int:
    """The channels of the track ``entry`` adds from ``source``: the entry's, or the
    source's when it has fewer (never an upmix)."""
    return min(entry.channels, source.channels or entry.channels)


class CompatMatch(NamedTuple):
    """How the ``audio_compat`` entries are met in the default audio language.

    ``source``: the best main track there (``None``: no main track, nothing is added);
    ``met``: entry position -> the track that meets it (the source, or a compat track);
    ``missing``: the positions of entries no track meets, in order.
    """

    source: Track | None
    met: dict[int, Track]
    missing: tuple[int, ...]

    @property
    def compat_tracks(self) -> frozenset[int]:
        """Stream indexes of the tracks that meet an entry and are not the source."""
        return frozenset(t.index for t in self.met.values() if t is not self.source)


def match_compat(policy: Policy, main: list[Track], family: Callable[[Track], str]) -> CompatMatch:
    """Meet ``policy.audio_compat`` with ``main``: the kept main audio tracks of the
    default audio language, best first (the first is the source). ``family``: a track's
    audio family after the plan (:func:`audio_family_after`)."""
    if not policy.audio_compat or not main:
        return CompatMatch(None, {}, ())
    source = main[0]
    met: dict[int, Track] = {}
    missing: list[int] = []
    for position, entry in enumerate(policy.audio_compat):
        if family(source) == entry.codec and (source.channels or 0) <= entry.channels:
            met[position] = source
            continue
        wanted = target_channels(entry, source)
        taken = {t.index for t in met.values()}
        found = next(
            (t for t in main[1:] if t.index not in taken and family(t) == entry.codec and t.channels == wanted), None
        )
        if found is None:
            missing.append(position)
        else:
            met[position] = found
    return CompatMatch(source, met, tuple(missing))


def compat_bitrate_kbps(entry: AudioCompat, channels: int) -> int:
    """The bitrate (kb/s) vpod writes a track for ``entry`` with ``channels`` (those
    written) at: :meth:`AudioCompat.bitrate_for` (the entry's ``bitrate_kbps``, or the
    codec's default for those channels, :func:`vpod.policy.transcode_keys.default_bitrate_kbps`);
    0 for FLAC (lossless: no bitrate). The :class:`AddAudio` of an entry carries it, and
    :func:`video_measure` subtracts it for each compat track."""
    return entry.bitrate_for(channels) or 0


def add_audio_actions(policy: Policy, match: CompatMatch, language: str) -> list[AddAudio]:
    """One :class:`AddAudio` per entry ``match`` finds missing, from its source, in the
    order of ``audio_compat`` (the executor writes them right after the source in that
    order)."""
    source = match.source
    if source is None:
        return []
    actions = []
    for position in match.missing:
        entry = policy.audio_compat[position]
        channels = target_channels(entry, source)
        fewer = f" (from a {channels}-channel source: {channels} ch written)" if channels < entry.channels else ""
        why = (
            f"audio_compat[{position}]: no {entry.codec} {entry.channels} ch {language} track{fewer}; "
            f"made from track {source.index}, the best main {language} track"
        )
        actions.append(
            AddAudio(
                source.index, entry.codec, channels, compat_bitrate_kbps(entry, channels) or None,
                entry.title_for(channels), entry.default, why=why,
            )
        )
    return actions


def convert_actions(policy: Policy, kept: list[Track]) -> list[ConvertAudio]:
    """A :class:`ConvertAudio` for each kept audio track ``audio_convert`` converts;
    each keeps its channels, place, language, title and flags."""
    rule = policy.audio_convert
    actions = []
    for track in kept:
        if track.type != "audio":
            continue
        family = track_codec_family(track.codec)
        if rule.converts(family):
            why = f"audio_convert: {family} is in codecs [{', '.join(rule.codecs)}]"
            actions.append(ConvertAudio(track.index, rule.to, rule.bitrate_for(track.channels), None, why=why))
    return actions


class VideoMeasure(NamedTuple):
    """What ``video_codec``'s minimums judge in a file (:func:`video_measure`).

    ``kbps``: kilobits per second; ``gb_per_hour``: GB (10^9 bytes) per hour of
    duration; both of the file's size less ``less_kbps`` × duration, the nominal size of
    its compat tracks (``less_kbps``: their bitrates summed, kb/s; 0 when it has none).
    """

    kbps: float
    gb_per_hour: float
    less_kbps: int

    def describe(self) -> str:
        """``12,345 kb/s, 1.62 GB/h (the file less 192 kb/s of audio_compat tracks)``."""
        less = f" less {self.less_kbps:,} kb/s of audio_compat tracks" if self.less_kbps else ""
        return f"{self.kbps:,.0f} kb/s, {self.gb_per_hour:.2f} GB/h (the file{less})"


def video_measure(policy: Policy, media: MediaInfo, match: CompatMatch) -> VideoMeasure | None:
    """The measure ``video_codec``'s ``min_bitrate_kbps`` and ``min_gb_per_hour`` judge in
    ``media``: its ``size_bytes`` less, for each compat track of ``match`` (a track that
    meets an ``audio_compat`` entry and is not its source: the kind of track a plan
    adds), the entry's bitrate × the duration (:func:`compat_bitrate_kbps`; a FLAC entry
    has none: nothing is subtracted for it). ``None`` when the duration is unknown.

    The same rule read on a source and on the file its plan writes gives about the same
    measure: the source has no compat track where the plan adds one, and the output's
    added track is subtracted at the bitrate it was written at (a real encoder's bytes
    stray from it by a little: :func:`vpod.media.verify.verify_written` judges the
    output with its source's measure, so that never fails a file).
    """
    duration = media.duration_seconds
    if not duration or duration <= 0:
        return None
    less_kbps = sum(
        compat_bitrate_kbps(policy.audio_compat[position], track.channels or policy.audio_compat[position].channels)
        for position, track in match.met.items()
        if track is not match.source
    )
    size = max(0.0, media.size_bytes - less_kbps * 1000 / 8 * duration)
    return VideoMeasure(size * 8 / duration / 1000, size / GB / (duration / 3600), less_kbps)


def video_actions(
    policy: Policy, kept: list[Track], measure: VideoMeasure | None, warnings: list[str]
) -> list[TranscodeVideo]:
    """A :class:`TranscodeVideo` for each kept video track (cover art is an attachment,
    never a video track: :mod:`vpod.media.probe`) whose family ``video_codec`` converts,
    when ``measure`` (:func:`video_measure`: the file's size less its compat tracks'
    nominal size, in kb/s and GB of 10^9 bytes per hour) reaches the rule's minimums. A
    minimum that cannot be checked (``measure`` is ``None``: no duration) plans nothing
    and adds a warning to ``warnings``."""
    rule = policy.video_codec
    if not rule.active:
        return []
    video = [t for t in kept if t.type == "video" and track_video_family(t.codec) in rule.convert]
    if not video:
        return []
    shown = ""
    if rule.min_bitrate_kbps or rule.min_gb_per_hour:
        if measure is None:
            warnings.append("video_codec: the file's duration is unknown, so its bitrate cannot be checked; not re-encoded")
            return []
        if measure.kbps < rule.min_bitrate_kbps or measure.gb_per_hour < rule.min_gb_per_hour:
            return []
        shown = f"; {measure.describe()}"
    actions = []
    for track in video:
        family = track_video_family(track.codec)
        why = f"video_codec: {family} is in convert [{', '.join(rule.convert)}]{shown}"
        actions.append(TranscodeVideo(track.index, rule.codec, rule.encoder, rule.crf, rule.preset, why=why))
    return actions
