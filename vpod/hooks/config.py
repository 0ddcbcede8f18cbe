"""``[hooks]``: who may call ``/hooks/sonarr`` and ``/hooks/radarr``, and how the *arr's
paths read here.

::

    [hooks]
    username = "sonarr"                     # HTTP basic auth: the connection's Username
    password_file = "/etc/vpod/hook.pass"   # and Password (or password = "...")
    api_key_file = "/etc/vpod/hook.key"     # or an X-Api-Key header (or api_key = "...")

    [[hooks.path_map]]
    remote = "/tv"                          # the library as the *arr sees it (its container)
    local = "/srv/media/tv"                 # the same folder here

The secrets (``password``, ``api_key``) are ``secret`` settings: never in logs, ``repr``
or ``vpod config check``. The ``*_file`` variants are read at each load (start and
reload), as ``[arr.NAME] api_key_file`` is. Without a username nor an API key the hooks
are off: every call is refused (403), whatever it carries. Every key reloads live.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from vpod.errors import ConfigError
from vpod.tomlschema import build_section, setting, shown_value


def _one_word(value: Any) -> str | None:
    return None if value.strip() and not any(c.isspace() for c in value.strip()) else "one word, no spaces"


@dataclass(frozen=True)
class HooksConfig:
    """``[hooks]``.

    Attributes:
        username, password: HTTP basic auth (RFC 7617), the *arr Webhook connection's
            Username and Password fields; both or neither.
        password_file: a file holding the password (whitespace around it ignored).
        api_key: accepted in an ``X-Api-Key`` header instead (the connection's Headers
            field, Sonarr v4 / Radarr v5); ``api_key_file``: a file holding it.
        path_map: ``(remote, local)`` pairs: a path the *arr sends starting with
            ``remote`` reads as ``local`` + the rest here; the longest matching
            ``remote`` wins (whole path components). When none matches, the
            ``path_mappings`` of the ``[arr.NAME]`` instance the call came from apply.
    """

    username: str = setting("", check=_one_word, doc="HTTP basic auth user name (the connection's Username)")
    password: str = setting("", check=_one_word, doc="HTTP basic auth password", secret=True)
    password_file: Path | None = setting(None, doc="a file holding the password, instead of password")
    api_key: str = setting("", check=_one_word, doc="accepted in an X-Api-Key header", secret=True)
    api_key_file: Path | None = setting(None, doc="a file holding the API key, instead of api_key")
    path_map: tuple[tuple[str, str], ...] = setting(
        (), doc='[[hooks.path_map]] remote = "/tv", local = "/srv/media/tv": the *arr\'s path, and here'
    )

    @property
    def enabled(self) -> bool:
        """Credentials are set: the hooks answer (else every call gets 403)."""
        return bool(self.username or self.api_key)


def hooks_section(table: Any, *, source: Path | None, base_dir: Path | None) -> HooksConfig:
    """Build :class:`HooksConfig` from the ``[hooks]`` table; the ``*_file`` secrets are
    read here.

    Raises:
        ConfigError: an unknown key, a wrong type, a password without a username (or
            the reverse), both a secret and its file, a file that cannot be read or
            holds no single word, a ``path_map`` entry that is not ``remote`` + an
            absolute ``local``.
    """
    if not isinstance(table, dict):
        raise ConfigError(source, "[hooks]", "expected a table")
    section = build_section(HooksConfig, table, source=source, section="hooks", base_dir=base_dir, skip=("path_map",))
    section = replace(section, path_map=_path_map(table.get("path_map", []), source))
    password = read_secret(section.password, section.password_file, "password", source)
    api_key = read_secret(section.api_key, section.api_key_file, "api_key", source)
    if bool(section.username) != bool(password):
        raise ConfigError(source, "[hooks] username", "expected both username and password (or password_file), or neither")
    return replace(section, password=password, api_key=api_key)


def read_secret(value: str, path: Path | None, key: str, source: Path | None, *, section: str = "hooks") -> str:
    """The secret ``[section] key``: ``value``, or the one word in the file ``path``
    (``key_file``; whitespace around it ignored).

    Raises:
        ConfigError: both are given, or the file cannot be read or holds no single word.
    """
    if path is None:
        return value.strip()
    if value:
        raise ConfigError(source, f"[{section}] {key}", f"expected one of {key} and {key}_file, not both")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(source, f"[{section}] {key}_file", f"cannot read {path}: {reason}") from None
    if _one_word(text or " "):
        what = "is empty" if not text else "holds more than one word (spaces inside)"
        raise ConfigError(source, f"[{section}] {key}_file", f"{path} {what}: expected the {key} alone, one word")
    return text


def _path_map(raw: Any, source: Path | None) -> tuple[tuple[str, str], ...]:
    where = "[[hooks.path_map]]"
    if not isinstance(raw, list):
        raise ConfigError(source, where, f'expected a list of tables {{ remote = "/tv", local = "/srv/tv" }}, got {shown_value(raw)}')
    pairs = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"remote", "local"}:
            raise ConfigError(source, where, f"expected the keys remote and local, got {shown_value(item)}")
        remote, local = item["remote"], item["local"]
        if not isinstance(remote, str) or not remote or not isinstance(local, str) or not PurePosixPath(local).is_absolute():
            raise ConfigError(source, where, f'expected remote = "/path/there", local = "/absolute/path/here", got {shown_value(item)}')
        pairs.append((remote, local.rstrip("/") or "/"))
    return tuple(pairs)
