"""A :class:`Plan`: the actions that make one file conform to the policy.

Actions name tracks by their stream index in the probed file (``Track.index``).
Header actions (flags, language, title) can be applied in place by ``mkvpropedit``;
structural ones (removal, reorder, container) need a remux into a new file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FlagName = Literal[
    "default", "forced", "hearing_impaired", "visual_impaired", "commentary", "original", "text_descriptions"
]
"""Track flags a plan may set; each is a Matroska ``Flag*`` element (RFC 9559 §5.1.4.1):
FlagDefault, FlagForced, FlagHearingImpaired, FlagVisualImpaired, FlagCommentary,
FlagOriginal, FlagTextDescriptions. They are also attributes of
:class:`vpod.media.model.Track` of the same names."""


def _with_why(data: dict[str, Any], why: str) -> dict[str, Any]:
    if why:
        data["why"] = why
    return data


@dataclass(frozen=True)
class SetFlag:
    """Set one of a track's flags (:data:`FlagName`), a header-only change."""

    track: int
    flag: FlagName
    value: bool
    why: str = field(default="", compare=False)
    structural = False

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"track {self.track}: set {self.flag} flag {'on' if self.value else 'off'}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "set_flag", "track": self.track, "flag": self.flag, "value": self.value}, self.why)


@dataclass(frozen=True)
class SetLanguage:
    """Set a track's language: ``language`` is the ISO 639-2/B code; ``tag`` a full BCP 47
    tag to write instead when there is one to keep (``pt-BR``: the region and script a
    bare ``por`` would lose). MKVToolNix writes both Matroska elements from either."""

    track: int
    language: str
    tag: str | None = None
    why: str = field(default="", compare=False)
    structural = False

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        shown = f"{self.language} ({self.tag})" if self.tag else self.language
        return f"track {self.track}: set language {shown}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        data = {"action": "set_language", "track": self.track, "language": self.language}
        if self.tag:
            data["tag"] = self.tag
        return _with_why(data, self.why)


@dataclass(frozen=True)
class SetTitle:
    """Set a track's title; ``None`` removes it."""

    track: int
    title: str | None
    why: str = field(default="", compare=False)
    structural = False

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"track {self.track}: " + (f"set title {self.title!r}" if self.title else "clear title")

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "set_title", "track": self.track, "title": self.title}, self.why)


@dataclass(frozen=True)
class RemoveTrack:
    """Drop a track from the file; ``reason`` says which policy key asked for it."""

    track: int
    reason: str
    why: str = field(default="", compare=False)
    structural = True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"track {self.track}: remove ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "remove_track", "track": self.track, "reason": self.reason}, self.why)


@dataclass(frozen=True)
class Reorder:
    """Write the kept tracks in this order of stream indexes."""

    order: tuple[int, ...]
    why: str = field(default="", compare=False)
    structural = True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return "reorder tracks to " + ", ".join(str(i) for i in self.order)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "reorder", "order": list(self.order)}, self.why)


@dataclass(frozen=True)
class ChangeContainer:
    """Remux into another container (``mkv``), under the same name with its extension."""

    container: str
    why: str = field(default="", compare=False)
    structural = True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"remux into {self.container.upper()}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "change_container", "container": self.container}, self.why)


Action = SetFlag | SetLanguage | SetTitle | RemoveTrack | Reorder | ChangeContainer


@dataclass(frozen=True)
class Plan:
    """What to do to one file. Empty ``actions`` means the file already conforms.

    ``warnings`` are policy conflicts resolved safely (for example "every audio track
    would be removed; all kept").
    """

    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        """True when the file already conforms."""
        return not self.actions

    @property
    def needs_remux(self) -> bool:
        """True when any action needs a new file rather than an in-place header edit."""
        return any(a.structural for a in self.actions)

    def describe(self) -> tuple[str, ...]:
        """Each action's one-line description, in order."""
        return tuple(a.describe() for a in self.actions)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each action's JSON form, in order."""
        return [a.as_dict() for a in self.actions]
