"""Evaluate a :class:`Policy` against a probed file into a :class:`Plan`.

Pure functions of (policy, media): no I/O, so every rule is testable on its own, and
``vpod plan`` shows exactly what ``vpod run`` would do. The rules, in the order they
are evaluated (each key is documented in ``docs/policy.md``):

1. languages: ``untagged_language`` tags ``und`` tracks; a Matroska track whose two
   language elements disagree is set again so every reader agrees;
2. removal: ``keep_audio_languages``, ``keep_subtitle_languages``, ``remove_commentary``
   (never every audio track);
3. default flags: ``audio_languages``, then ``default_subtitle`` and ``subtitle_languages``;
4. titles: ``clear_track_titles`` (except a commentary track kept because it is needed
   as audio: its title is what marks it);
5. order: ``track_order``, preferred languages first within a type;
6. container: ``container = "mkv"``.

Later rules see the result of earlier ones (a track tagged by ``untagged_language`` is
kept or removed by its new language), so applying the plan and planning again yields
an empty plan.
"""

from __future__ import annotations

from vpod.media.model import MediaInfo, Track
from vpod.policy.languages import UNDETERMINED
from vpod.policy.original import OriginalLanguage
from vpod.policy.plan import Action, ChangeContainer, Plan, RemoveTrack, Reorder, SetFlag, SetLanguage, SetTitle
from vpod.policy.policy import Policy

TAGGED_TYPES = ("video", "audio", "subtitle")
"""Track types that carry a language, a title and a default flag."""

MATROSKA_SUFFIXES = (".mkv",)
"""File name suffixes a file written for ``container = "mkv"`` ends with (compared lower-case)."""


def first_preferred(
    tracks: tuple[Track, ...] | list[Track],
    preference: tuple[str, ...],
    languages: dict[int, str] | None = None,
) -> Track | None:
    """The first track, in preference order of languages, then file order; ``None`` if no match.

    ``languages`` maps stream index → language to judge by (default: ``Track.language``).
    """
    for language in preference:
        for track in tracks:
            if (languages[track.index] if languages else track.language) == language:
                return track
    return None


def is_commentary(track: Track, patterns: tuple[str, ...]) -> bool:
    """True when the track's title contains one of ``patterns``, case-insensitively."""
    title = (track.title or "").casefold()
    return bool(title) and any(p.casefold() in title for p in patterns if p)


def _languages(policy: Policy, media: MediaInfo) -> tuple[dict[int, str], list[SetLanguage]]:
    """Each track's language after the plan, and the SetLanguage actions that get it there."""
    languages: dict[int, str] = {}
    actions: list[SetLanguage] = []
    for track in media.tracks:
        language = track.language
        if track.type in TAGGED_TYPES and language == UNDETERMINED and policy.untagged_language:
            language = policy.untagged_language
        languages[track.index] = language
        if track.type in TAGGED_TYPES and (language != track.language or not track.languages_agree):
            # Making the two elements agree keeps LanguageIETF's full tag (pt-BR stays pt-BR).
            tag = track.language_tag if language == track.language else None
            actions.append(SetLanguage(track.index, language, tag))
    return languages, actions


def _removals(policy: Policy, media: MediaInfo, languages: dict[int, str]) -> tuple[dict[int, str], list[str]]:
    """Tracks to remove (stream index → policy key asking for it) and warnings."""
    removed: dict[int, str] = {}
    for track in media.tracks:
        language = languages[track.index]
        if track.type == "audio" and policy.keep_audio_languages and language not in policy.keep_audio_languages:
            removed[track.index] = "keep_audio_languages"
        elif (
            track.type == "subtitle"
            and policy.keep_subtitle_languages
            and language not in policy.keep_subtitle_languages
        ):
            removed[track.index] = "keep_subtitle_languages"
        elif (
            track.type in ("audio", "subtitle")
            and policy.remove_commentary
            and is_commentary(track, policy.commentary_patterns)
        ):
            removed[track.index] = "remove_commentary"
    warnings: list[str] = []
    audio = media.tracks_of("audio")
    if audio and all(t.index in removed for t in audio):
        keys = sorted({removed[t.index] for t in audio})
        for track in audio:
            del removed[track.index]
        warnings.append(
            f"{', '.join(keys)} would remove every audio track; all {len(audio)} audio tracks are kept"
        )
    return removed, warnings


def _order(policy: Policy, kept: list[Track], languages: dict[int, str]) -> list[Track]:
    """Kept tracks in the policy's order: by type, then preferred languages, then file order."""
    if not policy.track_order:
        return kept
    type_rank = {kind: i for i, kind in enumerate(policy.track_order)}
    preferences = {"audio": policy.audio_languages, "subtitle": policy.subtitle_languages}

    def key(item: tuple[int, Track]) -> tuple[int, int, int]:
        position, track = item
        preference = preferences.get(track.type, ())
        language = languages[track.index]
        rank = preference.index(language) if language in preference else len(preference)
        return (type_rank.get(track.type, len(type_rank)), rank, position)

    return [track for _, track in sorted(enumerate(kept), key=key)]


