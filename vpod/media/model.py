"""Typed model of a probed media file: container, duration and tracks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MATROSKA = "matroska"
"""Container name vpod uses for Matroska and WebM (WebM is a Matroska subset)."""


@dataclass(frozen=True)
class Track:
    """One track (stream) as vpod sees it.

    Attributes:
        index: stream index, 0-based, in file order. For Matroska it is mkvmerge's track
            ID; for other containers ffprobe's stream index.
        type: ``video``, ``audio``, ``subtitle``, ``attachment`` or ``data``.
        codec: codec name as the probing tool reports it (``AAC``, ``h264``, ``mov_text``).
        language: ISO 639-2/B code, ``und`` when the file carries none. For Matroska, the
            ``LanguageIETF`` (BCP 47) element wins over ``Language`` when both are present
            (RFC 9559 §5.1.4.1.20: "any Language Elements ... MUST be ignored").
        title: track name, ``None`` when absent.
        default: the default flag (Matroska ``FlagDefault``; absent means set).
        forced: the forced flag (Matroska ``FlagForced``).
        channels: audio channel count, ``None`` for other types.
        number: Matroska ``TrackNumber`` (what ``mkvpropedit --edit track:@N`` selects),
            ``None`` outside Matroska.
        duration_seconds: the track's own duration when the container records one.
        language_tag: the BCP 47 tag of Matroska's ``LanguageIETF`` (``pt-BR``,
            ``zh-Hant``) when the file has one; ``language`` is its ISO 639-2/B part.
        hearing_impaired: Matroska ``FlagHearingImpaired`` (ffprobe disposition
            ``hearing_impaired``): SDH / closed captions.
        visual_impaired: Matroska ``FlagVisualImpaired`` (disposition ``visual_impaired``):
            audio description for the visually impaired.
        commentary: Matroska ``FlagCommentary`` (disposition ``comment``).
        original: Matroska ``FlagOriginal`` (disposition ``original``): the track is in the
            content's original language.
        text_descriptions: Matroska ``FlagTextDescriptions`` (disposition ``descriptions``):
            subtitles that describe sounds and action as text.
            The five flags are RFC 9559 §5.1.4.1.(6-10); absent means not set.
        languages_agree: False when a Matroska track's ``Language`` and ``LanguageIETF``
            elements name different languages. ffprobe (FFmpeg 5.1) reads only
            ``Language``, mkvmerge and the spec follow ``LanguageIETF``, so readers
            disagree until the language is set again.
    """

    index: int
    type: str
    codec: str
    language: str = "und"
    title: str | None = None
    default: bool = False
    forced: bool = False
    channels: int | None = None
    number: int | None = None
    duration_seconds: float | None = None
    languages_agree: bool = True
    language_tag: str | None = None
    hearing_impaired: bool = False
    visual_impaired: bool = False
    commentary: bool = False
    original: bool = False
    text_descriptions: bool = False


@dataclass(frozen=True)
class MediaInfo:
    """A probed file. ``container`` is ``matroska`` or ffprobe's format name (``mov,mp4,...``)."""

    path: Path
    container: str
    duration_seconds: float | None
    tracks: tuple[Track, ...]
    size_bytes: int
    probed_with: str
    attachments: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_matroska(self) -> bool:
        """True for Matroska and WebM, the containers ``mkvpropedit`` edits in place."""
        return self.container == MATROSKA

    def tracks_of(self, kind: str) -> tuple[Track, ...]:
        """Tracks of one type, in file order."""
        return tuple(t for t in self.tracks if t.type == kind)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``vpod inspect --json``)."""
        return {
            "path": str(self.path),
            "container": self.container,
            "duration_seconds": self.duration_seconds,
            "size_bytes": self.size_bytes,
            "probed_with": self.probed_with,
            "attachments": self.attachments,
            "tracks": [asdict(t) for t in self.tracks],
        }
