"""A :class:`Plan`: the actions that make one file conform to the policy.

Actions name tracks by their stream index in the probed file (``Track.index``).
Header actions (flags, language, title) can be applied in place by ``mkvpropedit``;
structural ones (removal, reorder, container) need a remux into a new file.
"""

# No `from __future__ import annotations`: a NamedTuple's field annotations are then
# objects, not strings typing.NamedTuple compiles one by one (about half its cost here).

from typing import Any, Literal, NamedTuple

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


# The actions are NamedTuples (made at every vpod process start in about a fifth of a
# frozen dataclass's time: contrib/bench/findings.md, round 3) whose last field, ``why``,
# explains an action and takes no part in comparing two actions (_why_aside, below);
# nor does TranscodeVideo's ``ran``, just before it (what ran, once done).
def _equal_but_why(self: tuple[Any, ...], other: object) -> bool:
    cut = -2 if type(self) is TranscodeVideo else -1
    return type(other) is type(self) and self[:cut] == other[:cut]


def _unequal_but_why(self: tuple[Any, ...], other: object) -> bool:
    return not _equal_but_why(self, other)


def _hash_but_why(self: tuple[Any, ...]) -> int:
    return hash((type(self).__name__, self[: -2 if type(self) is TranscodeVideo else -1]))


class SetFlag(NamedTuple):
    """Set one of a track's flags (:data:`FlagName`), a header-only change."""

    track: int
    flag: FlagName
    value: bool
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return False

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"track {self.track}: set {self.flag} flag {'on' if self.value else 'off'}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "set_flag", "track": self.track, "flag": self.flag, "value": self.value}, self.why)


class SetLanguage(NamedTuple):
    """Set a track's language: ``language`` is the ISO 639-2/B code; ``tag`` a full BCP 47
    tag to write instead when there is one to keep (``pt-BR``: the region and script a
    bare ``por`` would lose). MKVToolNix writes both Matroska elements from either."""

    track: int
    language: str
    tag: str | None = None
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return False

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


class SetTitle(NamedTuple):
    """Set a track's title; ``None`` removes it."""

    track: int
    title: str | None
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return False

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"track {self.track}: " + (f"set title {self.title!r}" if self.title else "clear title")

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "set_title", "track": self.track, "title": self.title}, self.why)


class RemoveTrack(NamedTuple):
    """Drop a track from the file; ``reason`` says which policy key asked for it."""

    track: int
    reason: str
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"track {self.track}: remove ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "remove_track", "track": self.track, "reason": self.reason}, self.why)


class Reorder(NamedTuple):
    """Write the kept tracks in this order of stream indexes."""

    order: tuple[int, ...]
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return "reorder tracks to " + ", ".join(str(i) for i in self.order)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "reorder", "order": list(self.order)}, self.why)


class ChangeContainer(NamedTuple):
    """Remux into another container (``mkv``), under the same name with its extension."""

    container: str
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        return f"remux into {self.container.upper()}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why({"action": "change_container", "container": self.container}, self.why)


class TranscodeVideo(NamedTuple):
    """Re-encode video track ``track`` into ``codec`` (a family: ``hevc``, ``av1``,
    ``h264``) with ``encoder`` (``software``, or a hardware family ``vaapi``/``nvenc``/
    ``qsv``: the executor picks the ffmpeg encoder, falling back to software with a
    warning when the hardware is absent), at quality ``crf`` (constant rate factor, or
    the hardware encoder's nearest quality setting) and ``preset`` (the encoder's speed
    preset name). The bit depth and HDR metadata are kept, or the file fails with a reason.
    A transcode: it needs a new file, and its cost class is ``transcode``. ``ran`` is
    set by the executor on the plan it reports as done, never by the planner."""

    track: int
    codec: str
    encoder: str = "software"
    crf: int = 0
    preset: str = ""
    ran: str = ""
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return True

    def describe(self) -> str:
        """One line for people: what it does to which track (once done, with ``ran``:
        the encoder that ran where it is not the one asked, e.g. ``libx265, vaapi not usable``)."""
        return f"track {self.track}: transcode video to {self.codec.upper()} ({self.ran or self.encoder}, crf {self.crf}, preset {self.preset})"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why(
            {"action": "transcode_video", "track": self.track, "codec": self.codec, "encoder": self.encoder,
             "crf": self.crf, "preset": self.preset},
            self.why,
        )  # fmt: skip


