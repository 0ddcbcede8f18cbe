"""Who may read the web page and its API, who may act, and the headers of every answer.

The rules (README "HTTP API"):

- **Reads** (``GET`` of the page and ``/api/...``) need nothing while the listener is
  bound to a loopback address (127.0.0.0/8, ::1, ``localhost``); on any other address
  they need the token (``[http] token`` / ``token_file``), and without a configured
  token they are refused (403) outright.
- **Actions** (every ``POST``) need the token, as ``Authorization: Bearer TOKEN`` or
  through the login cookie :func:`session_cookie` sets (``POST {base}/api/login``;
  HttpOnly, ``SameSite=Strict``). A POST carrying the cookie also needs the CSRF token
  (``X-CSRF-Token`` header or a ``csrf_token`` form field; the page reads it from
  :func:`csrf_token`): a signed double-submit token, HMAC(token, session) (OWASP CSRF
  Prevention Cheat Sheet, "Signed Double-Submit Cookie"). Every POST whose ``Origin``
  (or, without one, ``Referer``) names another host than the request's ``Host`` is
  refused; a cookie POST with neither is refused too (browsers send ``Origin`` on
  every POST: RFC 6454 section 7, the Fetch standard).
- Every answer has ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
  same-origin``; every HTML answer the strict :data:`CSP` and ``X-Frame-Options: DENY``;
  every web API answer ``Cache-Control: no-store``.

Refusals are logged ``http_request_refused`` with a reason, never with the token, a
cookie or a CSRF token. Tokens are compared with :func:`hmac.compare_digest`.

A web resource says what it is with an ``access`` attribute: ``"read"``, ``"action"``,
``"login"`` (the login itself: it checks the token it is given) or ``"public"``
(static files). Resources without one (``/health``, ``/metrics``, ``/hooks/...``) keep
their own rules and are left alone here, except for the headers.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The Content-Security-Policy of every HTML answer (no inline script or style)."""

SESSION_COOKIE = "vpod_session"
"""The login cookie's name."""

SESSION_SECONDS = 30 * 86400
"""How long a login lasts (seconds)."""

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def is_loopback(host: str) -> bool:
    """True for a loopback listen host: 127.0.0.0/8, ``::1``, ``localhost``. ``0.0.0.0``
    and ``::`` (every address) are not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _sign(token: str, text: str) -> str:
    return hmac.new(token.encode("utf-8"), text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def token_matches(token: str, given: str | None) -> bool:
    """``given`` is the configured ``token`` (constant time); False when none is configured."""
    if not token or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (RFC 6750 section 2.1), or ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class SessionKeys:
    """What a login cookie's signature covers besides the token: a random secret made
    when the listener starts and a generation that :meth:`end_all` bumps (``POST
    /api/logout``). So logging out ends every login session of this listener at once
    (one token, one owner), and a daemon restart (or a new listener) ends them too.
    Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secret = secrets.token_hex(16)
        self._generation = 0

    def current(self) -> str:
        """The text signed into every cookie now."""
        with self._lock:
            return f"{self._secret}:{self._generation}"

    def end_all(self) -> None:
        """Invalidate every login cookie issued so far."""
        with self._lock:
            self._generation += 1


def _session_text(issued: str, keys: SessionKeys | None) -> str:
    return f"session:{keys.current() if keys is not None else ''}:{issued}"


def new_session(token: str, now: float, keys: SessionKeys | None = None) -> str:
    """A login cookie's value: ``ISSUED.HMAC(token, ISSUED and keys)`` (``ISSUED``: epoch
    seconds; ``keys``: the listener's :class:`SessionKeys`, ``None`` in unit tests)."""
    issued = str(int(now))
    return f"{issued}.{_sign(token, _session_text(issued, keys))}"


def session_valid(token: str, value: str | None, now: float, keys: SessionKeys | None = None) -> bool:
    """``value`` is a login cookie made with ``token`` and the same ``keys`` generation at
    most :data:`SESSION_SECONDS` ago."""
    if not token or not value:
        return False
    issued, _, signature = value.partition(".")
    if not issued.isdigit() or not hmac.compare_digest(
        signature.encode(), _sign(token, _session_text(issued, keys)).encode()
    ):
        return False
    return 0 <= now - int(issued) <= SESSION_SECONDS


def csrf_for(token: str, session: str) -> str:
    """The CSRF token of a login session (HMAC of it under the token)."""
    return _sign(token, "csrf:" + session)[:40]


def csrf_token(req: Any) -> str:
    """The CSRF token the page puts in ``<meta name="csrf-token">`` for a request logged
    in by cookie; ``""`` when it is not (an action then needs the login first)."""
    return str(getattr(req.context, "vpod_csrf", "") or "")


