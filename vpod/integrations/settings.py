"""``[notify]`` and ``[media_servers.NAME]``: where vpod sends notifications and which
media servers refresh a renamed file.

::

    [notify]
    urls_file = "/etc/vpod/notify.urls"   # Apprise URLs, one a line (or urls = [...])
    events = ["file_failed", "processing_paused", "batch_summary"]

    [media_servers.living-room]
    kind = "jellyfin"
    url = "http://127.0.0.1:8096"
    token_file = "/etc/vpod/jellyfin.token"
    path_mappings = { "/media" = "/srv/media" }

Apprise URLs and tokens are secrets (``setting(..., secret=True)``): never logged nor
shown by ``vpod config check``. Every key reloads live (SIGHUP).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vpod.arr_config import ArrConfig, _http_url, _timeout, _under, _windows_path, named_tables, read_secret_file
from vpod.errors import ConfigError
from vpod.tomlschema import build_section, in_range, one_of, setting

NOTIFY_EVENTS = ("file_failed", "processing_paused", "watch_folder_lost", "watch_folder_restored", "batch_summary")
"""What ``[notify] events`` may name: a file failed for good; processing paused
(``on_error = "fail"``); a watched folder was lost or came back; a batch closed (one
message per batch window, with its counts and failures)."""

MEDIA_SERVER_KINDS = ("jellyfin", "emby", "plex")

def _media_url(value: Any) -> str | None:
    return _http_url(value, "http://host:8096 (Jellyfin, Emby), http://host:32400 (Plex)")


def _max_retry(value: Any) -> str | None:
    return None if 0 < value <= 3600 else "a number of seconds > 0 and <= 3600"


@dataclass(frozen=True)
class NotifyConfig:
    """``[notify]``: Apprise notifications (:mod:`vpod.integrations.notifications`).

    Attributes:
        urls: Apprise URLs (``ntfys://topic``, ``tgram://token/chat``, ``json://host/path``,
            ...; https://github.com/caronc/apprise/wiki). Secret: they hold tokens.
        urls_file: a file of more URLs, one a line (``#`` starts a comment), so the
            config file need not hold them; read at each (re)load.
        events: which events are sent (:data:`NOTIFY_EVENTS`).
        attempts: tries per message and URL before it is dropped (counted in
            ``vpod_notifications_dropped_total{reason="undelivered"}``).
        retry_seconds: the wait before the second try (seconds); it doubles per try,
            up to ``max_retry_seconds``.
        max_retry_seconds: the longest wait between two tries (seconds).
        max_per_minute: at most this many messages per URL in any 60 s; more wait in
            the queue.
        queue_size: messages waiting per URL at most; more are dropped (counted,
            ``reason="queue_full"``): a dead target never grows memory.
        timeout_seconds: ``vpod notify test`` and shutdown wait at most this long for
            the queue to drain (seconds).
    """

    urls: tuple[str, ...] = setting((), doc="Apprise URLs (they hold tokens: secret)", secret=True)
    urls_file: Path | None = setting(None, doc="a file of Apprise URLs, one a line")
    events: tuple[str, ...] = setting(NOTIFY_EVENTS, check=one_of(*NOTIFY_EVENTS), doc="which events are sent")
    attempts: int = setting(5, check=in_range(1, 20), doc="tries per message and URL")
    retry_seconds: float = setting(5.0, check=_max_retry, doc="first wait before a retry (doubles)")
    max_retry_seconds: float = setting(300.0, check=_max_retry, doc="longest wait between tries")
    max_per_minute: int = setting(20, check=in_range(1, 10_000), doc="messages per URL per minute at most")
    queue_size: int = setting(100, check=in_range(1, 100_000), doc="messages waiting per URL at most")
    timeout_seconds: float = setting(10.0, check=_timeout, doc="longest wait to drain at shutdown and in vpod notify test")

    @property
    def enabled(self) -> bool:
        """True when at least one URL is configured."""
        return bool(self.urls)


def notify_section(table: Any, *, source: Path | None, base_dir: Path | None) -> NotifyConfig:
    """Build :class:`NotifyConfig` from the ``[notify]`` table; ``urls_file``'s URLs are
    appended to ``urls`` (read once per load).

    Raises:
        ConfigError: an unknown key, a wrong type or value, an unreadable ``urls_file``,
            or a URL without ``scheme://``.
    """
    config = build_section(NotifyConfig, table, source=source, section="notify", base_dir=base_dir)
    for number, url in enumerate(config.urls, 1):
        if not _apprise_like(url):
            raise ConfigError(source, "[notify] urls", f"URL {number} is not an Apprise URL (scheme://...)")
    urls = list(config.urls)
    if config.urls_file is not None:
        try:
            text = config.urls_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(source, "[notify] urls_file", f"cannot read {config.urls_file}: {reason}") from None
        for line_number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not _apprise_like(line.strip()):
                raise ConfigError(source, "[notify] urls_file",
                                  f"{config.urls_file} line {line_number} is not an Apprise URL (scheme://...)")
            urls.append(line.strip())
    return replace(config, urls=tuple(urls))


def _apprise_like(url: str) -> bool:
    return "://" in url and not any(c.isspace() for c in url)


@dataclass(frozen=True)
class MediaServer:
    """One media server (``[media_servers.NAME]``) that refreshes a renamed file's path
    (:mod:`vpod.integrations.media_servers`).

    Attributes:
        name: the table's name, how logs name the server.
        kind: ``jellyfin``, ``emby`` or ``plex``.
        url: its base URL, with its URL base if it has one (``http://host:8096``,
            ``http://host:32400``).
        token: Jellyfin: an API key (Dashboard → API Keys); Emby: an API key (Settings →
            Advanced → API Keys); Plex: an ``X-Plex-Token``
            (https://support.plex.tv/articles/204059436). Never shown.
        token_file: a file holding the token, instead of ``token``.
        timeout_seconds: the longest one request may take (seconds).
        path_mappings: ``(server path, local path)`` pairs, as ``[arr.NAME]
            path_mappings``: a path here under ``local`` is sent as ``server path`` +
            the rest (the longest matching local prefix wins).
    """

    name: str = ""
    kind: str = setting("", check=one_of(*MEDIA_SERVER_KINDS), doc="jellyfin | emby | plex")
    url: str = setting("", check=_media_url, doc="base URL, with the URL base if any")
    token: str = setting("", doc="API key (Jellyfin, Emby) or X-Plex-Token", secret=True)
    token_file: Path | None = setting(None, doc="a file holding the token, instead of token")
    timeout_seconds: float = setting(5.0, check=_timeout, doc="longest wait for one request, seconds")
    path_mappings: tuple[tuple[str, str], ...] = setting(
        (), doc='{ "/server/path" = "/local/path" }: how the server sees the folders'
    )

    def describe(self) -> str:
        """``jellyfin "living-room"`` (never the token)."""
        return f'{self.kind} "{self.name}"'

    def sees(self, local: Path) -> bool:
        """True when the server is told of ``local``: ``path_mappings`` is empty (the
        server sees the folders where vpod does), or one of its local folders holds
        ``local``."""
        text = str(local)
        return not self.path_mappings or any(_under(text, mapped) for _, mapped in self.path_mappings)

    def server_path(self, local: Path) -> str:
        """``local`` as the server sees it: the longest matching local prefix of
        ``path_mappings`` replaced by its server path (``/`` joins a Windows path's parts
        as the server's own separator is unknown; a ``C:\\`` server path keeps ``\\``)."""
        text = str(local)
        best: tuple[int, str, str] | None = None
        for remote, mapped in self.path_mappings:
            if _under(text, mapped) and (best is None or len(mapped) > best[0]):
                best = (len(mapped), mapped, remote)
        if best is None:
            return text
        _, mapped, remote = best
        rest = text[len(mapped):].lstrip("/")
        separator = "\\" if _windows_path(remote) else "/"
        base = remote.rstrip("/\\")
        return f"{base}{separator}{rest.replace('/', separator)}" if rest else base or remote


@dataclass(frozen=True)
class MediaServersConfig:
    """``[media_servers]``: the configured servers, in the file's order."""

    servers: tuple[MediaServer, ...] = setting((), doc="[media_servers.NAME] tables, one per server")


def media_servers_section(table: Any, *, source: Path | None, base_dir: Path | None) -> MediaServersConfig:
    """Build :class:`MediaServersConfig` from ``[media_servers]``: one sub-table each.

    Raises:
        ConfigError: not a table of tables, a bad name, an unknown key, a wrong value,
            ``kind`` or ``url`` missing, neither or both of ``token`` and ``token_file``,
            an unreadable token file, or a bad ``path_mappings`` entry.
    """
    servers = []
    for server, raw in named_tables(table, MediaServer, section="media_servers", source=source, base_dir=base_dir,
                                    what="a media server", keys="kind, url and token (or token_file)"):
        where = f"[media_servers.{server.name}]"
        if ("token" in raw) == (server.token_file is not None):
            raise ConfigError(source, f"{where} token", "expected exactly one of token and token_file")
        if server.token_file is not None:
            server = replace(server, token=read_secret_file(server.token_file, source, f"{where} token_file", "token"))
        elif not server.token.strip() or any(c.isspace() for c in server.token.strip()):
            raise ConfigError(source, f"{where} token", "expected a token (one word)")
        servers.append(replace(server, token=server.token.strip()))
    return MediaServersConfig(tuple(servers))


def rename_calls_wanted(arr: ArrConfig, media_servers: MediaServersConfig) -> bool:
    """True when a rename makes any call: an ``[arr.NAME]`` with ``rescan = true``, or a
    ``[media_servers.NAME]`` (:mod:`vpod.integrations.renames`)."""
    return any(i.rescan for i in arr.instances) or bool(media_servers.servers)
