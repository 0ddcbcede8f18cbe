"""The optional HTTP listener: ``GET /health`` (JSON) and ``GET /metrics`` (Prometheus).

Built on the standard library's :class:`http.server.ThreadingHTTPServer` (one thread per
request, so a slow scrape never blocks a health check); the metrics text comes from
``prometheus_client``'s exposition encoder, which also serves OpenMetrics when the
scraper asks for it in ``Accept``. The serving thread sleeps in ``select()`` on the
listening socket and a wake-up pipe: no polling while idle.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from vpod.errors import VpodError
from vpod.listen_address import parse_listen_address  # moved there: the config check needs no HTTP stack

HealthCheck = Callable[[], "tuple[bool, dict[str, Any]]"]
"""Returns ``(healthy, body)``; ``body`` is sent as JSON with 200 or 503."""


class ListenError(VpodError):
    """The HTTP listener cannot bind its address (in use, not a local address, permission)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], health: HealthCheck, registry: CollectorRegistry) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.health = health
        self.registry = registry
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "vpod"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/health":
            healthy, body = self.server.health()
            self._send(200 if healthy else 503, "application/json", json.dumps(body).encode())
        elif path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(self.server.registry))
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /health or /metrics\n")

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # scrapes every few seconds would flood the log


class HttpListener:
    """Serves ``/health`` and ``/metrics`` on one address until :meth:`close`.

    Args:
        listen: ``"HOST:PORT"`` (see :func:`parse_listen_address`).
        health: the health check.
        registry: the metrics to expose.

    Raises:
        ValueError: a malformed address.
    """

    def __init__(self, listen: str, health: HealthCheck, registry: CollectorRegistry) -> None:
        self.listen = listen
        self._address = parse_listen_address(listen)
        self._health = health
        self._registry = registry
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._closing = threading.Event()
        self.log = structlog.get_logger("vpod")

    @property
    def serving(self) -> bool:
        """Bound and serving (between :meth:`start` and :meth:`close`)."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        assert self._server is not None
        return self._server.server_address[1]

    def start(self) -> None:
        """Bind and serve in a background thread.

        Raises:
            ListenError: the address cannot be bound; the message names it and why.
        """
        try:
            self._server = _Server(self._address, self._health, self._registry)
        except OSError as exc:
            raise ListenError(f"cannot listen on {self.listen} ([http] listen): {exc.strerror or exc}") from exc
        self._closing.clear()  # a listener closed for a switch may be started again
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._serve, name="vpod-http", daemon=True)
        self._thread.start()
        self.log.info("http_listening", listen=self.listen, port=self.port, paths=["/health", "/metrics"])

    def _serve(self) -> None:
        assert self._server is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing.is_set():
                for key, _ in selector.select():
                    if key.fd == self._server.socket.fileno() and not self._closing.is_set():
                        self._server.handle_request()  # the socket is readable: accept() won't block

    def close(self) -> None:
        """Stop serving and release the port; waits for the serving thread."""
        if self._server is None:
            return
        self._closing.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
        self._server.server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._server = None


def switch_listener(
    current: HttpListener | None, listen: str, health: HealthCheck, registry: CollectorRegistry
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
    new = HttpListener(listen, health, registry)
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
