"""The ``[policy]`` section: a user's rules for tracks, flags and container.

Every key is documented in ``docs/policy.md``; example policies live in
``contrib/policies/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from vpod.errors import ConfigError
from vpod.policy.languages import UNDETERMINED, LanguageError, normalize_language
from vpod.policy.codecs import CODEC_NAMES, codec_family
from vpod.policy.original import ORIGINAL
from vpod.policy.transcode_keys import TABLE_KEYS, AudioCompat, AudioConvert, VideoCodec, transcode_keys
from vpod.tomlschema import build_section, in_range, load_toml, one_of, setting, shown_value

TRACK_TYPES = ("video", "audio", "subtitle", "attachment")
LANGUAGE_LIST_KEYS = (
    "audio_languages",
    "subtitle_languages",
    "keep_audio_languages",
    "keep_subtitle_languages",
)
RESULT_NEUTRAL_KEYS = frozenset({"on_error", "backup", "keep_mtime"})
"""Policy keys that never change what a conforming file looks like (what a failure does
to its batch, whether a backup is kept, which mtime a rewritten file gets), so they stay
out of :attr:`Policy.digest`: ``vpod process --on-error fail`` judges like the daemon.
``hardlinks`` is not among them: under ``"headers"`` a hard-linked file ends with only
the header part of its plan applied."""
HARDLINK_MODES = ("skip", "headers", "break")
TRANSCODE_KEYS = (*TABLE_KEYS, "keep_if_larger", "min_saving_percent")
"""The transcoding keys (docs/policy.md "Transcoding"). Each enters :attr:`Policy.digest`
only when set to a value other than its default, so a library judged before they existed
is not judged again because vpod was upgraded."""


def _track_type(value: Any) -> str | None:
    return None if value in TRACK_TYPES else "one of " + ", ".join(TRACK_TYPES)


def _non_empty(value: Any) -> str | None:
    # An empty pattern is a substring of every title: every track would count as commentary.
    return None if value.strip() else "a non-empty text (an empty pattern matches every title)"


@dataclass(frozen=True)
class Policy:
    """What a conforming file looks like. Language codes are stored as ISO 639-2/B."""

    audio_languages: tuple[str, ...] = setting(
        ("eng",), doc='preference order; the first present becomes the only default audio track; "original" allowed'
    )
    subtitle_languages: tuple[str, ...] = setting((), doc="preference order for subtitles")
    default_subtitle: str = setting(
        "forced", check=one_of("none", "forced", "preferred"), doc="which subtitle is default"
    )
    keep_audio_languages: tuple[str, ...] = setting((), doc="audio languages kept; empty keeps all")
    keep_subtitle_languages: tuple[str, ...] = setting(
        (), doc="subtitle languages kept; empty keeps all"
    )
    original_language: str = setting(
        "", doc='the original language when no *arr or FlagOriginal says; "" for none'
    )
    remove_commentary: bool = setting(False, doc="remove commentary tracks (flag or title)")
    remove_audio_description: bool = setting(False, doc="remove audio description tracks (flag or title)")
    remove_sdh: bool = setting(False, doc="remove SDH / hearing-impaired subtitles (flag or title)")
    remove_forced_subtitles: bool = setting(False, doc="remove forced subtitles (flag or title)")
    commentary_patterns: tuple[str, ...] = setting(
        ("commentary", "commentaries"), check=_non_empty, doc="words in titles of commentary tracks"
    )
    forced_patterns: tuple[str, ...] = setting(
        ("forced", "signs", "songs"), check=_non_empty, doc="words in titles of forced subtitles"
    )
    sdh_patterns: tuple[str, ...] = setting(
        ("sdh", "cc", "hearing impaired"), check=_non_empty, doc="words in titles of SDH subtitles"
    )
    description_patterns: tuple[str, ...] = setting(
        ("audio description", "descriptive", "described"),
        check=_non_empty,
        doc="words in titles of audio description tracks",
    )
    set_flags_from_titles: bool = setting(True, doc="set forced/SDH/commentary/description flags that titles imply")
    mark_original: bool = setting(True, doc="set FlagOriginal on tracks in the original language")
    subtitle_preference: str = setting(
        "full", check=one_of("full", "sdh"), doc="full subtitles before SDH ones, or SDH first"
    )
    audio_codec_preference: tuple[str, ...] = setting(
        (), check=_non_empty, doc="codec order that breaks ties between main audio tracks of one language"
    )
    max_audio_per_language: int = setting(0, check=in_range(0, 100), doc="0: keep all")
    max_subtitles_per_language: int = setting(0, check=in_range(0, 100), doc="0: keep all")
    track_order: tuple[str, ...] = setting(
        TRACK_TYPES, check=_track_type, doc="order of track types; empty keeps the file's order"
    )
    untagged_language: str = setting("", doc="language given to tracks tagged und or untagged")
    clear_track_titles: bool = setting(False, doc="remove every track title")
    container: str = setting("keep", check=one_of("keep", "mkv"), doc="target container")
    backup: bool = setting(False, doc="keep NAME.orig.EXT beside a rewritten file")
    hardlinks: str = setting(
        "headers", check=one_of(*HARDLINK_MODES), doc="what vpod may do to a file with several hard links"
    )
    keep_mtime: bool = setting(True, doc="a remuxed file keeps its source's modification time")
    on_error: str = setting("skip", check=one_of("skip", "fail"), doc="what a failed file does to its batch")
    audio_compat: tuple[AudioCompat, ...] = setting(
        (), doc="tracks (codec, channels) the default audio language must have; added from its best main track"
    )
    audio_convert: AudioConvert = setting(AudioConvert(), doc="audio codecs re-encoded into another; to = \"keep\": none")
    video_codec: VideoCodec = setting(VideoCodec(), doc="video codec to re-encode listed source codecs into; \"keep\": none")
    keep_if_larger: bool = setting(
        True, doc="keep the source's video when its encode does not save min_saving_percent of the video"
    )
    min_saving_percent: float = setting(
        5.0, check=in_range(0, 90), doc="how much smaller (percent of the source's video bytes) the encoded video must be"
    )

    @property
    def encodes(self) -> bool:
        """Whether this policy may plan an encode: ``video_codec`` re-encodes a codec,
        ``audio_compat`` lists a track, or ``audio_convert`` converts a codec (whether a
        given file needs one is the plan's business: :attr:`vpod.policy.plan.Plan.cost`)."""
        return self.video_codec.active or bool(self.audio_compat) or self.audio_convert.active

    @property
    def break_hardlinks(self) -> bool:
        """``hardlinks = "break"``: a remux may split a file from its other hard links."""
        return self.hardlinks == "break"

    @cached_property
    def digest(self) -> str:
        """A short, stable identity of what this policy asks of a file: 16 hex digits,
        BLAKE2b (8 bytes) of the canonical JSON of every key except
        :data:`RESULT_NEUTRAL_KEYS` (and each of :data:`TRANSCODE_KEYS` left at its
        default). Equal for equal policies in any process or version
        of Python; computed once per Policy object (a reload builds a new one).

        The Store records it with each result, so content judged under one policy is
        not taken as handled under another.
        """
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in RESULT_NEUTRAL_KEYS and not (f.name in TRANSCODE_KEYS and getattr(self, f.name) == f.default)
        }
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=asdict)
        return hashlib.blake2b(canonical.encode("ascii"), digest_size=8).hexdigest()


