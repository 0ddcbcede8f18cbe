"""vpod's configuration: one immutable :class:`VPOConfig`, built once and passed down.

Where the file comes from: ``--config PATH`` > ``$VPOD_CONFIG`` > ``~/.vpo/config.toml``.
A missing default file means built-in defaults; a missing file named explicitly is an
error. Values: CLI flag > config file > default. Every key is listed in
``contrib/config.example.toml``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from vpod.arr_config import ArrConfig, arr_section
from vpod.cpu import MAX_WORKERS
from vpod.errors import ConfigError
from vpod.integrations.settings import MediaServersConfig, NotifyConfig, media_servers_section, notify_section
from vpod.hooks.config import HooksConfig, hooks_section, read_secret
from vpod.hostname import host_name
from vpod.listen_address import parse_listen_address
from vpod.policy.policy import Policy, policy_from_table
from vpod.policy.selection import DEFAULT_POLICY, LibraryPolicy, libraries_from_table, policies_from_table
from vpod.tomlschema import (
    shown_value,
    at_least,
    build_section,
    in_range,
    distinct,
    load_toml,
    non_empty,
    one_of,
    seconds,
    section_as_dict,
    setting,
)
from vpod.libraries import library_names, name_problem
from vpod.watch.roots import overlapping_roots

CONFIG_ENV = "VPOD_CONFIG"
DATABASE_URL_ENV = "VPOD_DATABASE_URL"
DEFAULT_HOME = Path("~/.vpo")
DEFAULT_EXTENSIONS = ("mkv", "mp4", "m4v", "mov", "avi", "webm", "ts")
DEFAULT_IGNORE = (
    ".*",  # hidden files, including rsync's ".name.XXXXXX" temp files and vpod's own temp files
    "*.part",  # Firefox, wget, youtube-dl / yt-dlp
    "*.partial~",  # Safari
    "*.tmp",
    "*.!qB",  # qBittorrent incomplete files
    "*.crdownload",  # Chrome, Edge
    "*.download",
    "*.!ut",  # uTorrent
)


def _no_dot(value: Any) -> str | None:
    return None if value and not value.startswith(".") else "an extension without a leading dot"


@dataclass(frozen=True)
class WatchConfig:
    """``[watch]``: which folders to watch and when a file counts as completely written."""

    paths: tuple[Path, ...] = setting(
        (DEFAULT_HOME.expanduser() / "inbox",), check_list=(non_empty, distinct), doc="watched folders"
    )
    recursive: bool = setting(True, doc="watch subfolders too", live=False)
    extensions: tuple[str, ...] = setting(
        DEFAULT_EXTENSIONS, check=_no_dot, check_list=(non_empty,), doc="case-insensitive", live=False
    )
    ignore: tuple[str, ...] = setting(DEFAULT_IGNORE, doc="fnmatch globs on the file name", live=False)
    settle_seconds: float = setting(5.0, check=seconds(), doc="size+mtime quiet time")
    # Observers, filters and the pipeline's write rules are built once: restart-only.
    observer: str = setting("auto", check=one_of("auto", "inotify", "polling"), doc="event source", live=False)
    poll_interval_seconds: float = setting(5.0, check=seconds(), doc="polling period", live=False)
    scan_on_start: bool = setting(True, doc="queue files that appeared while vpod was down")
    follow_symlinks: bool = setting(
        False, doc="read symlinks that point outside the roots (never written)", live=False
    )
    libraries: tuple[tuple[str, Path], ...] = setting(
        (), doc='[watch.libraries] NAME = "/path": named watched folders (name, path); see vpod.libraries'
    )

    @property
    def library_names(self) -> dict[Path, str]:
        """The library name of each watched folder (absolute path -> name), see
        :func:`vpod.libraries.library_names`."""
        named = {name: path.absolute() for name, path in self.libraries}
        return library_names([p.absolute() for p in self.paths], named)


_HOURS_WINDOW = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$")


def _hours_window(value: Any) -> str | None:
    return None if isinstance(value, str) and _HOURS_WINDOW.match(value) else '"HH:MM-HH:MM", e.g. "22:00-07:00"'


def _per_gib(value: Any) -> str | None:
    return None if 0 <= value <= 86400 else "a number of seconds from 0 to 86400 (one day per GiB)"


def _device_path(value: Any) -> str | None:
    # A relative path would be resolved against whatever folder vpod runs in.
    return None if os.path.isabs(value) else 'an absolute path of a DRM render node, e.g. "/dev/dri/renderD128"'


@dataclass(frozen=True)
class ProcessingConfig:
    """``[processing]``: worker threads, queue bound, batch windows and time limits."""

    workers: int | None = setting(
        None, check=in_range(1, MAX_WORKERS), doc="worker threads; not set: half the CPUs (plus max_transcodes when a policy encodes); capped at half plus max_transcodes"
    )
    queue_size: int = setting(256, check=in_range(1, 1_000_000), doc="no longer used: free workers claim one file each, none are read ahead (accepted for old configs)", live=False)
    batch_window_seconds: float = setting(60.0, check=seconds(), doc="BatchResult period")
    shutdown_timeout_seconds: float = setting(30.0, check=seconds(), doc="drain limit")
    probe_timeout_seconds: float = setting(
        60.0, check=seconds(), doc="kill one mkvmerge -J / ffprobe run (it reads headers) after this"
    )
    tool_timeout_seconds: float = setting(
        600.0, check=seconds(), doc="base limit of a remux, header edit or other tool run"
    )
    tool_timeout_seconds_per_gib: float = setting(
        300.0, check=_per_gib, doc="added to tool_timeout_seconds per GiB of the file"
    )
    max_attempts: int = setting(3, check=in_range(1, 1000), doc="tries for transient failures")
    max_transcodes: int = setting(
        1, check=in_range(1, MAX_WORKERS), doc="files encoded at once (the transcode lane), within the workers"
    )
    transcode_hours: tuple[str, ...] = setting(
        (), check=_hours_window, doc='windows "HH:MM-HH:MM" (local time) in which new transcodes start; empty: any time'
    )
    transcode_nice: int = setting(10, check=in_range(0, 19), doc="nice value of encoders (0: as vpod)")
    transcode_ionice: str = setting(
        "idle", check=one_of("idle", "best-effort", "none"), doc="I/O scheduling class of encoders (ionice(1))"
    )
    transcode_timeout_seconds_per_hour: float = setting(
        28800.0, check=seconds(), doc="added to tool_timeout_seconds per hour of the file's duration for an encode"
    )
    vaapi_device: str = setting(
        "/dev/dri/renderD128", check=_device_path, doc="the VAAPI render node hardware encoders use (an absolute path)"
    )


def _database_url(value: Any) -> str | None:
    if value == "" or re.match(r"^postgres(ql)?://", value):
        return None
    return '"postgresql://USER@HOST:PORT/DATABASE" (PostgreSQL, several nodes), or "" for SQLite at path'


def _absolute_or_empty(value: Any) -> str | None:
    return None if value == "" or os.path.isabs(value) else 'an absolute path, or "" for none'


@dataclass(frozen=True)
class DatabaseConfig:
    """``[database]``: the SQLite file (one machine), or a PostgreSQL URL (several nodes).

    ``url`` empty means SQLite at ``path``, exactly as before; ``$VPOD_DATABASE_URL``
    overrides ``url`` (read once, by :func:`load_config`). The password is never written
    in logs or messages: give it in ``password_file`` (or ``~/.pgpass``, libpq's own), or
    in the URL, which is then shown without it. A password in the URL wins over
    ``password_file`` (:func:`vpod.db.secrets.choose_password`).
    """

    # The queue lives there: restart-only.
    path: Path = setting(DEFAULT_HOME.expanduser() / "vpod.db", doc="SQLite file", live=False)
    busy_timeout_seconds: float = setting(5.0, check=seconds(), doc="SQLITE_BUSY wait", live=False)
    url: str = setting(
        "", check=_database_url, doc='PostgreSQL URL; "" = SQLite at path', live=False, secret=True
    )
    password_file: str = setting(
        "", check=_absolute_or_empty, doc="file whose first line is the PostgreSQL password", live=False
    )
    # Claims and leases (docs/architecture.md "Claims and leases"): restart-only, a
    # lease's length is promised to the database when a job is claimed.
    lease_seconds: float = setting(
        60.0, check=seconds(), doc="a claimed file's lease: another node may take it once it ends", live=False
    )
    lease_heartbeat_seconds: float = setting(
        15.0, check=seconds(), doc="how often the leases of files making progress are renewed", live=False
    )


def _node_name(value: Any) -> str | None:
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value) or "/" in value:
        return 'a name without "/", control characters or leading or trailing spaces ("" = the host name)'
    return None


@dataclass(frozen=True)
class NodeConfig:
    """``[node]``: this machine as one node of a database several vpods share."""

    # Rows, temps and library folders are recorded under it: restart-only.
    name: str = setting("", check=_node_name, doc='this node\'s name; "" = the host name', live=False)

    @property
    def node_name(self) -> str:
        """The name in force: :attr:`name`, or this machine's host name when it is ``""``
        (:func:`vpod.hostname.host_name`)."""
        return self.name or host_name()


@dataclass(frozen=True)
class LoggingConfig:
    """``[logging]``: structured log level and format on stderr."""

    level: str = setting("info", check=one_of("debug", "info", "warning", "error"), doc="minimum level")
    format: str = setting(
        "auto", check=one_of("auto", "json", "console"), doc="auto: console on a terminal, else JSON"
    )
    timestamps: str = setting(
        "utc", check=one_of("utc", "local"), doc="utc (…Z) or local time with its UTC offset"
    )


WEB_TOKEN_MIN_CHARS = 16
"""The shortest ``[http] token`` accepted (a guessable token is no protection)."""


def _web_token(value: Any) -> str | None:
    if value == "":
        return None
    if any(c.isspace() for c in value) or len(value) < WEB_TOKEN_MIN_CHARS:
        return f"one word of {WEB_TOKEN_MIN_CHARS} characters or more (e.g. from `openssl rand -hex 24`), or \"\""
    return None


def _host_names(value: Any) -> str | None:
    """``[http] allowed_hosts``: bare host names or addresses, no port, scheme or path
    (``value``: one of them, or all)."""
    for name in [value] if isinstance(value, str) else value:
        if not name or any(c in name for c in "/:@ \t") or name != name.strip("."):
            return f'host names without port, scheme or path (e.g. ["nas.example"]); {name[:60]!r} is not one'
    return None


def _base_path(value: Any) -> str | None:
    if value == "":
        return None
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
        return '"" or a path such as "/vpod" (letters, digits, . _ ~ -; no trailing "/")'
    return None


def _listen_address(value: Any) -> str | None:
    if value == "":
        return None
    try:
        parse_listen_address(value)
    except ValueError:
        return '"HOST:PORT" (e.g. "127.0.0.1:9810"), or "" for no listener'
    return None


@dataclass(frozen=True)
class HttpConfig:
    """``[http]``: the optional listener (``/health``, ``/metrics``, ``/hooks/sonarr|radarr``)
    and the limits every request meets at the door (:mod:`vpod.http`). The limits apply
    when the listener starts (a restart, or a reload that changes ``listen``)."""

    listen: str = setting("", check=_listen_address, doc='"HOST:PORT"; empty turns the listener off')
    max_body_bytes: int = setting(
        1_048_576, check=in_range(1024, 64 * 1_048_576), live=False,
        doc="largest request body, bytes (413 beyond; a webhook is a few KiB)",
    )
    requests_per_second: float = setting(
        10.0, check=at_least(0.1), live=False, doc="each client's sustained request rate (429 beyond the burst; not /health, /metrics)"
    )
    request_burst: int = setting(100, check=in_range(1, 100_000), live=False, doc="requests a client may send at once")
    connection_limit: int = setting(
        100, check=in_range(1, 10_000), live=False, doc="open connections at most (waitress connection_limit)"
    )
    channel_timeout_seconds: float = setting(
        60.0, check=seconds(), live=False, doc="an idle connection is closed after this (waitress channel_timeout)"
    )
    # The web page and its API (vpod.web; README "HTTP API"): applied when the listener starts.
    token: str = setting(
        "", check=_web_token, live=False, secret=True,
        doc="the web API's token: every action needs it, and every read off loopback (16+ characters)",
    )
    token_file: Path | None = setting(None, live=False, doc="a file holding the token, instead of token")
    base_path: str = setting(
        "", check=_base_path, live=False, doc='serve the page and /api under this path ("/vpod"; "" = at the root)'
    )
    allowed_hosts: tuple[str, ...] = setting(
        (), check=_host_names, live=False,
        doc='host names a loopback listener also answers to (a reverse proxy on this machine passing Host: ["nas.example"])',
    )


@dataclass(frozen=True)
class VPOConfig:
    """The whole configuration. Build it with :func:`load_config`; never mutate it."""

    watch: WatchConfig = field(default_factory=WatchConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    policy: Policy = field(default_factory=Policy)
    arr: ArrConfig = field(default_factory=ArrConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    media_servers: MediaServersConfig = field(default_factory=MediaServersConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    policies: tuple[tuple[str, Policy], ...] = ()
    """``[policies.NAME]``: the named policies (name, policy); ``[policy]`` is ``"default"``."""
    library_policies: tuple[tuple[str, LibraryPolicy], ...] = ()
    """``[libraries.NAME]``: which policy judges each library's files (library name, choice);
    see :mod:`vpod.policy.selection`. Every key of both applies live on reload."""
    allow_root: bool = False
    source: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """The effective configuration as plain data (for ``vpod config check``)."""
        data = section_as_dict(self)
        data["watch"]["libraries"] = {str(name): str(path) for path, name in self.watch.library_names.items()}
        data["policies"] = {name: section_as_dict(policy) for name, policy in self.policies}
        data["libraries"] = {name: choice.as_dict() for name, choice in self.library_policies}
        del data["library_policies"]
        data["hooks"]["path_map"] = [{"remote": remote, "local": local} for remote, local in self.hooks.path_map]
        data["source"] = str(self.source) if self.source else None
        return data


_SECTIONS = {
    "watch": WatchConfig,
    "processing": ProcessingConfig,
    "database": DatabaseConfig,
    "node": NodeConfig,
    "logging": LoggingConfig,
    "http": HttpConfig,
}


def config_path(explicit: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """Which config file to read, and whether it was named explicitly.

    ``explicit`` (the ``--config`` flag) wins over ``$VPOD_CONFIG``, which wins over
    ``~/.vpo/config.toml``.
    """
    if explicit:
        return Path(explicit).expanduser().absolute(), True
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser().absolute(), True
    return (DEFAULT_HOME / "config.toml").expanduser(), False


def config_from_data(data: dict[str, Any], *, source: Path | None) -> VPOConfig:
    """Build a :class:`VPOConfig` from parsed TOML.

    Raises:
        ConfigError: unknown section or key, wrong type, a value out of range, or watch
            roots that overlap (the same folder twice, or one inside a recursive one).
    """
    base_dir = source.parent if source else None
    sections: dict[str, Any] = {}
    allow_root = False
    for name, table in data.items():
        if name == "allow_root":
            if not isinstance(table, bool):
                raise ConfigError(source, "allow_root", f"expected a boolean, got {shown_value(table)}")
            allow_root = table
        elif name == "policy":
            sections["policy"] = policy_from_table(table, source=source, base_dir=base_dir)
        elif name in ("policies", "libraries"):
            continue  # after [policy] and [watch], which they refer to
        elif name in _SECTION_BUILDERS:
            sections[name] = _SECTION_BUILDERS[name](table, source=source, base_dir=base_dir)
        elif name in _SECTIONS:
            sections[name] = build_section(
                _SECTIONS[name], table, source=source, section=name, base_dir=base_dir
            )
        else:
            known = ", ".join(
                f"[{s}]" for s in (*_SECTIONS, "policy", "policies", "libraries", "arr.NAME", "notify", "media_servers.NAME", "hooks")
            )
            raise ConfigError(source, f"[{name}]", f"unknown section or key (known: {known}, allow_root)")
    config = VPOConfig(**sections, allow_root=allow_root, source=source)
    _refuse_overlapping_roots(config.watch, source)
    _refuse_short_leases(config.database, source)
    return _with_policy_choices(config, data, base_dir)


def _http_section(table: Any, *, source: Path | None, base_dir: Path | None) -> HttpConfig:
    """``[http]``, with ``token_file`` read (:func:`vpod.hooks.config.read_secret`).

    Raises:
        ConfigError: as :func:`build_section`; both ``token`` and ``token_file``; a token
            file that cannot be read or holds a token too short.
    """
    section = build_section(HttpConfig, table, source=source, section="http", base_dir=base_dir)
    token = read_secret(section.token, section.token_file, "token", source, section="http")
    problem = _web_token(token)
    if problem:
        raise ConfigError(source, "[http] token_file", f"{section.token_file}: expected {problem}")
    return replace(section, token=token)


def _refuse_short_leases(database: DatabaseConfig, source: Path | None) -> None:
    """A lease must outlast two renewals: ``lease_seconds`` >= 2 x ``lease_heartbeat_seconds``
    (one lost renewal must not end a lease; docs/architecture.md "Claims and leases").

    Raises:
        ConfigError: the lease is shorter.
    """
    if database.lease_seconds < 2 * database.lease_heartbeat_seconds:
        raise ConfigError(
            source, "[database] lease_seconds",
            f"{database.lease_seconds:g} s is shorter than two renewals "
            f"(lease_heartbeat_seconds = {database.lease_heartbeat_seconds:g}): expected at least "
            f"{2 * database.lease_heartbeat_seconds:g}",
        )


def _with_policy_choices(config: VPOConfig, data: dict[str, Any], base_dir: Path | None) -> VPOConfig:
    """``config`` with its ``[policies]`` and ``[libraries]`` (:mod:`vpod.policy.selection`).

    Raises:
        ConfigError: a bad named policy, an unknown library or policy name, a bad rule.
    """
    policies: tuple[tuple[str, Policy], ...] = ()
    if "policies" in data:
        policies = policies_from_table(data["policies"], default=config.policy, source=config.source, base_dir=base_dir)
    libraries: tuple[tuple[str, LibraryPolicy], ...] = ()
    if "libraries" in data:
        libraries = libraries_from_table(
            data["libraries"], policies=(DEFAULT_POLICY, *(name for name, _ in policies)),
            libraries=config.watch.library_names.values(), source=config.source,
        )
    return replace(config, policies=policies, library_policies=libraries)


def _watch_section(table: Any, *, source: Path | None, base_dir: Path | None) -> WatchConfig:
    """``[watch]`` with its ``[watch.libraries]`` table (``NAME = "/path"``).

    A named folder is watched whether or not ``paths`` lists it too; when the file
    sets ``[watch.libraries]`` and no ``paths``, only the named folders are watched
    (not the default inbox).

    Raises:
        ConfigError: a bad name, a path that is not a string, one folder named twice,
            or two folders whose names clash.
    """
    if not isinstance(table, dict):
        raise ConfigError(source, "[watch]", "expected a table")
    section = build_section(WatchConfig, table, source=source, section="watch", base_dir=base_dir, skip=("libraries",))
    raw = table.get("libraries")
    if raw is None:
        return section
    if not isinstance(raw, dict):
        raise ConfigError(source, "[watch.libraries]", f'expected a table of NAME = "/path", got {shown_value(raw)}')
    named: list[tuple[str, Path]] = []
    for name, value in raw.items():
        problem = name_problem(name)
        if problem:
            raise ConfigError(source, f"[watch.libraries] {name!r}", f"expected {problem}")
        if not isinstance(value, str) or not value:
            raise ConfigError(source, f"[watch.libraries] {name}", f"expected a path string, got {shown_value(value)}")
        path = Path(value).expanduser()
        named.append((name, path if path.is_absolute() or base_dir is None else base_dir / path))
    folders = [path.absolute() for _, path in named]
    if len(set(folders)) != len(folders):
        raise ConfigError(source, "[watch.libraries]", "each folder at most once (one name per library)")
    listed = section.paths if "paths" in table else ()
    paths = (*listed, *(p for _, p in named if p.absolute() not in {x.absolute() for x in listed}))
    section = replace(section, paths=tuple(paths), libraries=tuple(named))
    names = list(section.library_names.values())
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ConfigError(
            source, "[watch.libraries]", f"two folders would share the library name {clashes[0]!r}: name them apart"
        )
    return section



_SECTION_BUILDERS: dict[str, Callable[..., Any]] = {
    "watch": _watch_section,
    "http": _http_section,
    "arr": arr_section,
    "notify": notify_section,
    "media_servers": media_servers_section,
    "hooks": hooks_section,
}
"""The sections built by a function of their own (secrets read from files, sub-tables),
not by :func:`build_section` from :data:`_SECTIONS` alone; each is called as
``builder(table, source=..., base_dir=...)``."""

def _refuse_overlapping_roots(watch: WatchConfig, source: Path | None) -> None:
    """One folder, one root: two paths reaching the same folder (by device and inode:
    a bind mount, a symlink) or, when recursive, one inside another, would give a file
    one job per root. Refused rather than merged, so the config says what is watched
    and under which path the files are recorded. Only roots that exist are compared."""
    overlaps = overlapping_roots(watch.paths, recursive=watch.recursive)
    if overlaps:
        raise ConfigError(source, "[watch] paths", "; ".join(o.describe() for o in overlaps))


def load_config(explicit: str | os.PathLike[str] | None = None) -> VPOConfig:
    """Load the configuration from the file :func:`config_path` picks.

    Raises:
        ConfigError: the file is missing although named explicitly, unreadable, not
            TOML, or holds a bad value.
    """
    path, named = config_path(explicit)
    try:
        path.stat()
    except FileNotFoundError:
        if named:
            raise ConfigError(path, None, "config file not found") from None
        return with_database_url_from_env(VPOConfig())
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror}") from None
    return with_database_url_from_env(config_from_data(load_toml(path), source=path))


def with_database_url_from_env(config: VPOConfig, environ: dict[str, str] | None = None) -> VPOConfig:
    """``config`` with ``[database] url`` taken from ``$VPOD_DATABASE_URL`` when that is
    set and not empty (a URL, with its password if any, kept out of the config file).

    Raises:
        ConfigError: the variable holds something that is not a PostgreSQL URL.
    """
    url = (os.environ if environ is None else environ).get(DATABASE_URL_ENV, "")
    if not url:
        return config
    problem = _database_url(url)
    if problem:
        raise ConfigError("environment", f"${DATABASE_URL_ENV}", f"expected {problem}")
    return replace(config, database=replace(config.database, url=url))


def fallback_database_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The database a config file that does not load names, read leniently: only its
    ``[database] path`` counts (``vpod status`` needs nothing else while the daemon runs
    on its last good config).

    When the file is not valid TOML, its ``[database]`` table alone (from the header to
    the next table) is parsed. Returns the path, resolved as :func:`load_config` would;
    the default database when the file is valid TOML and sets none; ``None`` when the
    file cannot be read, or its ``[database]`` table or path cannot be understood, or it
    is not valid TOML and has no readable ``[database] path`` (not even a config file,
    perhaps: its database is unknown, not the default).
    """
    path, _named = config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    data: dict[str, Any] | None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        data = _database_table_alone(text)
        if data is None or "path" not in data.get("database", {}):
            # Broken TOML without a readable [database] path: it may name one we cannot
            # see (or not be a config at all); the default database would be a guess.
            return None
    table = data.get("database", {})
    try:
        section = build_section(DatabaseConfig, table, source=path, section="database", base_dir=path.parent)
    except ConfigError:
        return None
    return section.path


def _database_table_alone(text: str) -> dict[str, Any] | None:
    """``{"database": {...}}`` parsed from the ``[database]`` table of a file that is not
    valid TOML as a whole; ``{}`` when it has no such table; ``None`` when that table is
    broken too."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.fullmatch(r"\s*\[\s*database\s*\]\s*(#.*)?", line)), None)
    if start is None:
        # A dotted key or inline table (database.path = ..., database = {...}) is not guessed at.
        return None if re.search(r"^\s*database\s*[.=]", text, re.MULTILINE) else {}
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    try:
        return tomllib.loads("\n".join(lines[start:end]))
    except tomllib.TOMLDecodeError:
        return None


def with_overrides(config: VPOConfig, *, workers: int | None = None, on_error: str | None = None) -> VPOConfig:
    """Apply CLI flags on top of the file's values (CLI > file > default)."""
    if workers is not None:
        config = replace(config, processing=replace(config.processing, workers=workers))
    if on_error is not None:
        # Global: every named policy follows [policy] on_error.
        config = replace(
            config, policy=replace(config.policy, on_error=on_error),
            policies=tuple((name, replace(policy, on_error=on_error)) for name, policy in config.policies),
        )
    return config
