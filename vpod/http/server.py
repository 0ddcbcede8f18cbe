"""waitress serving the app on a socket vpod bound, in threads of its own.

waitress reads each request whole on its one I/O thread (asynchronous sockets; a slow
or idle client holds a connection, never a thread) before one of :data:`THREADS` app
threads runs the app, so the daemon's workers never wait on a client. Its limits
(waitress docs, "Arguments to waitress.serve"):

- ``max_request_body_size`` = ``[http] max_body_bytes``: a longer declared or chunked
  body is answered 413 before the app runs, and only that much is ever buffered;
- ``connection_limit`` = ``[http] connection_limit``: beyond it no new connection is
  accepted until one closes;
- ``channel_timeout`` = ``[http] channel_timeout_seconds``: an idle connection is
  closed;
- ``max_request_header_size`` = :data:`MAX_HEADER_BYTES` (431 beyond);
- ``ident = "vpod"`` (the ``Server`` header), no tracebacks to clients, proxy headers
  from untrusted peers dropped.

The requests waitress answers itself (413, 431, a malformed request line: 400) are
logged as ``http_request_refused`` too, and every one of its own log lines (the
connection limit reached, "Task queue depth is N" of ``waitress.queue``, an exception in
the app) goes through vpod's log as ``http_server``: the JSON log stays one object a line.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any

import structlog
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask

from vpod.config import HttpConfig
from vpod.web.stream import MAX_STREAMS

THREADS = 4
"""App threads: a health check answers while a scrape or a webhook runs. Each open
event stream (``/api/events``) holds one more: :data:`vpod.web.stream.MAX_STREAMS` are
added, so streams never starve the other requests."""

MAX_HEADER_BYTES = 65_536
"""Largest request line and headers (bytes); a webhook's are a few hundred."""

CLEANUP_SECONDS = 15.0
"""How often idle connections are looked for (waitress ``cleanup_interval``): the I/O
thread wakes at most this often while nothing happens."""


class _LogAdapter:
    """waitress's ``logging.Logger`` calls as vpod log lines (``http_server``)."""

    def __init__(self) -> None:
        self.vpod_log = structlog.get_logger("vpod")

    def log_line(self, level: int, msg: str, *args: Any, exc_info: Any = None, **_: Any) -> None:
        text = (msg % args) if args else msg
        if level >= logging.ERROR:
            self.vpod_log.error("http_server", message=text, exc_info=exc_info)
        elif level >= logging.WARNING:
            self.vpod_log.warning("http_server", message=text)
        else:
            self.vpod_log.debug("http_server", message=text)

    def log(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        self.log_line(level, msg, *args, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        self.log_line(logging.DEBUG, msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        self.log_line(logging.INFO, msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self.log_line(logging.WARNING, msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self.log_line(logging.ERROR, msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        self.log_line(logging.ERROR, msg, *args, exc_info=True)


_LOGGER = _LogAdapter()

_REASONS = {413: "body_too_large", 431: "headers_too_large", 400: "bad_request"}
"""The reasons logged for waitress's own refusals, as the app names them."""


class _LoggedErrorTask(ErrorTask):  # type: ignore[misc]  # waitress ships no types
    """waitress's answer to a request it refused itself, logged like the app's refusals."""

    logger = _LOGGER

    def execute(self) -> None:
        """Log the refusal, then answer it as JSON like the app's refusals
        (``{"ok": false, "reason": ..., "error": ...}``) instead of waitress's plain
        text (``waitress.task.ErrorTask.execute``, done the same way: status, headers,
        close after the answer)."""
        error = self.request.error
        status = int(getattr(error, "code", 400))
        reason = _REASONS.get(status, str(getattr(error, "reason", "bad_request")).lower().replace(" ", "_"))
        text = str(getattr(error, "body", ""))[:200]
        structlog.get_logger("vpod").warning(
            "http_request_refused", status=status, reason=reason,
            error=text, client=str(self.channel.addr[0]) if self.channel.addr else "",
        )
        body = json.dumps({"ok": False, "reason": reason, "error": text or str(getattr(error, "reason", ""))}).encode()
        self.status = f"{status} {getattr(error, 'reason', 'Bad Request')}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Task(WSGITask):  # type: ignore[misc]
    logger = _LOGGER


class _Dispatcher(ThreadedTaskDispatcher):  # type: ignore[misc]
    """waitress's app threads, its ``waitress`` and ``waitress.queue`` lines ("Task queue
    depth is N" when requests wait for a thread) through vpod's log."""

    logger = _LOGGER
    queue_logger = _LOGGER


class _Forward(logging.Handler):
    """A record of the ``waitress`` loggers (and their children) waitress logs without
    the class attributes above (a future version's new logger) as a vpod line, never
    plain text beside the JSON."""

    def emit(self, record: logging.LogRecord) -> None:
        _LOGGER.log_line(record.levelno, record.getMessage(), exc_info=record.exc_info)


def _route_waitress_logs() -> None:
    """The ``waitress`` logger (so ``waitress.queue`` too) handled by :class:`_Forward`
    alone, not propagated to the root logger's plain-text handler. Idempotent."""
    logger = logging.getLogger("waitress")
    if not any(isinstance(h, _Forward) for h in logger.handlers):
        logger.handlers = [_Forward()]
    logger.propagate = False


class _Channel(HTTPChannel):  # type: ignore[misc]
    task_class = _Task
    error_task_class = _LoggedErrorTask
    logger = _LOGGER


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    logger = _LOGGER


class WaitressServer:
    """The app served on ``sock`` (bound, not listening) until :meth:`close`.

    :meth:`run` is the serving thread's body; :meth:`close` (any thread) wakes it, and it
    closes every connection and stops the app threads before returning.
    """

    def __init__(self, app: Any, sock: socket.socket, limits: HttpConfig) -> None:
        adj = Adjustments(
            sockets=[sock],
            threads=THREADS + MAX_STREAMS,
            connection_limit=limits.connection_limit,
            channel_timeout=int(limits.channel_timeout_seconds),
            cleanup_interval=int(CLEANUP_SECONDS),
            max_request_body_size=limits.max_body_bytes,
            max_request_header_size=MAX_HEADER_BYTES,
            ident="vpod",
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
            channel_request_lookahead=1,  # a closed event stream is seen at once (vpod.web.stream)
        )
        _route_waitress_logs()
        self._map: dict[int, Any] = {}
        self._dispatcher = _Dispatcher()
        self._dispatcher.set_thread_count(THREADS + MAX_STREAMS)
        self._server = _Server(
            app, self._map, True, sock, dispatcher=self._dispatcher, adj=adj, bind_socket=False,
            sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()),
        )
        self._closing = threading.Event()

    def run(self) -> None:
        """Serve until :meth:`close`: the I/O loop sleeps in ``poll`` until a socket is
        ready, the wake-up trigger fires, or :data:`CLEANUP_SECONDS` pass."""
        from waitress import wasyncore

        while not self._closing.is_set():
            wasyncore.loop(timeout=CLEANUP_SECONDS, map=self._map, use_poll=True, count=1)
        for dispatcher in list(self._map.values()):
            try:
                dispatcher.close()
            except OSError:
                pass
        self._dispatcher.shutdown(cancel_pending=True, timeout=5)

    def close(self) -> None:
        """Ask :meth:`run` to end (it returns within a moment)."""
        self._closing.set()
        try:
            self._server.pull_trigger()
        except OSError:
            pass
