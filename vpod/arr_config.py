"""``[arr.NAME]``: the Sonarr and Radarr instances vpod talks to.

One table per instance, named by the user (``[arr.movies]``, ``[arr.tv]``)::

    [arr.movies]
    kind = "radarr"
    url = "http://127.0.0.1:7878"
    api_key_file = "/etc/vpod/radarr.key"
    path_mappings = { "/movies" = "/srv/media/movies" }

The connection keys (``kind``, ``url``, ``api_key`` or ``api_key_file``,
``timeout_seconds``, ``path_mappings``) are what any use of an instance needs: the
original language (:mod:`vpod.original`) and the rescan after a rename
(:mod:`vpod.integrations.arr_rescan`, ``rescan``). The keys ``refresh_seconds`` and
``when_unavailable`` are about the original language. Every key
reloads live (SIGHUP): the next file asks the instances of the new config.

The API key never appears in logs, ``repr`` or ``vpod config check`` (a ``secret``
setting, :func:`vpod.tomlschema.setting`).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from vpod.errors import ConfigError
from vpod.tomlschema import SectionT, build_section, one_of, setting, shown_value

ARR_KINDS = ("radarr", "sonarr")
"""What an instance may be: the two *arr applications whose v3 API vpod reads."""

UNAVAILABLE_CHOICES = ("retry", "fallback")
"""``when_unavailable``: wait for the instance (the file is retried later, reason
``original_language_unavailable``), or judge the file by the next sources of the
original language (:mod:`vpod.original.resolver`)."""

MAX_TIMEOUT_SECONDS = 120.0
"""Upper bound of ``timeout_seconds``: a worker waits at most this long for an instance."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _http_url(value: Any, example: str = "http://host:7878/radarr") -> str | None:
    """``None`` for an http(s) URL without user, password, query or fragment, else what
    was expected (never the value: the caller shows it masked,
    :func:`vpod.tomlschema.shown_value`)."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", "Port could not be cast ... 'x'"
        reason = re.sub(r"'.*'|\".*\"", "…", str(exc))  # never the value's text: it may be a password
        return f'a valid URL ({reason}; "{example}")'
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        return f'an http:// or https:// URL, with its URL base if it has one, no query ("{example}")'
    if parts.username or parts.password:
        return "a URL without a user name or password (the API key authenticates)"
    return None


def _timeout(value: Any) -> str | None:
    if 0 < value <= MAX_TIMEOUT_SECONDS:
        return None
    return f"a number of seconds > 0 and <= {MAX_TIMEOUT_SECONDS:g}"


def _refresh(value: Any) -> str | None:
    return None if 10 <= value <= 7 * 24 * 3600 else "a number of seconds from 10 to 604800 (7 days)"


def _no_blank(value: Any) -> str | None:
    return None if value.strip() else "a non-empty API key"


@dataclass(frozen=True)
class ArrInstance:
    """One Sonarr or Radarr instance (``[arr.NAME]``).

    Attributes:
        name: the table's name (``movies`` for ``[arr.movies]``): how logs and
            ``vpod plan`` name the instance.
        kind: ``radarr`` or ``sonarr``.
        url: the base URL, with the instance's URL base if it has one
            (``http://127.0.0.1:8989/sonarr``); vpod appends ``/api/v3/...``.
        api_key: the instance's API key (Settings → General), sent as ``X-Api-Key``;
            read from ``api_key_file`` when that is given. Never shown.
        api_key_file: a file holding the API key (whitespace around it is ignored), so
            the config file need not hold the secret.
        timeout_seconds: the longest a request to the instance may take, connect to
            last byte (seconds); a worker never waits longer for it.
        path_mappings: ``(remote, local)`` pairs: a path the instance reports starting
            with ``remote`` (as the *arr sees it, e.g. inside its Docker container) is
            read as ``local`` + the rest. The longest matching ``remote`` wins; paths no
            mapping matches are taken as they are.
        refresh_seconds: the instance's list (movies or series) is fetched again when
            it is older than this (seconds); see :mod:`vpod.original.catalog`.
        when_unavailable: ``retry`` (the file waits and is retried later) or
            ``fallback`` (judged without this instance) when it does not answer.
        rescan: after a container change renamed a file of one of its series or
            movies (``Film.mp4`` → ``Film.mkv``), ask the instance to rescan it
            (``RescanSeries`` / ``RescanMovie``, :mod:`vpod.integrations.arr_rescan`), so
            it does not mark the file missing.
    """

    name: str = ""
    kind: str = setting("", check=one_of(*ARR_KINDS), doc="radarr | sonarr")
    url: str = setting("", check=_http_url, doc="base URL, with the URL base if any")
    api_key: str = setting("", check=_no_blank, doc="the API key (Settings > General)", secret=True)
    api_key_file: Path | None = setting(None, doc="a file holding the API key, instead of api_key")
    timeout_seconds: float = setting(10.0, check=_timeout, doc="longest wait for one request, seconds")
    path_mappings: tuple[tuple[str, str], ...] = setting(
        (), doc='{ "/remote/path" = "/local/path" }: how the instance\'s paths read here'
    )
    refresh_seconds: float = setting(600.0, check=_refresh, doc="refetch the list when it is older than this")
    when_unavailable: str = setting(
        "retry", check=one_of(*UNAVAILABLE_CHOICES), doc="retry: the file waits for the instance; fallback: judged without it",
    )
    rescan: bool = setting(True, doc="ask it to rescan the series or movie after vpod renamed one of its files")

    def describe(self) -> str:
        """``radarr "movies" at http://127.0.0.1:7878`` (never the key)."""
        return f'{self.kind} "{self.name}" at {self.url}'

    def local_path(self, remote: str) -> Path:
        """The path here of a path the instance reports (``path_mappings`` applied:
        :func:`mapped_path`)."""
        return mapped_path(remote, self.path_mappings)[0]


def mapped_path(remote: str, mappings: tuple[tuple[str, str], ...]) -> tuple[Path, bool]:
    """``remote`` read through ``(remote prefix, local folder)`` ``mappings``: the longest
    matching prefix wins, compared by whole path components; Windows-style paths are
    compared with ``/`` for ``\\``. Returns the path here and whether a mapping matched
    (none: the path as it is)."""
    text = remote.replace("\\", "/") if _windows_path(remote) else remote
    best: tuple[int, str, str] | None = None
    for mapped_remote, local in mappings:
        prefix = mapped_remote.replace("\\", "/") if _windows_path(mapped_remote) else mapped_remote
        prefix = prefix.rstrip("/") or "/"
        if _under(text, prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), prefix, local)
    if best is None:
        return Path(text), False
    _, prefix, local = best
    rest = text[len(prefix):].lstrip("/")
    return (Path(local) / rest if rest else Path(local)), True


