"""Evaluate a :class:`Policy` against a probed file into a :class:`Plan`.

Pure functions of (policy, media, original language): no I/O, so every rule is
testable on its own, and ``vpod plan`` shows exactly what ``vpod run`` would do. The
rules, in the order they are evaluated (each key is documented in ``docs/policy.md``):

0. ``"original"`` in the language lists becomes the original language, or matches
   nothing when no source knew it;
1. languages: ``untagged_language`` tags ``und`` tracks; a Matroska track whose two
   language elements disagree is set again so every reader agrees;
2. removal: ``keep_audio_languages``, ``keep_subtitle_languages``, the roles
   (``remove_commentary``, ``remove_audio_description``, ``remove_sdh``,
   ``remove_forced_subtitles``), then ``max_audio_per_language`` and
   ``max_subtitles_per_language`` (never every audio track);
3. default flags: ``audio_languages`` (the best main track of the first language
   present, :mod:`vpod.policy.ranking`), then ``default_subtitle`` and
   ``subtitle_languages``;
4. role flags: ``set_flags_from_titles``, ``mark_original``;
5. titles: ``clear_track_titles``;
6. order: ``track_order``, preferred languages first within a type;
7. transcoding: ``video_codec``, ``audio_convert``, ``audio_compat``
   (:mod:`vpod.policy.transcoding`, which also shapes steps 2 to 5: a track an
   ``audio_compat`` entry recognises as its own is kept, not made default unless asked,
   and keeps its FlagOriginal and title);
8. container: ``container = "mkv"``.

Later rules see the result of earlier ones (a track tagged by ``untagged_language`` is
kept or removed by its new language), so applying the plan and planning again yields
an empty plan. Each action carries ``why``: the key, and the rule, that asked for it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable, NamedTuple

from vpod.media.model import MediaInfo, Track
from vpod.policy.languages import UNDETERMINED
from vpod.policy.original import ORIGINAL, OriginalLanguage
from vpod.policy.plan import Action, AddAudio, ChangeContainer, Plan, RemoveTrack, Reorder, SetFlag, SetLanguage, SetTitle
from vpod.policy.policy import Policy
from vpod.policy.ranking import audio_rank, best_first, subtitle_kind, subtitle_rank
from vpod.policy.roles import Roles, track_roles
from vpod.policy.transcoding import (
    CompatMatch,
    VideoMeasure,
    add_audio_actions,
    audio_family_after,
    convert_actions,
    match_compat,
    video_actions,
    video_measure,
)

TAGGED_TYPES = ("video", "audio", "subtitle")
"""Track types that carry a language, a title and a default flag."""

MATROSKA_SUFFIXES = (".mkv",)
"""File name suffixes a file written for ``container = "mkv"`` ends with (compared lower-case)."""


class LanguageList(NamedTuple):
    """A policy language list with ``"original"`` expanded.

    ``codes``: ISO 639-2/B codes in preference order, without duplicates. ``key``: the
    policy key. ``unknown_original``: the list names ``"original"`` and no source knew it.
    """

    key: str
    codes: tuple[str, ...]
    labels: dict[str, str]
    unknown_original: bool

    @classmethod
    def expand(cls, key: str, values: tuple[str, ...], original: OriginalLanguage | None) -> LanguageList:
        """Expand ``values`` (the policy's list under ``key``) with ``original``."""
        codes: dict[str, str] = {}
        for position, value in enumerate(values):
            if value == ORIGINAL:
                if original is not None:
                    codes.setdefault(original.code, f"{key}[{position}]=original→{original.describe()}")
            else:
                codes.setdefault(value, f"{key}[{position}]={value}")
        return cls(key, tuple(codes), codes, ORIGINAL in values and original is None)

    def rank(self, language: str) -> int:
        """Position of ``language`` in the list; the list's length when absent."""
        return self.codes.index(language) if language in self.codes else len(self.codes)

    def shown(self) -> str:
        """The list for people: ``[original→kor (from radarr), eng]``."""
        return "[" + ", ".join(self.labels[c].split("=", 1)[1] for c in self.codes) + "]"


class _Judgement:
    """The state of one planning run: the policy's lists expanded, each track's roles
    and language after the plan. Internal to :func:`plan`."""

    def __init__(self, policy: Policy, media: MediaInfo, original: OriginalLanguage | None) -> None:
        self.policy = policy
        self.media = media
        self.original = original
        self.audio_languages = LanguageList.expand("audio_languages", policy.audio_languages, original)
        self.subtitle_languages = LanguageList.expand("subtitle_languages", policy.subtitle_languages, original)
        self.keep_audio = LanguageList.expand("keep_audio_languages", policy.keep_audio_languages, original)
        self.keep_subtitle = LanguageList.expand("keep_subtitle_languages", policy.keep_subtitle_languages, original)
        self._roles = {t.index: track_roles(t, policy) for t in media.tracks}
        self.families = {t.index: audio_family_after(t, policy) for t in media.tracks if t.type == "audio"}
        self.languages: dict[int, str] = {}
        self.warnings: list[str] = []

    def roles(self, track: Track) -> Roles:
        return self._roles[track.index]

    @cached_property
    def audio_key(self) -> Callable[[tuple[int, Track]], tuple[int, ...]]:
        return audio_rank(self.policy, self.roles, lambda track: self.families[track.index])

    def compat(self, audio: list[Track], language: str | None) -> CompatMatch:
        """How ``audio_compat`` is met among ``audio`` (kept tracks) in ``language``,
        the default audio language (:func:`vpod.policy.transcoding.match_compat`)."""
        main = [t for t in audio if self.languages[t.index] == language and not self.roles(t).secondary_audio]
        return match_compat(self.policy, best_first(main, self.audio_key), lambda t: self.families[t.index])

    @cached_property
    def subtitle_key(self) -> Callable[[tuple[int, Track]], tuple[int, ...]]:
        return subtitle_rank(self.policy, self.roles)


def _languages(j: _Judgement) -> list[SetLanguage]:
    """Fill ``j.languages`` (each track's language after the plan); the SetLanguage actions."""
    actions: list[SetLanguage] = []
    for track in j.media.tracks:
        language = track.language
        if track.type in TAGGED_TYPES and language == UNDETERMINED and j.policy.untagged_language:
            language = j.policy.untagged_language
        j.languages[track.index] = language
        if track.type not in TAGGED_TYPES:
            continue
        if language != track.language:
            actions.append(SetLanguage(track.index, language, None, why=f"untagged_language={language}"))
        elif not track.languages_agree:
            # Making the two elements agree keeps LanguageIETF's full tag (pt-BR stays pt-BR).
            actions.append(
                SetLanguage(track.index, language, track.language_tag, why="Language and LanguageIETF disagree")
            )
    return actions


def _removal(j: _Judgement, track: Track) -> tuple[str, str] | None:
    """(policy key, why) when a rule other than the per-language limits removes ``track``."""
    language = j.languages[track.index]
    roles = j.roles(track)
    for kind, keep in (("audio", j.keep_audio), ("subtitle", j.keep_subtitle)):
        if track.type == kind and keep.codes and not keep.unknown_original and language not in keep.codes:
            return keep.key, f"language {language} not in {keep.key} {keep.shown()}"
    if track.type not in ("audio", "subtitle"):
        return None
    p = j.policy
    sdh_flag = "hearing_impaired" if roles.hearing_impaired else "text_descriptions"  # both are SDH
    for wanted, flag, key in (
        (p.remove_commentary, "commentary", "remove_commentary"),
        (p.remove_audio_description and track.type == "audio", "visual_impaired", "remove_audio_description"),
        (p.remove_sdh and track.type == "subtitle", sdh_flag, "remove_sdh"),
        (p.remove_forced_subtitles and track.type == "subtitle", "forced", "remove_forced_subtitles"),
    ):
        if wanted and getattr(roles, flag):
            return key, f"{key}: {roles.why(flag)}"
    return None


def _removals(j: _Judgement) -> dict[int, tuple[str, str]]:
    """Tracks to remove: stream index → (policy key, why). Adds warnings to ``j``."""
    for keep in (j.keep_audio, j.keep_subtitle):
        if keep.unknown_original:
            j.warnings.append(f'{keep.key} names "original", which no source knew: no track is removed by it')
    removed: dict[int, tuple[str, str]] = {}
    for track in j.media.tracks:
        reason = _removal(j, track)
        if reason is not None:
            removed[track.index] = reason
    # The tracks audio_compat counts as its own are kept whatever max_audio_per_language says.
    exempt = _compat_tracks(j, [t for t in j.media.tracks_of("audio") if t.index not in removed])
    for kind, limit, key, rank in (
        ("audio", j.policy.max_audio_per_language, "max_audio_per_language", j.audio_key),
        ("subtitle", j.policy.max_subtitles_per_language, "max_subtitles_per_language", j.subtitle_key),
    ):
        if not limit:
            continue
        by_language: dict[str, list[Track]] = {}
        for track in j.media.tracks_of(kind):
            if track.index not in removed and track.index not in exempt:
                by_language.setdefault(j.languages[track.index], []).append(track)
        for language, tracks in by_language.items():
            for track in best_first(tracks, rank)[limit:]:
                removed[track.index] = (key, f"{key}={limit}: {len(tracks)} {language} {kind} tracks, this one ranks lower")
    audio = j.media.tracks_of("audio")
    if audio and all(t.index in removed for t in audio):
        keys = sorted({removed[t.index][0] for t in audio})
        for track in audio:
            del removed[track.index]
        j.warnings.append(f"{', '.join(keys)} would remove every audio track; all {len(audio)} audio tracks are kept")
    return removed


def _compat_tracks(j: _Judgement, audio: list[Track]) -> frozenset[int]:
    """The compat tracks (:class:`CompatMatch`) among ``audio``, in the language the
    default audio would have with these tracks kept."""
    if not j.policy.audio_compat:
        return frozenset()
    _, current, _ = _default_audio(j, audio)
    return j.compat(audio, j.languages[current.index] if current is not None else None).compat_tracks


def _order(j: _Judgement, kept: list[Track]) -> list[Track]:
    """Kept tracks in the policy's order: by type, then preferred languages, then file order."""
    if not j.policy.track_order:
        return kept
    type_rank = {kind: i for i, kind in enumerate(j.policy.track_order)}
    preferences = {"audio": j.audio_languages, "subtitle": j.subtitle_languages}

    def key(item: tuple[int, Track]) -> tuple[int, int, int]:
        position, track = item
        preference = preferences.get(track.type)
        rank = preference.rank(j.languages[track.index]) if preference else 0
        return (type_rank.get(track.type, len(type_rank)), rank, position)

    return [track for _, track in sorted(enumerate(kept), key=key)]


def _default_audio(j: _Judgement, audio: list[Track]) -> tuple[Track | None, Track | None, str]:
    """(the track to make the only default audio track or ``None``, the default audio
    afterwards, why).

    The best main track (:mod:`vpod.policy.ranking`) of the first language in
    ``audio_languages`` that has one. When none has, the flags are left alone (a file
    in an unexpected language has no better choice to offer), unless the track players
    would pick (the first flagged default, else the first) is commentary or audio
    description: then the best main track of any language is chosen.
    """
    for language in j.audio_languages.codes:
        main = [t for t in audio if j.languages[t.index] == language and not j.roles(t).secondary_audio]
        if main:
            best = best_first(main, j.audio_key)[0]
            why = j.audio_languages.labels[language]
            if len(main) > 1:
                why += f"; the best of {len(main)} main {language} tracks"
            return best, best, why
    current = next((t for t in audio if t.default), None) or (audio[0] if audio else None)
    if current is not None and j.roles(current).secondary_audio:
        best = best_first(audio, j.audio_key)[0]
        if not j.roles(best).secondary_audio:
            return best, best, "a commentary or audio description track is never the default audio"
    return None, current, ""


def _default_subtitle(j: _Judgement, subtitles: list[Track], audio_language: str | None) -> tuple[Track | None, str]:
    """(the subtitle track that should be the only default one or ``None``, why).

    ``forced``: the first forced subtitle in the default audio language.
    ``preferred``: when the default audio is in another language, the best subtitle
    (:mod:`vpod.policy.ranking`) of the first ``subtitle_languages`` language that has a
    full or SDH one, else of the first that has any; otherwise as ``forced``.
    """
    policy = j.policy
    if policy.default_subtitle == "none":
        return None, ""
    if policy.default_subtitle == "preferred":
        readable = [t for t in subtitles if subtitle_kind(j.roles(t)) in ("full", "sdh")]
        candidate = _first_language(j, readable) or _first_language(j, subtitles)
        if candidate is not None and j.languages[candidate.index] != audio_language:
            language = j.languages[candidate.index]
            return candidate, (
                f"default_subtitle=preferred: {j.subtitle_languages.labels[language]}, audio is {audio_language}; "
                f"{subtitle_kind(j.roles(candidate))} subtitle first (subtitle_preference={policy.subtitle_preference})"
            )
    if audio_language is None:
        return None, ""
    forced = next((t for t in subtitles if j.roles(t).forced and j.languages[t.index] == audio_language), None)
    return forced, (f"default_subtitle={policy.default_subtitle}: forced subtitle in the audio language {audio_language}" if forced else "")


def _first_language(j: _Judgement, subtitles: list[Track]) -> Track | None:
    """The best of ``subtitles`` in the first ``subtitle_languages`` language any has."""
    for language in j.subtitle_languages.codes:
        of_language = [t for t in subtitles if j.languages[t.index] == language]
        if of_language:
            return best_first(of_language, j.subtitle_key)[0]
    return None


def _flag_actions(tracks: list[Track], chosen: Track | None, why: str) -> list[Action]:
    actions: list[Action] = []
    for track in tracks:
        if track.default == (track is chosen):
            continue
        reason = why if track is chosen else (f"track {chosen.index} is the default" if chosen else why or "no default wanted")
        actions.append(SetFlag(track.index, "default", track is chosen, why=reason))
    return actions


def _role_flags(j: _Judgement, kept: list[Track], compat: frozenset[int] = frozenset()) -> list[Action]:
    """``set_flags_from_titles`` and ``mark_original``: flags players read. ``compat``:
    tracks ``audio_compat`` counts as its own, whose FlagOriginal is left as it is."""
    actions: list[Action] = []
    for track in kept:
        if track.type not in ("audio", "subtitle"):
            continue
        roles = j.roles(track)
        if j.policy.set_flags_from_titles:
            for flag, key, pattern in roles.matched:
                actions.append(SetFlag(track.index, flag, True, why=f"set_flags_from_titles: {roles.why(flag)}"))  # type: ignore[arg-type]
        if j.policy.mark_original and j.original is not None and track.index not in compat:
            language = j.languages[track.index]
            wanted = language == j.original.code
            # The flags are the source themselves when no other answered: never contradicted.
            if track.original != wanted and language != UNDETERMINED and (wanted or j.original.source != "flag_original"):
                why = f"mark_original: {language} {'is' if wanted else 'is not'} the original language {j.original.describe()}"
                actions.append(SetFlag(track.index, "original", wanted, why=why))
    return actions


def _keeps_title(j: _Judgement, track: Track) -> bool:
    """A title that is the only mark of a role (its flag is not set in this plan) stays,
    even with ``clear_track_titles``: without it the next pass would lose the role."""
    return bool(j.roles(track).matched) and not j.policy.set_flags_from_titles and track.type in ("audio", "subtitle")


def _compat_default(
    policy: Policy, compat: CompatMatch, added: list[AddAudio], chosen: Track | None, why: str
) -> tuple[Track | None, str, bool]:
    """(the existing track to make the default audio, why, whether a track the plan adds
    is the default instead): an ``audio_compat`` entry with ``default = true`` makes
    the track that meets it the default, or the track added for it (every existing
    audio track then loses FlagDefault); otherwise the default audio choice stands."""
    for position, entry in enumerate(policy.audio_compat):
        if not entry.default:
            continue
        if position in compat.met:
            return compat.met[position], f"audio_compat[{position}] default = true", False
        if any(a.default for a in added):
            source = compat.source.index if compat.source is not None else None
            return None, f"audio_compat[{position}] default = true: the track added from track {source} is the default", True
    return chosen, why, False


def _compat_title(policy: Policy, compat: CompatMatch, track: Track) -> bool:
    """Whether ``track`` is a compat track titled as its ``audio_compat`` entry says
    (its title, or :meth:`~vpod.policy.transcode_keys.AudioCompat.title_for` its channels:
    ``AAC Mono`` for a mono one, ``AAC Stereo`` as vpod titled it before;
    ``clear_track_titles`` leaves that title: the policy asked for it)."""
    entries = policy.audio_compat
    return any(
        t is track and track.title in (entries[p].title, entries[p].title_for(track.channels or entries[p].channels))
        for p, t in compat.met.items() if t is not compat.source
    )  # fmt: skip


def wants_matroska_file(policy: Policy, media: MediaInfo) -> bool:
    """True when ``container = "mkv"`` and the file is not yet Matroska named ``*.mkv``."""
    if policy.container != "mkv":
        return False
    return not (media.is_matroska and media.path.suffix.lower() in MATROSKA_SUFFIXES)


def plan(
    policy: Policy,
    media: MediaInfo,
    original: OriginalLanguage | None = None,
    *,
    header_only: bool = False,
    minimums_of: MediaInfo | None = None,
) -> Plan:
    """The actions that make ``media`` conform to ``policy``; empty when it conforms.

    Actions come in this order: removals, language tags, default flags, role flags,
    titles, reorder, container change. Warnings say where the policy could not be
    followed safely (every audio track would be removed; a keep list names
    ``"original"`` and no source knew it, so it removes nothing).

    ``original``: the content's original language, which ``"original"`` in the
    policy's language lists stands for (``None``: unknown, ``"original"`` matches
    nothing). ``header_only``: plan only what an in-place header edit can do, as if
    the policy removed, reordered and converted nothing (a hard-linked file under
    ``hardlinks = "headers"``); applying it and planning again with ``header_only``
    gives an empty plan. ``minimums_of``: the file whose measure
    (:func:`minimums_measure`) judges ``video_codec``'s minimums, instead of
    ``media``'s own: the source, when the file its plan wrote is planned again to
    verify it (the decision the source's plan made stands for its own output).
    """
    return _plan(policy, media, original, header_only, minimums_of)[0]


def minimums_measure(policy: Policy, media: MediaInfo, original: OriginalLanguage | None = None) -> VideoMeasure | None:
    """What ``video_codec``'s ``min_bitrate_kbps`` / ``min_gb_per_hour`` judge in ``media``
    when :func:`plan` plans it (:func:`vpod.policy.transcoding.video_measure`: its size
    less the nominal size of the ``audio_compat`` tracks it keeps); ``None`` when its
    duration is unknown."""
    return _plan(policy, media, original, False, None)[1]


def _plan(
    policy: Policy, media: MediaInfo, original: OriginalLanguage | None, header_only: bool, minimums_of: MediaInfo | None
) -> tuple[Plan, VideoMeasure | None]:
    """(:func:`plan`, :func:`minimums_measure`) of ``media``, with ``minimums_of`` as in
    :func:`plan` (the measure returned is ``media``'s own)."""
    j = _Judgement(policy, media, original)
    language_actions = _languages(j)
    removed = {} if header_only else _removals(j)
    kept = [t for t in media.tracks if t.index not in removed]
    ordered = kept if header_only else _order(j, kept)

    audio = [t for t in ordered if t.type == "audio"]
    subtitles = [t for t in ordered if t.type == "subtitle"]
    chosen_audio, default_audio, audio_why = _default_audio(j, audio)
    audio_language = j.languages[default_audio.index] if default_audio is not None else None
    chosen_subtitle, subtitle_why = _default_subtitle(j, subtitles, audio_language)
    compat = j.compat(audio, audio_language)
    added = [] if header_only else add_audio_actions(policy, compat, audio_language or UNDETERMINED)
    chosen_audio, audio_why, new_default = _compat_default(policy, compat, added, chosen_audio, audio_why)

    actions: list[Action] = [RemoveTrack(index, key, why=why) for index, (key, why) in removed.items()]
    actions += [a for a in language_actions if a.track not in removed]
    if chosen_audio is not None or new_default:
        actions += _flag_actions(audio, chosen_audio, audio_why)
    actions += _flag_actions(subtitles, chosen_subtitle, subtitle_why)
    actions += _role_flags(j, kept, compat.compat_tracks)
    if policy.clear_track_titles:
        actions += [
            SetTitle(t.index, None, why="clear_track_titles")
            for t in kept
            if t.title and t.type in TAGGED_TYPES and not _keeps_title(j, t) and not _compat_title(policy, compat, t)
        ]
    if [t.index for t in ordered] != [t.index for t in kept]:
        actions.append(Reorder(tuple(t.index for t in ordered), why="track_order, then preferred languages"))
    measure = video_measure(policy, media, compat)
    if not header_only:
        rule = policy.video_codec
        minimums = rule.active and bool(rule.min_bitrate_kbps or rule.min_gb_per_hour)
        judged = minimums_measure(policy, minimums_of, original) if minimums and minimums_of is not None else measure
        actions += video_actions(policy, ordered, judged, j.warnings)
        actions += convert_actions(policy, ordered)
        actions += added
    if not header_only and wants_matroska_file(policy, media):
        actions.append(ChangeContainer("mkv", why='container="mkv"'))
    return Plan(actions=tuple(actions), warnings=tuple(j.warnings)), measure
