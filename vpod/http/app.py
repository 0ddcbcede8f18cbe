"""The WSGI app: routes, and the checks every request meets at the door.

============================  =======================================================
``GET /health``               200 or 503, JSON (``StatusSnapshot.health``), as before
``GET /metrics``              Prometheus text, or OpenMetrics when ``Accept`` asks
``POST /hooks/sonarr|radarr`` a Sonarr/Radarr webhook (:mod:`vpod.hooks.receiver`)
``{base}/api/...``            the web API (:mod:`vpod.web.api`; README "HTTP API"),
                              behind :class:`vpod.web.security.WebSecurity`
anything else                 404 ``not found: try GET /health, ...`` (the routes
                              there are); 405 for a known path with another method
============================  =======================================================

In this order, each refusal one log line and nothing queued: the client's rate (429,
``Retry-After``; :mod:`vpod.http.limits`; never for ``/health`` and ``/metrics``,
:data:`UNLIMITED`), the webhooks switched on (403 without
``[hooks]`` credentials), the credentials (401, ``WWW-Authenticate: Basic``), the
content type (415 unless ``application/json``), the body's size (413 over
``[http] max_body_bytes``; waitress refuses a larger declared length before the app
runs, :mod:`vpod.http.server`), then the payload (400, 422).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import falcon
import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from vpod.config import HttpConfig
from vpod.hooks.payload import HOOK_KINDS
from vpod.hooks.receiver import HookReceiver
from vpod.http.auth import authorized
from vpod.http.limits import RateLimiter
from vpod.web.api import add_api_routes
from vpod.web.page import HISTORY_HOURS, add_page_routes
from vpod.web.security import SessionKeys, WebSecurity
from vpod.web.services import WebServices
from vpod.web.stream import StreamSlots

HealthCheck = Callable[[], "tuple[bool, dict[str, Any]]"]
"""Returns ``(healthy, body)``; ``body`` is sent as JSON with 200 or 503."""

UNLIMITED = ("/health", "/metrics")
"""Paths no client's rate limits (:class:`_RateLimit`): a monitor polls them, and they
answered every request before the webhooks came (issue 16: they "stay as they are")."""


def not_found_text(web_base: str | None) -> bytes:
    """The 404 body: the routes there are (``web_base``: ``[http] base_path`` when the
    page and API are served, else ``None``)."""
    routes = "GET /health, GET /metrics, POST /hooks/sonarr, POST /hooks/radarr"
    if web_base is not None:
        routes += f", the page GET {web_base}/ and the API GET {web_base}/api/..."
    return f"not found: try {routes}\n".encode()


NOT_FOUND = not_found_text(None)
"""The 404 body without the page and API."""


@dataclass(frozen=True)
class Services:
    """What the app serves: the health check, the metrics, the webhooks (``None``: no
    webhook receiver, every ``/hooks/`` call gets 403), the web page and API (``web``;
    ``None``: not served) with its event streams' slots (``streams``)."""

    health: HealthCheck
    registry: CollectorRegistry
    hooks: HookReceiver | None = None
    web: WebServices | None = None
    streams: StreamSlots | None = None


def make_app(
    services: Services, limits: HttpConfig, *, loopback: bool = True,
) -> falcon.App[falcon.Request, falcon.Response]:
    """The Falcon app serving ``services`` under ``limits`` (``[http]``); ``loopback``:
    the listener is bound to a loopback address (:mod:`vpod.web.security`)."""
    log = structlog.get_logger("vpod")
    keys = SessionKeys()  # this listener's login sessions (ended by POST /api/logout)
    middleware: list[Any] = [
        _RateLimit(RateLimiter(limits.requests_per_second, limits.request_burst), log),
        WebSecurity(limits.token, loopback, log, keys, limits.allowed_hosts),
    ]
    app = falcon.App(middleware=middleware)
    app.add_route("/health", _Health(services.health))
    app.add_route("/metrics", _Metrics(services.registry))
    app.add_route("/hooks/{kind}", _Hooks(services.hooks, limits.max_body_bytes, log))
    if services.web is not None and services.streams is not None:
        add_api_routes(app, services.web, services.streams, base=limits.base_path, token=limits.token, keys=keys)
        add_page_routes(app, services.web.snapshot, _page_history(services.web), base=limits.base_path)
    web_base = limits.base_path if services.web is not None and services.streams is not None else None
    app.add_error_handler(falcon.HTTPError, _error_handler(log, f"{limits.base_path}/api/", not_found_text(web_base)))
    app.add_error_handler(Exception, _bug_handler(log))
    return app


def refused(log: Any, req: falcon.Request, status: int, reason: str, **fields: Any) -> None:
    """Log one refused request: ``http_request_refused`` (a 404: info, else warning)."""
    method = log.info if status == 404 else log.warning
    method("http_request_refused", status=status, reason=reason, method=req.method, path=req.path[:200],
           client=req.remote_addr, **fields)


