"""Verify a written file before it replaces anything, or after an in-place edit.

A file passes when, read back, it has the expected tracks (count, types, order,
languages — both Matroska language elements naming the expected one —, the seven flags
of :data:`vpod.media.flags.TRACK_FLAGS`, the titles the plan set), the source's
attachments and chapters, a duration within :data:`DURATION_TOLERANCE_SECONDS` of the
source's, and an empty plan: nothing left to do (idempotence).

Who reads it back: vpod's own Matroska header reader (:mod:`vpod.media.matroska`), in
the process, which reads the very elements both ``mkvmerge -J`` and ``ffprobe`` read
(``Language`` and ``LanguageBCP47`` separately, so what FFmpeg-based players see, the
legacy element, is checked too) and gives what ``mkvmerge -J`` would (proven by
``tests/integration/test_matroska_reader.py``). Only where it refuses (it cannot say
for certain what ``mkvmerge -J`` would: see the module) is the file read by
``mkvmerge -J``, and then, after a remux, also by ``ffprobe``, as before the reader
existed (``cross_check``).
"""

from __future__ import annotations

from pathlib import Path

from vpod.errors import MediaError
from vpod.media.decode_check import decode_check
from vpod.media.ebml import EbmlError
from vpod.media.flags import TRACK_FLAGS
from vpod.media.layout import OutputTrack, changed_fields, expected_tracks, planned_layout
from vpod.media.matroska import MatroskaHeaders, read_headers, to_media_info
from vpod.media.model import MediaInfo, Track
from vpod.media.probe import probe, probe_with_ffprobe
from vpod.media.tools import ToolRunner
from vpod.outcomes import Reason
from vpod.policy.languages import legacy_language
from vpod.policy.original import OriginalLanguage
from vpod.policy.codecs import track_codec_family, track_video_family
from vpod.policy.plan import Plan, TranscodeVideo
from vpod.policy.planner import plan as make_plan
from vpod.policy.policy import Policy

DURATION_TOLERANCE_SECONDS = 1.0
"""How far the written file's duration may be from the source's (remuxers round the last frame)."""


def _carried(tracks: tuple[Track, ...] | list[Track]) -> list[Track]:
    return [t for t in tracks if t.type != "attachment"]


def _compare_tracks(reader: str, got: list[Track], expected: list[Track], titles_of: set[int]) -> list[str]:
    if [t.type for t in got] != [t.type for t in expected]:
        return [
            f"{reader} sees tracks {', '.join(t.type for t in got) or 'none'}; expected "
            f"{', '.join(t.type for t in expected)}"
        ]
    problems = []
    for position, (g, e) in enumerate(zip(got, expected)):
        # ffprobe reads only the legacy Language element: for a BCP 47 tag without an ISO
        # 639-2 code of its own (yue) that is the code mkvmerge writes there (chi).
        language = legacy_language(e.language_tag or e.language) if reader == "ffprobe" else e.language
        if g.language != language:
            problems.append(f"{reader}: track {position} ({e.type}) language is {g.language!r}, expected {language!r}")
        elif e.languages_agree and not g.languages_agree:
            problems.append(
                f"{reader}: track {position} ({e.type}) Language element names another language than "
                f"LanguageBCP47 ({e.language!r}): FFmpeg-based players would see another"
            )
        for flag in TRACK_FLAGS:
            if reader == "ffprobe" and not flag.read_by_ffprobe(e.type):
                continue
            if flag.of(g) != flag.of(e):
                problems.append(
                    f"{reader}: track {position} ({e.type}) {flag.name} flag is {'on' if flag.of(g) else 'off'}, "
                    f"expected {'on' if flag.of(e) else 'off'}"
                )
        if e.index in titles_of and g.title != e.title:
            problems.append(f"{reader}: track {position} ({e.type}) title is {g.title!r}, expected {e.title!r}")
    return problems


