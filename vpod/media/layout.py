"""The track layout a plan produces: which tracks, in which order, with which properties.

One function turns (probed file, plan) into the expected tracks, so the remux writes
exactly what verification then checks for.
"""

from __future__ import annotations

from dataclasses import replace

from vpod.media.flags import flag_value
from vpod.media.model import MediaInfo, Track
from vpod.policy.plan import Plan, RemoveTrack, Reorder, SetFlag, SetLanguage, SetTitle


def expected_tracks(media: MediaInfo, plan: Plan) -> tuple[Track, ...]:
    """The tracks of ``media`` after ``plan``, in output order.

    Each returned :class:`Track` keeps its *source* ``index`` (which stream of
    ``media`` it comes from) and carries the language, title and flags it must have
    afterwards; a track whose language is set gets ``languages_agree = True``.
    Attachment streams (cover art probed by ffprobe) are included; a Matroska
    writer stores them as attachments rather than tracks.
    """
    removed = {a.track for a in plan.actions if isinstance(a, RemoveTrack)}
    tracks = {t.index: t for t in media.tracks if t.index not in removed}
    for action in plan.actions:
        if isinstance(action, SetFlag) and action.track in tracks:
            tracks[action.track] = replace(tracks[action.track], **flag_value(action.flag, action.value))
        elif isinstance(action, SetLanguage) and action.track in tracks:
            tracks[action.track] = replace(
                tracks[action.track], language=action.language, language_tag=action.tag, languages_agree=True
            )
        elif isinstance(action, SetTitle) and action.track in tracks:
            tracks[action.track] = replace(tracks[action.track], title=action.title)
    order = next((a.order for a in plan.actions if isinstance(a, Reorder)), None)
    if order is None:
        return tuple(tracks[t.index] for t in media.tracks if t.index in tracks)
    return tuple(tracks[index] for index in order)


def changed_fields(media: MediaInfo, plan: Plan) -> dict[int, set[str]]:
    """Per source stream index, which properties the plan sets (``language``, ``title``,
    or a flag's :data:`~vpod.policy.plan.FlagName`). A remux passes only these, so a
    track's other properties (a BCP 47 region like ``pt-BR``) stay as the source had
    them."""
    changes: dict[int, set[str]] = {}
    for action in plan.actions:
        if isinstance(action, SetFlag):
            changes.setdefault(action.track, set()).add(action.flag)
        elif isinstance(action, SetLanguage):
            changes.setdefault(action.track, set()).add("language")
        elif isinstance(action, SetTitle):
            changes.setdefault(action.track, set()).add("title")
    return changes
