"""The track layout a plan produces: which tracks, in which order, with which properties.

One function turns (probed file, plan) into the expected tracks, so the remux writes
exactly what verification then checks for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from vpod.media.flags import flag_value
from vpod.media.model import MediaInfo, Track
from vpod.policy.plan import (
    AddAudio, ConvertAudio, Plan, RemoveTrack, Reorder, SetFlag, SetLanguage, SetTitle, TranscodeVideo,
)  # fmt: skip


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


class OutputTrack(NamedTuple):
    """One track of a transcode's output (:func:`planned_layout`).

    Attributes:
        track: the properties it must have (language, title, flags); ``track.index`` is
            the source stream it is made from.
        encode: the transcode action that writes it, or ``None``: copied as it is.
        added: a new track (:class:`~vpod.policy.plan.AddAudio`) made from ``track.index``.
    """

    track: Track
    encode: TranscodeVideo | ConvertAudio | AddAudio | None = None
    added: bool = False

    @property
    def codec(self) -> str | None:
        """The codec family it is encoded into, ``None`` when copied."""
        return self.encode.codec if self.encode is not None else None

    @property
    def channels(self) -> int | None:
        """The channel count the plan asks for, ``None`` when it keeps the source's."""
        return None if isinstance(self.encode, TranscodeVideo) or self.encode is None else self.encode.channels


def planned_layout(media: MediaInfo, plan: Plan) -> tuple[OutputTrack, ...]:
    """:func:`expected_tracks` with the plan's transcodes: each track with the action that
    encodes it, and each added audio track right after its source, with its source's
    language, the title and default flag of its :class:`~vpod.policy.plan.AddAudio` and
    its other flags off. Attachment streams are left out (they are copied as they are)."""
    encodes: dict[int, TranscodeVideo | ConvertAudio] = {
        a.track: a for a in plan.actions if isinstance(a, (TranscodeVideo, ConvertAudio))
    }
    added: dict[int, list[AddAudio]] = {}
    for action in plan.actions:
        if isinstance(action, AddAudio):
            added.setdefault(action.source, []).append(action)
    out: list[OutputTrack] = []
    for track in expected_tracks(media, plan):
        if track.type == "attachment":
            continue
        out.append(OutputTrack(track, encodes.get(track.index)))
        for action in added.get(track.index, []):
            made = replace(
                track, title=action.title or None, default=action.default, forced=False, hearing_impaired=False,
                visual_impaired=False, commentary=False, original=False, text_descriptions=False,
                channels=action.channels,
            )  # fmt: skip
            out.append(OutputTrack(made, action, added=True))
    return tuple(out)