def codec_family_of(track: Track) -> str:
    """The codec family of a track as mkvmerge or ffprobe names its codec: for video
    :func:`vpod.policy.codecs.track_video_family` (``HEVC/H.265/MPEG-H`` and ``hevc`` are
    ``hevc``; ``MPEG-1/2`` and ``mpeg2video`` are ``mpeg2``), for audio
    :func:`vpod.policy.codecs.track_codec_family`, else the lower-cased name."""
    if track.type == "video":
        return track_video_family(track.codec)
    return track_codec_family(track.codec) if track.type == "audio" else track.codec.lower()


def _compare_codecs(reader: str, got: list[Track], planned: tuple[OutputTrack, ...], same_reader: bool) -> list[str]:
    """Each track of a transcode's output has the planned codec and, where planned, the
    channel count; a copied track has the source's codec when the same tool read both
    (``same_reader``: mkvmerge and ffprobe name codecs differently, and an MP4's
    ``mov_text`` becomes SRT)."""
    problems = []
    for position, (g, p) in enumerate(zip(got, planned)):
        if p.codec is None and not same_reader:
            continue
        want = p.codec or codec_family_of(p.track)
        if codec_family_of(g) != want:
            problems.append(f"{reader}: track {position} ({p.track.type}) codec is {g.codec!r}, expected {want}")
        if p.channels and g.channels and g.channels != p.channels:
            problems.append(f"{reader}: track {position} ({p.track.type}) has {g.channels} channels, expected {p.channels}")
    return problems


def without_video_transcodes(plan: Plan) -> Plan:
    """``plan`` less its :class:`TranscodeVideo` actions: what ``keep_if_larger`` still
    applies when the video encode was not smaller (the size rule is about the video; an
    added or converted audio track, flags, order and removals are kept)."""
    return plan._replace(actions=tuple(a for a in plan.actions if not isinstance(a, TranscodeVideo)))


def _chapter_entries(media: MediaInfo) -> int | None:
    headers = media.extra.get("matroska")
    if isinstance(headers, MatroskaHeaders):
        return headers.chapter_entries
    data = media.extra.get("mkvmerge")
    if media.probed_with != "mkvmerge" or data is None:
        return None
    entries: int = sum(c.get("num_entries", 0) for c in data.get("chapters") or [])
    return entries


def read_back(path: Path, before: MediaInfo, expected: tuple[Track, ...] | list[Track]) -> MediaInfo | None:
    """``path`` as ``mkvmerge -J`` would report it, read in-process by
    :mod:`vpod.media.matroska`; ``None`` where that reader cannot say for certain.

    ``expected`` (the tracks ``path`` should have, in order, with their source index)
    names the codecs: a track keeps the mkvmerge name of the source track it comes
    from when its ``CodecID`` is the source's. Never raises: a file it cannot read
    (``OSError`` included) is left to ``mkvmerge -J``, which reports why.
    """
    data = before.extra.get("mkvmerge") if before.probed_with == "mkvmerge" else None
    by_id = {t.get("id"): t for t in (data or {}).get("tracks", [])}
    sources: list[tuple[str, str] | None] = []
    for track in expected:
        raw = by_id.get(track.index)
        codec_id = (raw or {}).get("properties", {}).get("codec_id")
        sources.append((codec_id, raw.get("codec", "")) if raw is not None and codec_id else None)
    try:
        return to_media_info(read_headers(path), sources)
    except (EbmlError, OSError):
        return None