def _windows_path(text: str) -> bool:
    return bool(re.match(r"[A-Za-z]:[\\/]", text)) or text.startswith("\\\\")


def _under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return path.startswith("/")
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class ArrConfig:
    """``[arr]``: the configured instances, in the file's order (the order they are asked in)."""

    instances: tuple[ArrInstance, ...] = setting((), doc="[arr.NAME] tables, one per Sonarr/Radarr instance")

    def by_name(self, name: str) -> ArrInstance | None:
        """The instance called ``name``, or ``None``."""
        return next((i for i in self.instances if i.name == name), None)


def arr_section(table: Any, *, source: Path | None, base_dir: Path | None) -> ArrConfig:
    """Build :class:`ArrConfig` from the ``[arr]`` table: one sub-table per instance.

    ``api_key_file`` is read here, once per load (a reload reads it again).

    Raises:
        ConfigError: not a table of tables, a bad name, an unknown key, a wrong type or
            value, ``kind`` or ``url`` missing, neither or both of ``api_key`` and
            ``api_key_file``, a key file that cannot be read or is empty, or a
            ``path_mappings`` entry that is not remote = absolute local path.
    """
    named = named_tables(table, ArrInstance, section="arr", source=source, base_dir=base_dir,
                         what="a Sonarr or Radarr instance", keys="kind, url and api_key (or api_key_file)")
    instances = [_with_key(instance, raw, source, f"[arr.{instance.name}]") for instance, raw in named]
    return ArrConfig(tuple(instances))


