"""The ``[policy]`` section: a user's rules for tracks, flags and container.

Every key is documented in ``docs/policy.md``; example policies live in
``contrib/policies/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from vpod.errors import ConfigError
from vpod.policy.languages import UNDETERMINED, LanguageError, normalize_language
from vpod.tomlschema import build_section, load_toml, one_of, setting

TRACK_TYPES = ("video", "audio", "subtitle", "attachment")
LANGUAGE_LIST_KEYS = (
    "audio_languages",
    "subtitle_languages",
    "keep_audio_languages",
    "keep_subtitle_languages",
)
RESULT_NEUTRAL_KEYS = frozenset({"on_error", "backup", "break_hardlinks", "keep_mtime"})
"""Policy keys that never change what a conforming file looks like (what a failure does
to its batch, whether a backup is kept, whether a remux may split hard links, which
mtime a rewritten file gets), so they stay out of :attr:`Policy.digest`:
``vpod process --on-error fail`` judges like the daemon."""


def _track_type(value: Any) -> str | None:
    return None if value in TRACK_TYPES else "one of " + ", ".join(TRACK_TYPES)


def _non_empty(value: Any) -> str | None:
    # An empty pattern is a substring of every title: every track would count as commentary.
    return None if value.strip() else "a non-empty text (an empty pattern matches every title)"


@dataclass(frozen=True)
class Policy:
    """What a conforming file looks like. Language codes are stored as ISO 639-2/B."""

    audio_languages: tuple[str, ...] = setting(
        ("eng",), doc="preference order; the first present becomes the only default audio track"
    )
    subtitle_languages: tuple[str, ...] = setting((), doc="preference order for subtitles")
    default_subtitle: str = setting(
        "forced", check=one_of("none", "forced", "preferred"), doc="which subtitle is default"
    )
    keep_audio_languages: tuple[str, ...] = setting((), doc="audio languages kept; empty keeps all")
    keep_subtitle_languages: tuple[str, ...] = setting(
        (), doc="subtitle languages kept; empty keeps all"
    )
    remove_commentary: bool = setting(False, doc="remove tracks whose title matches a pattern")
    commentary_patterns: tuple[str, ...] = setting(
        ("commentary", "director"), check=_non_empty, doc="case-insensitive substrings of commentary titles"
    )
    track_order: tuple[str, ...] = setting(
        TRACK_TYPES, check=_track_type, doc="order of track types; empty keeps the file's order"
    )
    untagged_language: str = setting("", doc="language given to tracks tagged und or untagged")
    clear_track_titles: bool = setting(False, doc="remove every track title")
    container: str = setting("keep", check=one_of("keep", "mkv"), doc="target container")
    backup: bool = setting(False, doc="keep NAME.orig.EXT beside a rewritten file")
    break_hardlinks: bool = setting(False, doc="allow a remux to split a file from its hard links")
    keep_mtime: bool = setting(True, doc="a remuxed file keeps its source's modification time")
    on_error: str = setting("skip", check=one_of("skip", "fail"), doc="what a failed file does to its batch")

    @cached_property
    def digest(self) -> str:
        """A short, stable identity of what this policy asks of a file: 16 hex digits,
        BLAKE2b (8 bytes) of the canonical JSON of every key except
        :data:`RESULT_NEUTRAL_KEYS`. Equal for equal policies in any process or version
        of Python; computed once per Policy object (a reload builds a new one).

        The Store records it with each result, so content judged under one policy is
        not taken as handled under another.
        """
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RESULT_NEUTRAL_KEYS}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.blake2b(canonical.encode("ascii"), digest_size=8).hexdigest()


def _normalize_languages(policy: Policy, source: Path | None) -> Policy:
    changes: dict[str, Any] = {}
    for key in LANGUAGE_LIST_KEYS:
        try:
            changes[key] = tuple(dict.fromkeys(normalize_language(v) for v in getattr(policy, key)))
        except LanguageError as exc:
            raise ConfigError(source, f"[policy] {key}", str(exc)) from None
    if policy.untagged_language:
        try:
            changes["untagged_language"] = normalize_language(policy.untagged_language)
        except LanguageError as exc:
            raise ConfigError(source, "[policy] untagged_language", str(exc)) from None
        if changes["untagged_language"] == UNDETERMINED:
            raise ConfigError(
                source, "[policy] untagged_language", 'expected a language other than "und" (or "" to leave tags alone)'
            )
    if len(set(policy.track_order)) != len(policy.track_order):
        raise ConfigError(source, "[policy] track_order", "expected each track type at most once")
    return replace(policy, **changes)


def policy_from_table(table: Mapping[str, Any], *, source: Path | None, base_dir: Path | None) -> Policy:
    """Build a :class:`Policy` from the ``[policy]`` table of a config file.

    ``policy_file = "PATH"`` (relative to ``base_dir``) loads the policy from that file
    instead: either its top level or its own ``[policy]`` table. It cannot be combined
    with other keys, so there is one place that says what the policy is.

    Raises:
        ConfigError: an unknown key, a wrong type, a bad language code or value.
    """
    if "policy_file" in table:
        others = sorted(k for k in table if k != "policy_file")
        if others:
            raise ConfigError(
                source, "[policy] policy_file", f"cannot be combined with other keys ({', '.join(others)})"
            )
        raw = table["policy_file"]
        if not isinstance(raw, str) or not raw:
            raise ConfigError(source, "[policy] policy_file", f"expected a path string, got {raw!r}")
        path = Path(raw).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            if source is not None and path.resolve() == Path(source).resolve():
                raise ConfigError(source, "[policy] policy_file", "names this file itself; name a separate policy file")
        except (OSError, RuntimeError):
            pass  # unresolvable (a symlink loop): load_toml below says why
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
        return policy_from_table(inner, source=path, base_dir=path.parent)
    policy = build_section(Policy, table, source=source, section="policy", base_dir=base_dir)
    return _normalize_languages(policy, source)