def same_origin(origin: str, host: str) -> bool:
    """``origin`` (an ``Origin`` or ``Referer`` value) names ``host`` (the ``Host``
    header, ``name[:port]``), compared case-insensitively."""
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()


def host_name(host: str) -> str:
    """The name of a ``Host`` header (``name[:port]``, ``[v6]:port``), lower case."""
    name = host.strip().lower()
    if name.startswith("["):
        return name[1:].partition("]")[0]
    return name.partition(":")[0] if name.count(":") == 1 else name


def loopback_host(host: str) -> bool:
    """``host`` (a ``Host`` header, ``name[:port]``) names this machine by a loopback
    name or address: ``localhost`` (and ``*.localhost``, RFC 6761 section 6.3),
    127.0.0.0/8 or ``[::1]``; an empty one (HTTP/1.0) too. A page read through any other
    name on a loopback listener is a DNS rebinding attack (a site's name resolved to
    127.0.0.1), refused 421."""
    if not host:
        return True
    name = host_name(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Verdict:
    """A request's standing: ``via`` how it proved the token (``"bearer"``,
    ``"cookie"`` or ``None``); ``refusal`` ``(status, reason, message)`` or ``None``."""

    via: str | None
    refusal: tuple[int, str, str] | None = None


def judge(
    *, access: str, method: str, token: str, loopback: bool, authorization: str | None, cookie: str | None,
    origin: str | None, referer: str | None, host: str, csrf_given: str | None, now: float,
    keys: SessionKeys | None = None, allowed_hosts: tuple[str, ...] = (),
) -> Verdict:
    """The rules of this module for one request to a web resource of ``access``.

    ``csrf_given``: the ``X-CSRF-Token`` header or ``csrf_token`` field (``None``: neither);
    ``keys``: the listener's :class:`SessionKeys`. On a loopback listener, a ``Host``
    that is not a loopback name (:func:`loopback_host`) nor one of ``allowed_hosts``
    (``[http] allowed_hosts``: a reverse proxy on this machine that passes the browser's
    Host on) is refused 421 before anything else (DNS rebinding).
    """
    if loopback and not loopback_host(host) and host_name(host) not in {h.lower() for h in allowed_hosts}:
        return Verdict(None, (421, "wrong_host", "this listener answers only to a loopback Host (localhost, "
                                                 "127.0.0.1, [::1]) or one of [http] allowed_hosts"))
    via = "bearer" if token_matches(token, bearer(authorization)) else None
    if via is None and session_valid(token, cookie, now, keys):
        via = "cookie"
    if access == "public":
        return Verdict(via)
    if method in ("GET", "HEAD", "OPTIONS"):
        if access != "read" or loopback or via is not None:
            return Verdict(via)
        if not token:
            return Verdict(via, (403, "token_required", "this listener is not on a loopback address: set [http] token"))
        return Verdict(via, (401, "unauthorized", "log in or send Authorization: Bearer TOKEN"))
    claimed = origin or referer
    if claimed is not None and not same_origin(claimed, host):
        return Verdict(via, (403, "cross_origin", "Origin or Referer is another site"))
    if not token:
        return Verdict(via, (403, "actions_off", "no [http] token is configured: actions are off"))
    if access == "login":
        return Verdict(via)
    if via is None:
        return Verdict(via, (403, "unauthorized", "actions need the token (Authorization: Bearer) or a login"))
    if via == "cookie":
        if claimed is None:
            return Verdict(via, (403, "cross_origin", "a POST with the login cookie needs an Origin header"))
        if not csrf_given or not hmac.compare_digest(csrf_given.encode(), csrf_for(token, cookie or "").encode()):
            return Verdict(via, (403, "csrf", "missing or wrong CSRF token"))
    return Verdict(via)


def login_form(message: str = "") -> bytes:
    """A minimal HTML login form (no script; the page's public stylesheet) posting to
    ``api/login`` relative to the page, for a read refused 401 in a browser."""
    note = f"<p>{html.escape(message)}</p>" if message else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>vpod: log in</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="static/page.css"></head><body>'
        f"<h1>vpod</h1>{note}"
        '<form method="post" action="api/login"><label>Token <input type="password" name="token" '
        'autocomplete="current-password" required></label> <button type="submit">Log in</button></form>'
        "</body></html>"
    ).encode()