def _list_language(value: str) -> str:
    return ORIGINAL if value.strip().lower() == ORIGINAL else normalize_language(value)


def _single_language(value: str, key: str, empty_means: str, source: Path | None) -> str:
    """``value`` of the one-language key ``key`` as ISO 639-2/B; ``und`` is refused
    (``""`` says "none" there)."""
    try:
        language = normalize_language(value)
    except LanguageError as exc:
        raise ConfigError(source, f"[policy] {key}", str(exc)) from None
    if language == UNDETERMINED:
        raise ConfigError(source, f"[policy] {key}", f'expected a language other than "und" (or "" {empty_means})')
    return language


def _normalize_languages(policy: Policy, source: Path | None) -> Policy:
    changes: dict[str, Any] = {}
    for key in LANGUAGE_LIST_KEYS:
        try:
            changes[key] = tuple(dict.fromkeys(_list_language(v) for v in getattr(policy, key)))
        except LanguageError as exc:
            raise ConfigError(source, f"[policy] {key}", f'{exc} (or "original")') from None
    for key, empty_means in (("original_language", "for none"), ("untagged_language", "to leave tags alone")):
        if getattr(policy, key):
            changes[key] = _single_language(getattr(policy, key), key, empty_means, source)
    unknown = [c for c in policy.audio_codec_preference if codec_family(c) is None]
    if unknown:
        raise ConfigError(
            source, "[policy] audio_codec_preference",
            f"{', '.join(repr(c) for c in unknown)}: not a codec vpod knows; known: {', '.join(CODEC_NAMES)}",
        )  # fmt: skip
    from vpod.policy.roles import title_match  # roles imports this module

    for entry in policy.audio_compat:
        if policy.audio_convert.converts(entry.codec):
            raise ConfigError(
                source, "[policy] audio_compat", f"codec {entry.codec} is among audio_convert codecs: the track added "
                "for it would be converted again; leave it out of one of them",
            )  # fmt: skip
        for key in ("commentary_patterns", "description_patterns"):
            if title_match(entry.title, getattr(policy, key)):
                raise ConfigError(
                    source, "[policy] audio_compat", f"title {entry.title!r} matches {key}: the added track would "
                    "count as commentary or audio description; choose another title",
                )  # fmt: skip
    if len(set(policy.track_order)) != len(policy.track_order):
        raise ConfigError(source, "[policy] track_order", "expected each track type at most once")
    return replace(policy, **changes)