def _default_audio(policy: Policy, audio: list[Track], languages: dict[int, str]) -> tuple[Track | None, Track | None]:
    """(the track to make the only default audio track or ``None``, the default audio afterwards).

    When no audio track has a preferred language the flags are left alone: a file in
    an unexpected language has no better choice to offer. The default afterwards is
    then what players pick: the first flagged default, else the first audio track.
    """
    chosen = first_preferred(audio, policy.audio_languages, languages)
    if chosen is not None:
        return chosen, chosen
    flagged = next((t for t in audio if t.default), None)
    return None, flagged or (audio[0] if audio else None)


def _default_subtitle(
    policy: Policy, subtitles: list[Track], audio_language: str | None, languages: dict[int, str]
) -> Track | None:
    """The subtitle track that should be the only default one, or ``None`` for none.

    ``forced``: the first forced subtitle in the default audio language.
    ``preferred``: the first subtitle in a preferred language (full subtitles before
    forced ones of that language) when the default audio is in another language;
    otherwise as ``forced``.
    """
    if policy.default_subtitle == "none":
        return None
    if policy.default_subtitle == "preferred":
        full = [t for t in subtitles if not t.forced]
        candidate = first_preferred(full, policy.subtitle_languages, languages) or first_preferred(
            subtitles, policy.subtitle_languages, languages
        )
        if candidate is not None and languages[candidate.index] != audio_language:
            return candidate
    if audio_language is None:
        return None
    return next((t for t in subtitles if t.forced and languages[t.index] == audio_language), None)


def _spared(policy: Policy, track: Track) -> bool:
    """A commentary track kept only because removing it would leave no audio keeps its
    title: without it the next pass would no longer see it as commentary and would
    remove the other tracks instead."""
    return policy.remove_commentary and track.type in ("audio", "subtitle") and is_commentary(
        track, policy.commentary_patterns
    )


def _flag_actions(tracks: list[Track], chosen: Track | None) -> list[Action]:
    return [
        SetFlag(track.index, "default", track is chosen) for track in tracks if track.default != (track is chosen)
    ]


def wants_matroska_file(policy: Policy, media: MediaInfo) -> bool:
    """True when ``container = "mkv"`` and the file is not yet Matroska named ``*.mkv``."""
    if policy.container != "mkv":
        return False
    return not (media.is_matroska and media.path.suffix.lower() in MATROSKA_SUFFIXES)


def plan(
    policy: Policy, media: MediaInfo, original: OriginalLanguage | None = None, *, header_only: bool = False
) -> Plan:
    """The actions that make ``media`` conform to ``policy``; empty when it conforms.

    Actions come in this order: removals, language tags, default flags, titles,
    reorder, container change. Warnings say where the policy could not be followed
    safely (every audio track would be removed).

    ``original``: the content's original language, which ``"original"`` in the
    policy's language lists stands for (``None``: unknown, ``"original"`` matches
    nothing). ``header_only``: plan only what an in-place header edit can do, as if
    the policy removed, reordered and converted nothing (a hard-linked file under
    ``hardlinks = "headers"``); applying it and planning again with ``header_only``
    gives an empty plan.
    """
    languages, language_actions = _languages(policy, media)
    if header_only:
        removed: dict[int, str] = {}
        warnings: list[str] = []
        kept = list(media.tracks)
        ordered = kept
    else:
        removed, warnings = _removals(policy, media, languages)
        kept = [t for t in media.tracks if t.index not in removed]
        ordered = _order(policy, kept, languages)

    audio = [t for t in ordered if t.type == "audio"]
    subtitles = [t for t in ordered if t.type == "subtitle"]
    chosen_audio, default_audio = _default_audio(policy, audio, languages)
    audio_language = languages[default_audio.index] if default_audio is not None else None
    chosen_subtitle = _default_subtitle(policy, subtitles, audio_language, languages)

    actions: list[Action] = [RemoveTrack(index, reason) for index, reason in removed.items()]
    actions += [a for a in language_actions if a.track not in removed]
    if chosen_audio is not None:
        actions += _flag_actions(audio, chosen_audio)
    actions += _flag_actions(subtitles, chosen_subtitle)
    if policy.clear_track_titles:
        actions += [SetTitle(t.index, None) for t in kept if t.title and t.type in TAGGED_TYPES and not _spared(policy, t)]
    if [t.index for t in ordered] != [t.index for t in kept]:
        actions.append(Reorder(tuple(t.index for t in ordered)))
    if not header_only and wants_matroska_file(policy, media):
        actions.append(ChangeContainer("mkv"))
    return Plan(actions=tuple(actions), warnings=tuple(warnings))