class ConvertAudio(NamedTuple):
    """Re-encode audio track ``track`` into ``codec`` (a family of
    :mod:`vpod.policy.codecs`: ``aac``, ``ac3``, ``eac3``, ``opus``, ``flac``) at
    ``bitrate_kbps`` (kilobits per second; ``None`` for a lossless codec) with
    ``channels`` (``None``: the source's). The track keeps its place, language, title and
    flags. A transcode."""

    track: int
    codec: str
    bitrate_kbps: int | None = None
    channels: int | None = None
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        rate = f" {self.bitrate_kbps} kb/s" if self.bitrate_kbps else ""
        layout = f" {self.channels} ch" if self.channels else ""
        return f"track {self.track}: convert audio to {self.codec.upper()}{layout}{rate}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why(
            {"action": "convert_audio", "track": self.track, "codec": self.codec, "bitrate_kbps": self.bitrate_kbps,
             "channels": self.channels},
            self.why,
        )  # fmt: skip


class AddAudio(NamedTuple):
    """Add a new audio track encoded from audio track ``source`` into ``codec`` with
    ``channels`` (downmixed when fewer than the source's) at ``bitrate_kbps`` (kilobits
    per second), placed right after its source in the output, with the source's
    language, the title ``title`` and FlagDefault ``default``; its other flags off. A
    transcode (``audio_compat`` in docs/policy.md)."""

    source: int
    codec: str
    channels: int
    bitrate_kbps: int | None = None
    title: str = ""
    default: bool = False
    why: str = ""

    @property
    def structural(self) -> bool:
        """Whether it needs a remux (a new file), not an in-place header edit."""
        return True

    def describe(self) -> str:
        """One line for people: what it does to which track."""
        rate = f" {self.bitrate_kbps} kb/s" if self.bitrate_kbps else ""
        return f"add {self.codec.upper()} {self.channels} ch{rate} audio made from track {self.source}, right after it"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``vpod plan --json``): ``action`` plus its fields."""
        return _with_why(
            {"action": "add_audio", "source": self.source, "codec": self.codec, "channels": self.channels,
             "bitrate_kbps": self.bitrate_kbps, "title": self.title, "default": self.default},
            self.why,
        )  # fmt: skip


TRANSCODE_ACTIONS = (TranscodeVideo, ConvertAudio, AddAudio)
"""Actions that encode media (minutes to hours of CPU), not only copy it."""

CostClass = Literal["none", "header", "remux", "transcode"]
"""What applying a plan costs: ``none`` (conforms), ``header`` (an in-place header edit,
a fraction of a second), ``remux`` (read and write the file once, seconds to minutes),
``transcode`` (encode: minutes to hours of CPU)."""


Action = SetFlag | SetLanguage | SetTitle | RemoveTrack | Reorder | ChangeContainer | TranscodeVideo | ConvertAudio | AddAudio


def _why_aside(*actions: type) -> None:
    """Compare and hash ``actions`` by type and every field but the last, ``why`` (and
    TranscodeVideo's ``ran``; a tuple's own ``==`` would count them, and equal a plain tuple)."""
    for action in actions:
        setattr(action, "__eq__", _equal_but_why)
        setattr(action, "__ne__", _unequal_but_why)
        setattr(action, "__hash__", _hash_but_why)


_why_aside(SetFlag, SetLanguage, SetTitle, RemoveTrack, Reorder, ChangeContainer, TranscodeVideo, ConvertAudio, AddAudio)


class Plan(NamedTuple):
    """What to do to one file. Empty ``actions`` means the file already conforms.

    ``warnings`` are policy conflicts resolved safely (for example "every audio track
    would be removed; all kept").
    """

    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the file already conforms."""
        return not self.actions

    @property
    def needs_remux(self) -> bool:
        """True when any action needs a new file rather than an in-place header edit."""
        return any(a.structural for a in self.actions)

    @property
    def transcodes(self) -> bool:
        """True when any action encodes media (:data:`TRANSCODE_ACTIONS`)."""
        return any(isinstance(a, TRANSCODE_ACTIONS) for a in self.actions)

    @property
    def cost(self) -> CostClass:
        """The plan's cost class (:data:`CostClass`): its most expensive action's."""
        if not self.actions:
            return "none"
        if self.transcodes:
            return "transcode"
        return "remux" if self.needs_remux else "header"

    def describe(self) -> tuple[str, ...]:
        """Each action's one-line description, in order."""
        return tuple(a.describe() for a in self.actions)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each action's JSON form, in order."""
        return [a.as_dict() for a in self.actions]
