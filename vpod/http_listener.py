"""The optional HTTP listener: ``GET /health``, ``GET /metrics``, the Sonarr/Radarr
webhooks (``POST /hooks/sonarr|radarr``), and the web page with its API (:mod:`vpod.web`).

This module is the daemon's handle on it: bind, serve in a thread of its own, switch
address on reload, close. The HTTP stack itself, a Falcon app served by waitress
(:mod:`vpod.http`), is imported by :meth:`HttpListener.start` only: a daemon without
``[http] listen`` never loads it.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import structlog
from prometheus_client import CollectorRegistry

from vpod.config import HttpConfig
from vpod.errors import VpodError
from vpod.listen_address import parse_listen_address  # moved there: the config check needs no HTTP stack

if TYPE_CHECKING:
    from vpod.hooks.receiver import HookReceiver
    from vpod.http.server import WaitressServer
    from vpod.web.services import WebServices
    from vpod.web.stream import StreamSlots

HealthCheck = Callable[[], "tuple[bool, dict[str, Any]]"]
"""Returns ``(healthy, body)``; ``body`` is sent as JSON with 200 or 503."""


class ListenError(VpodError):
    """The HTTP listener cannot bind its address (in use, not a local address, permission)."""


class HttpListener:
    """Serves the app on one address until :meth:`close`.

    Args:
        listen: ``"HOST:PORT"`` (see :func:`parse_listen_address`).
        health: the health check.
        registry: the metrics to expose.
        hooks: answers ``/hooks/sonarr|radarr`` (``None``: they answer 403).
        limits: ``[http]``: body size, request rate, connections, idle timeout, the web
            API's token and base path.
        web: the daemon for the web page and API (``None``: not served).

    Raises:
        ValueError: a malformed address.
    """

    def __init__(
        self, listen: str, health: HealthCheck, registry: CollectorRegistry, *,
        hooks: HookReceiver | None = None, limits: HttpConfig | None = None, web: WebServices | None = None,
    ) -> None:
        self.listen = listen
        self.web = web
        self._streams: StreamSlots | None = None
        self._address = parse_listen_address(listen)
        self._health = health
        self._registry = registry
        self.hooks = hooks
        self.limits = limits or HttpConfig()
        self._server: WaitressServer | None = None
        self._socket: socket.socket | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self.log = structlog.get_logger("vpod")

    @property
    def serving(self) -> bool:
        """Bound and serving (between :meth:`start` and :meth:`close`)."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self._port

    def start(self) -> None:
        """Bind and serve in a background thread (waitress: an I/O thread and its app threads).

        Raises:
            ListenError: the address cannot be bound; the message names it and why.
        """
        from vpod.http.app import Services, make_app  # the HTTP stack: only with a listener
        from vpod.http.server import WaitressServer
        from vpod.web.security import is_loopback
        from vpod.web.stream import StreamSlots

        host, port = self._address
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ListenError(f"cannot listen on {self.listen} ([http] listen): {exc.strerror or exc}") from exc
        self._streams = StreamSlots(self.web.changes) if self.web is not None else None
        app = make_app(
            Services(self._health, self._registry, self.hooks, self.web, self._streams), self.limits,
            loopback=is_loopback(host),
        )
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        self._server = WaitressServer(app, sock, self.limits)
        self._thread = threading.Thread(target=self._server.run, name="vpod-http", daemon=True)
        self._thread.start()
        self.log.info(
            "http_listening", listen=self.listen, port=self.port,
            paths=["/health", "/metrics", "/hooks/sonarr", "/hooks/radarr",
                   *([f"{self.limits.base_path}/", f"{self.limits.base_path}/api/"] if self.web is not None else [])],
            webhooks=bool(self.hooks is not None and self.hooks.config.hooks.enabled),
        )
        if self.web is not None and not is_loopback(host) and not self.limits.token:
            self.log.warning(
                "http_web_locked", listen=self.listen,
                reason="not a loopback address and no [http] token: the page and its API answer 403",
                hint="set [http] token (or token_file), or listen on 127.0.0.1",
            )

    def close(self) -> None:
        """Stop serving and release the port; waits for the serving thread."""
        if self._server is None:
            return
        if self._streams is not None:
            had_streams = self._streams.open > 0
            self._streams.close()  # open event streams end now, freeing their threads
            self._streams.wait_closed(2.0)  # none writes once the sockets close (no EBADF in the trigger)
            if had_streams:
                time.sleep(0.1)  # their last chunk handed to waitress's I/O thread
        self._server.close()
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = None


def switch_listener(
    current: HttpListener | None, listen: str, health: HealthCheck, registry: CollectorRegistry, *,
    hooks: HookReceiver | None = None, limits: HttpConfig | None = None, web: WebServices | None = None,
) -> HttpListener | None:
    """Serve on ``listen`` instead of ``current`` (a config reload); ``""`` stops serving.

    The new address is bound before the old listener closes, so a failure leaves
    ``current`` serving. When the new address cannot be bound while ``current`` holds the
    same port (for example ``127.0.0.1:9810`` → ``0.0.0.0:9810``), ``current`` is closed,
    the new address tried again, and on failure ``current`` is bound again on its address.

    Returns:
        The listener now serving, or ``None`` for ``""``.

    Raises:
        ListenError: ``listen`` cannot be bound; ``current`` still serves (check
            :attr:`HttpListener.serving`: false only if its own address could not be
            bound again either).
    """
    if not listen:
        if current is not None:
            current.close()
        return None
    new = HttpListener(listen, health, registry, hooks=hooks, limits=limits, web=web)
    try:
        new.start()
    except ListenError:
        if current is None or not current.serving or current.port != parse_listen_address(listen)[1]:
            raise
        current.close()
        try:
            new.start()
        except ListenError:
            try:
                current.start()
            except ListenError:
                pass  # current.serving is false: the caller says so
            raise
    if current is not None:
        current.close()
    return new