def _json(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = "application/json"
    resp.data = json.dumps(body).encode()


class _RateLimit:
    """Middleware: the per-client rate (:class:`RateLimiter`), before any routing."""

    def __init__(self, limiter: RateLimiter, log: Any) -> None:
        self.limiter = limiter
        self.log = log

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in UNLIMITED:
            return  # neither counted nor refused
        client = req.remote_addr or ""
        admission = self.limiter.admit(client)
        if admission.ended:
            self.log.info("http_rate_limit_ended", client=client, refused=admission.ended)
        if admission.allowed:
            return
        if admission.started:
            self.log.warning(
                "http_rate_limited", client=client, path=req.path[:200], status=429,
                hint="further refused requests of this client are counted in http_rate_limit_ended",
            )
        resp.set_header("Retry-After", str(int(admission.retry_after)))
        _json(resp, 429, {"ok": False, "reason": "rate_limited", "error": "too many requests: slow down"})
        resp.complete = True


class _Health:
    def __init__(self, health: HealthCheck) -> None:
        self.health = health

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        healthy, body = self.health()
        _json(resp, 200 if healthy else 503, body)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        encoder, content_type = choose_encoder(req.get_header("Accept") or "")
        resp.content_type = content_type
        resp.data = encoder(self.registry)


class _Hooks:
    """``POST /hooks/{kind}``: the door checks, then :meth:`HookReceiver.receive`."""

    def __init__(self, receiver: HookReceiver | None, max_body: int, log: Any) -> None:
        self.receiver = receiver
        self.max_body = max_body
        self.log = log

    def on_post(self, req: falcon.Request, resp: falcon.Response, kind: str) -> None:
        if kind not in HOOK_KINDS:
            raise falcon.HTTPNotFound()
        receiver = self.receiver
        hooks = receiver.config.hooks if receiver is not None else None
        if receiver is None or hooks is None or not hooks.enabled:
            refused(self.log, req, 403, "hooks_off", hint="set [hooks] api_key or username/password")
            _json(resp, 403, {"ok": False, "reason": "hooks_off", "error": "webhooks are off: no [hooks] credentials"})
            return
        if not authorized(hooks, req.get_header("Authorization"), req.get_header("X-Api-Key")):
            given = "none" if req.get_header("Authorization") is None and req.get_header("X-Api-Key") is None else "wrong"
            refused(self.log, req, 401, "unauthorized", credentials=given)
            resp.set_header("WWW-Authenticate", 'Basic realm="vpod", charset="UTF-8"')
            _json(resp, 401, {"ok": False, "reason": "unauthorized", "error": "wrong or missing credentials"})
            return
        media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            refused(self.log, req, 415, "unsupported_media_type", content_type=(req.content_type or "")[:100])
            _json(resp, 415, {"ok": False, "reason": "unsupported_media_type", "error": "expected application/json"})
            return
        body = req.bounded_stream.read(self.max_body + 1)
        if len(body) > self.max_body:
            refused(self.log, req, 413, "body_too_large", max_body_bytes=self.max_body)
            _json(resp, 413, {"ok": False, "reason": "body_too_large", "error": f"more than {self.max_body} bytes"})
            return
        instance = req.get_param("instance")
        answer = receiver.receive(kind, body, instance=instance, client=req.remote_addr or "")
        _json(resp, answer.status, answer.body)


_REASONS = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type", 413: "body_too_large"}
"""The reasons of Falcon's own refusals (its titles are ``"404 Not Found"``...)."""


def _error_handler(log: Any, api: str, not_found: bytes = NOT_FOUND) -> Callable[..., None]:
    """Falcon's own refusals (no route: 404; another method: 405; a bad request line or
    header: 400) and the web API's (400, 415) logged and answered as JSON
    ``{"ok": false, "reason", "error"}``; a 404 outside ``api`` (``{base}/api/``) as plain
    text naming the routes there are (``not_found``)."""

    def handle(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]) -> None:
        status = ex.status_code
        title = str(ex.title or status)
        reason = _REASONS.get(status) or (title if " " not in title else title.lower().replace(" ", "_"))
        fields = {"content_type": (req.content_type or "")[:100]} if status == 415 else {}
        refused(log, req, status, reason, **fields)
        resp.set_headers(ex.headers or {})
        if status == 404 and not req.path.startswith(api):
            resp.status = 404
            resp.content_type = "text/plain; charset=utf-8"
            resp.data = not_found
            return
        body = {"ok": False, "reason": reason, "error": str(ex.description or title)}
        if status == 415:
            body["content_type"] = (req.content_type or "")[:100]
        _json(resp, status, body)

    return handle


def _bug_handler(log: Any) -> Callable[..., None]:
    """An exception no responder expected (a bug in vpod): logged with its traceback as
    ``http_server`` (error level), answered 500 without details; the server goes on."""

    def handle(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
        log.error("http_server", message=f"{type(ex).__name__} in {req.method} {req.path[:200]} (a bug in vpod)",
                  exc_info=ex)
        _json(resp, 500, {"ok": False, "reason": "internal_error", "error": "internal error (logged)"})

    return handle


def _page_history(web: WebServices) -> Callable[[], list[dict[str, Any]]]:
    """The page's chart rows: ``GET /api/history``'s last :data:`HISTORY_HOURS` hours."""

    def rows() -> list[dict[str, Any]]:
        now = time.time()
        return [h._asdict() for h in web.store.hourly_history(now - (HISTORY_HOURS - 1) * 3600, now)]

    return rows