def named_tables(
    table: Any, cls: type[SectionT], *, section: str, source: Path | None, base_dir: Path | None, what: str, keys: str
) -> list[tuple[SectionT, dict[str, Any]]]:
    """The ``[SECTION.NAME]`` sub-tables of ``table`` built as ``cls`` (a dataclass with
    ``name``, ``kind``, ``url`` and ``path_mappings``), each with its raw table: the
    name checked and set, ``path_mappings`` read, ``kind`` and ``url`` required. ``what``
    and ``keys`` word the errors ("a Sonarr or Radarr instance", "kind, url and api_key").

    Raises:
        ConfigError: as :func:`arr_section` says.
    """
    if not isinstance(table, dict):
        raise ConfigError(source, f"[{section}]", f"expected tables [{section}.NAME], one per {what.split(' ', 1)[1]}")
    built = []
    for name, raw in table.items():
        where = f"[{section}.{name}]"
        if not _NAME.fullmatch(name):
            raise ConfigError(source, where, "expected a name of letters, digits, '_', '.' or '-'")
        if not isinstance(raw, dict):
            raise ConfigError(source, f"[{section}] {name}", f"expected a table [{section}.NAME] with {keys}")
        if "name" in raw:
            raise ConfigError(source, f"{where} name", "unknown key: the table's name is its name")
        item = build_section(cls, raw, source=source, section=f"{section}.{name}", base_dir=base_dir, skip=("path_mappings",))
        item = replace(item, name=name, path_mappings=_mappings(raw.get("path_mappings", {}), source, where))
        for key in ("kind", "url"):
            if not getattr(item, key):
                raise ConfigError(source, f"{where} {key}", "required")
        built.append((item, raw))
    return built


def _mappings(raw: Any, source: Path | None, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(
            source, f"{where} path_mappings", f'expected a table {{ "/remote/path" = "/local/path" }}, got {shown_value(raw)}'
        )
    pairs = []
    for remote, local in raw.items():
        if not remote or not isinstance(local, str) or not PurePosixPath(local).is_absolute():
            raise ConfigError(
                source, f"{where} path_mappings",
                f'expected "/remote/path" = "/absolute/local/path", got {shown_value(remote)} = {shown_value(local)}',
            )
        pairs.append((remote, local.rstrip("/") or "/"))
    return tuple(pairs)


def _with_key(instance: ArrInstance, raw: dict[str, Any], source: Path | None, where: str) -> ArrInstance:
    """``instance`` with its API key, read from ``api_key_file`` when given."""
    if ("api_key" in raw) == (instance.api_key_file is not None):
        raise ConfigError(source, f"{where} api_key", "expected exactly one of api_key and api_key_file")
    if instance.api_key_file is None:
        return replace(instance, api_key=instance.api_key.strip())
    return replace(instance, api_key=read_secret_file(instance.api_key_file, source, f"{where} api_key_file", "API key"))


def read_secret_file(path: Path, source: Path | None, where: str, what: str) -> str:
    """The one word ``path`` holds (an API key, a token), whitespace around it ignored.

    Raises:
        ConfigError: naming ``where`` (``"[arr.tv] api_key_file"``): the file cannot be
            read, is not UTF-8, or holds no word or more than one.
    """
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(source, where, f"cannot read {path}: {reason}") from None
    if not key or any(c.isspace() for c in key):
        problem = "is empty" if not key else "holds more than one word (spaces inside)"
        raise ConfigError(source, where, f"{path} {problem}: expected the {what} alone, one word")
    return key