def verify_written(
    path: Path,
    before: MediaInfo,
    plan: Plan,
    policy: Policy,
    runner: ToolRunner,
    *,
    cross_check: bool = True,
    original: OriginalLanguage | None = None,
    header_only: bool = False,
    transcodes_declined: bool = False,
) -> MediaInfo:
    """Check that ``path`` holds ``before`` with ``plan`` applied; returns its probe.

    Args:
        path: the written file (a temp file not yet in place, or the in-place edit).
        before: the probe of the source.
        plan: what was applied.
        policy: the policy; the written file must need no further action.
        original: the original language the plan was made with; the check plans again
            with the same one (:func:`vpod.policy.planner.plan`).
        cross_check: also read it with ffprobe when it had to be read by ``mkvmerge -J``
            (see :func:`read_back`). Off for in-place header edits: the
            file is the source itself, ``mkvmerge -J`` reports every element
            ``mkvpropedit`` changed (both language elements included), and ffprobe
            cannot read some Matroska files mkvmerge edits correctly, which would turn
            a good edit into a failure after the fact.
        header_only: ``plan`` is the header part of a plan (a hard-linked file under
            ``hardlinks = "headers"``): what only a remux can do may be left.
        transcodes_declined: ``plan`` is a plan less its video transcodes (their result
            was not smaller: ``keep_if_larger``): those may be left, nothing else.

    The empty plan is judged with ``video_codec``'s minimums read on ``before``
    (:func:`vpod.policy.planner.plan` ``minimums_of``): the written file's size is not
    its source's (an added track, a converted one), and a source the plan did not
    re-encode, being under a minimum, is not failed because its output is over it.

    A plan that encodes (:attr:`Plan.transcodes`) is checked against
    :func:`vpod.media.layout.planned_layout`: every track's codec family as planned
    (the source's where copied), the added tracks with their titles, the channel
    counts planned, and a decode check of each encoded track at its start, middle
    and end (:mod:`vpod.media.decode_check`).

    Raises:
        MediaError: reason ``verify_failed``, naming every difference found.
        ToolTimeout / ToolMissing: a probing tool hung or is missing.
    """
    planned = planned_layout(before, plan) if plan.transcodes else ()
    if planned:
        expected = [p.track for p in planned]
        after = probe(path, runner)  # new CodecIDs: the in-process reader names codecs by the source's
        titles_of = {t.index for t in expected}  # every title: the added tracks' and the copied ones'
    else:
        expected = _carried(expected_tracks(before, plan))
        after = read_back(path, before, expected) or probe(path, runner)
        titles_of = {i for i, fields in changed_fields(before, plan).items() if "title" in fields}
    problems = _compare_tracks(after.probed_with, _carried(after.tracks), expected, titles_of)
    if planned and not problems:
        problems += _compare_codecs(
            after.probed_with, _carried(after.tracks), planned, same_reader=after.probed_with == before.probed_with
        )
    if after.attachments != before.attachments:
        problems.append(f"{after.attachments} attachments, expected {before.attachments}")
    chapters_before, chapters_after = _chapter_entries(before), _chapter_entries(after)
    if chapters_before is not None and chapters_after is not None and chapters_before != chapters_after:
        problems.append(f"{chapters_after} chapter entries, expected {chapters_before}")
    if before.duration_seconds is not None:
        if after.duration_seconds is None:
            problems.append(f"no duration; the source lasts {before.duration_seconds:.3f} s")
        elif abs(after.duration_seconds - before.duration_seconds) > DURATION_TOLERANCE_SECONDS:
            problems.append(
                f"duration {after.duration_seconds:.3f} s, the source lasts {before.duration_seconds:.3f} s"
            )
    if cross_check and after.probed_with == "mkvmerge":
        ffprobe_view = probe_with_ffprobe(path, runner)
        problems += _compare_tracks("ffprobe", _carried(ffprobe_view.tracks), expected, set())
    if planned and not problems:
        encoded = [(n, p.track.type) for n, p in enumerate(planned) if p.encode is not None]
        problems += decode_check(path, encoded, after.duration_seconds, runner)
    if not problems:
        # video_codec's minimums judge the output by its source's measure: a borderline
        # source's own added audio must not turn the plan's output into a file to encode.
        leftover = make_plan(policy, after, original, header_only=header_only, minimums_of=before)
        if transcodes_declined:
            leftover = without_video_transcodes(leftover)
        if not leftover.is_empty:
            problems.append("still to do: " + "; ".join(leftover.describe()))
    if problems:
        raise MediaError(f"{path}: verification failed: {'; '.join(problems)}", reason=Reason.VERIFY_FAILED)
    return after