class WebSecurity:
    """Falcon middleware applying :func:`judge` to every web resource (one with an
    ``access`` attribute) and the headers to every answer.

    Args:
        token: ``[http] token`` (``""``: none configured).
        loopback: the listener is bound to a loopback address.
        log: the structlog logger refusals are logged to.
        keys: the listener's login sessions.
        allowed_hosts: ``[http] allowed_hosts`` (:func:`judge`).
    """

    def __init__(
        self, token: str, loopback: bool, log: Any, keys: SessionKeys | None = None, allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.token = token
        self.loopback = loopback
        self.allowed_hosts = allowed_hosts
        self.log = log
        self.keys = keys if keys is not None else SessionKeys()

    def process_resource(self, req: Any, resp: Any, resource: Any, params: dict[str, Any]) -> None:
        """Judge the request; a refusal answers it here (the responder does not run)."""
        access = getattr(resource, "access", None)
        if access is None:
            return
        if not hasattr(resource, f"on_{req.method.lower()}"):
            return  # Falcon answers 405 (vpod.http.app's error handler: JSON)
        cookie = _cookie(req)
        csrf_given = req.get_header(CSRF_HEADER)
        if csrf_given is None and req.method == "POST":
            csrf_given = _form_field(req, CSRF_FIELD)
        verdict = judge(
            access=access, method=req.method, token=self.token, loopback=self.loopback,
            authorization=req.get_header("Authorization"), cookie=cookie, origin=req.get_header("Origin"),
            referer=req.get_header("Referer"), host=req.get_header("Host") or "", csrf_given=csrf_given,
            now=time.time(), keys=self.keys, allowed_hosts=self.allowed_hosts,
        )
        req.context.vpod_auth = verdict.via
        req.context.vpod_csrf = csrf_for(self.token, cookie or "") if verdict.via == "cookie" else ""
        if verdict.refusal is None:
            return
        status, reason, message = verdict.refusal
        shown_host = {"host": (req.get_header("Host") or "")[:100]} if status == 421 else {}
        self.log.warning("http_request_refused", status=status, reason=reason, method=req.method,
                         path=req.path[:200], client=req.remote_addr, **shown_host)
        resp.status = status
        if status == 401:
            resp.set_header("WWW-Authenticate", 'Bearer realm="vpod"')
        if req.method == "POST" and _is_form(req) and status != 421:
            back_to_page(resp, reason)
        elif status == 401 and access == "read" and not _wants_json(req):
            resp.content_type = "text/html; charset=utf-8"
            wrong = req.get_param("said") == "wrong_token"  # back from a refused login (api's 303)
            resp.data = login_form("Refused: wrong token." if wrong else "Log in with the token of [http] token.")
        else:
            resp.content_type = "application/json"
            resp.data = json.dumps({"ok": False, "reason": reason, "error": message}).encode()
        resp.complete = True

    def process_response(self, req: Any, resp: Any, resource: Any, req_succeeded: bool) -> None:
        """The headers of every answer; CSP on HTML; no caching of the web API."""
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "same-origin")
        if (resp.content_type or "").startswith("text/html"):
            resp.set_header("Content-Security-Policy", CSP)
            resp.set_header("X-Frame-Options", "DENY")
        if getattr(resource, "access", None) in ("read", "action", "login") and not (resp.content_type or "").startswith("text/html"):
            resp.set_header("Cache-Control", "no-store")


def _is_form(req: Any) -> bool:
    return (req.content_type or "").split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def back_to_page(resp: Any, said: str, page: str = "../") -> None:
    """Answer a form POST (the page without JavaScript) ``303 See Other`` back to the
    page (``page``: ``../`` from ``{base}/api/...``, right behind a proxy's prefix too)
    with ``?said=CODE``: the page shows the sentence of :data:`vpod.web.page.SAID` for
    that code at its top (a fixed text: nothing the client sent is echoed)."""
    resp.status = 303
    resp.set_header("Location", f"{page}?said={said}")
    resp.content_type = "text/plain; charset=utf-8"
    resp.data = f"see {page}\n".encode()


def session_cookie(resp: Any, req: Any, token: str, path: str, keys: SessionKeys | None = None) -> str:
    """Set the login cookie on ``resp`` (HttpOnly, SameSite=Strict, ``Secure`` when the
    request came over HTTPS, for ``path``); returns its CSRF token."""
    value = new_session(token, time.time(), keys)
    resp.set_cookie(SESSION_COOKIE, value, max_age=SESSION_SECONDS, path=path or "/", secure=req.scheme == "https",
                    http_only=True, same_site="Strict")
    return csrf_for(token, value)


def clear_session(resp: Any, path: str) -> None:
    """Remove the login cookie."""
    resp.unset_cookie(SESSION_COOKIE, path=path or "/")


def _cookie(req: Any) -> str | None:
    values = req.get_cookie_values(SESSION_COOKIE)
    return values[0] if values else None


def _wants_json(req: Any) -> bool:
    return "/api/" in req.path or "application/json" in (req.get_header("Accept") or "")


def _form_field(req: Any, name: str) -> str | None:
    """A field of a form or JSON body (read once; Falcon caches it for the responder)."""
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in ("application/x-www-form-urlencoded", "application/json"):
        return None
    try:
        body = req.get_media(default_when_empty={})
    except Exception:  # noqa: BLE001  a malformed body: the responder answers 400
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