def policy_from_table(
    table: Mapping[str, Any], *, source: Path | None, base_dir: Path | None, on_error: str | None = None
) -> Policy:
    """Build a :class:`Policy` from the ``[policy]`` table of a config file.

    ``policy_file = "PATH"`` (relative to ``base_dir``) loads the policy from that file
    instead: either its top level or its own ``[policy]`` table. It cannot be combined
    with other keys, so there is one place that says what the policy is.

    ``on_error``: for a named policy (``[policies.NAME]``), the global value of
    ``[policy] on_error``, which the policy gets; its table (or file) may leave the key
    out or give the same value, since one batch has one rule for failures.

    Raises:
        ConfigError: an unknown key, a wrong type, a bad language code or value, or an
            ``on_error`` other than the global one.
    """
    if "policy_file" in table:
        others = sorted(k for k in table if k != "policy_file")
        if others:
            raise ConfigError(
                source, "[policy] policy_file", f"cannot be combined with other keys ({', '.join(others)})"
            )
        raw = table["policy_file"]
        if not isinstance(raw, str) or not raw:
            raise ConfigError(source, "[policy] policy_file", f"expected a path string, got {shown_value(raw)}")
        path = Path(raw).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            if source is not None and path.resolve() == Path(source).resolve():
                raise ConfigError(source, "[policy] policy_file", "names this file itself; name a separate policy file")
        except (OSError, RuntimeError, ValueError):
            pass  # unresolvable (a symlink loop, a NUL byte): load_toml below says why
        try:
            data = load_toml(path)
        except ConfigError as exc:
            # Name the file and key that pointed here, not only the missing target.
            raise ConfigError(source, "[policy] policy_file", f"{exc.source}: {exc.reason}") from None
        if "policy" in data:
            others = sorted(k for k in data if k != "policy")
            if others:
                raise ConfigError(
                    path, None, f"a policy file holds policy keys, or one [policy] table; it also has {', '.join(others)}"
                )
            inner = data["policy"]
        else:
            inner = data
        if "policy_file" in inner:
            raise ConfigError(path, "policy_file", "a policy file cannot name another policy file")
        return policy_from_table(inner, source=path, base_dir=path.parent, on_error=on_error)
    policy = _build(_legacy_hardlinks(table, source), source, base_dir)
    if on_error is not None:
        policy = _global_on_error(policy, "on_error" in table, on_error, source, "[policy] on_error")
    return _normalize_languages(policy, source)


def policy_with_overrides(base: Policy, table: Mapping[str, Any], *, source: Path | None) -> Policy:
    """``base`` with the keys of ``table`` (policy keys, as in ``[policy]``) replaced by
    their values there; every other key keeps ``base``'s value. ``on_error`` may only
    repeat ``base``'s (it is global). Errors name ``source`` and the key as written
    (no ``[policy]``: a folder's ``.vpod.toml`` has its keys at the top level).

    Raises:
        ConfigError: an unknown key, a wrong type, a bad language code or value.
    """
    try:
        rest = _legacy_hardlinks(table, source)
        given = _build(rest, source, None)
        merged = replace(base, **{key: getattr(given, key) for key in rest})
        merged = _global_on_error(merged, "on_error" in rest, base.on_error, source, "on_error")
        return _normalize_languages(merged, source)
    except ConfigError as exc:
        key = exc.key[len("[policy] ") :] if exc.key and exc.key.startswith("[policy] ") else exc.key
        raise ConfigError(exc.source, key, exc.reason) from None


def _build(table: Mapping[str, Any], source: Path | None, base_dir: Path | None) -> Policy:
    """The :class:`Policy` of ``table``: plain keys by :func:`build_section`, the
    transcoding tables by :func:`vpod.policy.transcode_keys.transcode_keys`."""
    policy = build_section(Policy, table, source=source, section="policy", base_dir=base_dir, skip=TABLE_KEYS)
    return replace(policy, **transcode_keys(table, source))


def _global_on_error(policy: Policy, given: bool, on_error: str, source: Path | None, key: str) -> Policy:
    """``policy`` with the global ``on_error``, which it may only repeat."""
    if given and policy.on_error != on_error:
        raise ConfigError(
            source, key, f'on_error is global: [policy] on_error = "{on_error}" applies to every policy; '
            "leave it out here (or give the same value)",
        )
    return replace(policy, on_error=on_error)


def _legacy_hardlinks(table: Mapping[str, Any], source: Path | None) -> Mapping[str, Any]:
    """``break_hardlinks = true|false`` (before ``hardlinks``) as ``hardlinks``: true is
    ``"break"``; false was "skip the file when a remux is needed", which is ``"headers"``
    minus the in-place part, so it becomes ``"headers"`` (the header part of such a
    file's plan is applied now)."""
    if "break_hardlinks" not in table:
        return table
    value = table["break_hardlinks"]
    if not isinstance(value, bool):
        raise ConfigError(source, "[policy] break_hardlinks", f"expected true or false, got {shown_value(value)}")
    if "hardlinks" in table:
        raise ConfigError(
            source, "[policy] break_hardlinks", 'cannot be combined with hardlinks (the key that replaces it); keep hardlinks'
        )
    rest = {k: v for k, v in table.items() if k != "break_hardlinks"}
    rest["hardlinks"] = "break" if value else "headers"
    return rest
