"""The JSON API behind the web page (README "HTTP API"), all under ``[http] base_path``.

=================================  ====================================================
``GET  /api/status``               :func:`vpod.web.snapshot.web_snapshot`
``GET  /api/files``                files by id, paged: ``state``, ``library``, ``limit``
                                   (1-500, 50), ``after`` (an id, 0) ->
                                   ``{"files": [...], "next": ID|null}``
``GET  /api/files/{id}/events``    the file and its recorded attempts (``results``)
``GET  /api/batches``              ``limit`` (1-1000, 20) -> ``{"batches": [...]}``
``GET  /api/history``              ``hours`` (1-168, 24) -> ``{"hours": [...]}``
``GET  /api/events``               server-sent events (:mod:`vpod.web.stream`)
``POST /api/retry``                ``{"path": P}``, ``{"paths": [...]}`` or
                                   ``{"all_failed": true}`` (JSON or a form)
``POST /api/resume``               lift an ``on_error = "fail"`` pause
``POST /api/login`` / ``logout``   the login cookie (:mod:`vpod.web.security`)
=================================  ====================================================

Retry and resume are what ``vpod retry`` and ``vpod resume`` do
(:func:`vpod.control.requeue_files`, :func:`vpod.control.request_resume`), then the
daemon's main loop is woken as SIGUSR1 would (:attr:`WebServices.control`). A form
POST (the page without JavaScript) is answered ``303 See Other`` back to the page.

Every answer is JSON (``json.dumps``: a file name with ``<``, quotes or control
characters is a JSON string; undecodable bytes are ``\\xNN``, as ``vpod status`` shows
them). A database that cannot be read is answered 503.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import falcon
import structlog

from vpod.control import request_resume, requeue_files, wait_for_state
from vpod.db.records import RetryOutcome
from vpod.db.store import StoreError
from vpod.web.security import SessionKeys, back_to_page, clear_session, session_cookie, token_matches
from vpod.web.services import WebServices
from vpod.web.stream import StreamSlots, status_events

STATES = ("queued", "processing", "done", "failed", "skipped")
RESUME_WAIT_SECONDS = 5.0
"""How long ``POST /api/resume`` waits for the main loop to confirm (seconds)."""

_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


MAX_ID = 2**63 - 1
"""The largest file id (a 64-bit signed integer in both databases); a larger one is 404."""


def add_api_routes(
    app: falcon.App[Any, Any], web: WebServices, slots: StreamSlots, *, base: str, token: str,
    keys: SessionKeys | None = None,
) -> None:
    """Register the routes of this module under ``base`` (``""`` or ``"/path"``);
    ``slots``: the event streams' (the listener closes them); ``keys``: the login
    sessions' (:class:`~vpod.web.security.SessionKeys`, shared with the middleware)."""
    keys = keys if keys is not None else SessionKeys()
    app.add_route(f"{base}/api/status", _Status(web))
    app.add_route(f"{base}/api/files", _Files(web))
    app.add_route(f"{base}/api/files/{{file_id:int(min=1, max={MAX_ID})}}/events", _FileEvents(web))
    app.add_route(f"{base}/api/batches", _Batches(web))
    app.add_route(f"{base}/api/history", _History(web))
    app.add_route(f"{base}/api/events", _Events(web, slots))
    app.add_route(f"{base}/api/retry", _Retry(web))
    app.add_route(f"{base}/api/resume", _Resume(web))
    app.add_route(f"{base}/api/login", _Login(token, base, keys))
    app.add_route(f"{base}/api/logout", _Logout(base, keys))


def _answer(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = "application/json"
    resp.data = json.dumps(body).encode()


def _refuse(resp: falcon.Response, status: int, reason: str, error: str) -> None:
    _answer(resp, status, {"ok": False, "reason": reason, "error": error})


def _param(req: falcon.Request, name: str) -> str | None:
    """A query parameter given at most once (Falcon leaves which of several it returns
    undefined).

    Raises:
        falcon.HTTPBadRequest: given more than once (answered 400).
    """
    raw = req.params.get(name)
    if isinstance(raw, list):
        raise falcon.HTTPBadRequest(title="bad_parameter", description=f"{name}: given more than once")
    return raw


def _int_param(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``[low, high]``.

    Raises:
        falcon.HTTPBadRequest: not an integer, out of range or repeated (answered 400).
    """
    raw = _param(req, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise falcon.HTTPBadRequest(title="bad_parameter", description=f"{name}: expected an integer") from None
    if not low <= value <= high:
        raise falcon.HTTPBadRequest(title="bad_parameter", description=f"{name}: expected {low} to {high}")
    return value


def _reading(resp: falcon.Response, read: Callable[[], dict[str, Any]]) -> None:
    try:
        body = read()
    except StoreError as exc:
        _refuse(resp, 503, "database_unreachable", str(exc))
        return
    _answer(resp, 200, body)


class _Status:
    access = "read"

    def __init__(self, web: WebServices) -> None:
        self.web = web

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _reading(resp, self.web.snapshot)


class _Files:
    access = "read"
    MAX_LIMIT = 500

    def __init__(self, web: WebServices) -> None:
        self.web = web

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = _param(req, "state")
        if state is not None and state not in STATES:
            raise falcon.HTTPBadRequest(title="bad_parameter", description=f"state: expected one of {', '.join(STATES)}")
        library = _param(req, "library")
        limit = _int_param(req, "limit", 50, 1, self.MAX_LIMIT)
        after = _int_param(req, "after", 0, 0, 2**63 - 1)

        def read() -> dict[str, Any]:
            files = self.web.store.list_files(state=state, library=library, limit=limit, after=after)
            return {"files": [f._asdict() for f in files], "next": files[-1].id if len(files) == limit else None}

        _reading(resp, read)


class _FileEvents:
    access = "read"

    def __init__(self, web: WebServices) -> None:
        self.web = web

    def on_get(self, req: falcon.Request, resp: falcon.Response, file_id: int) -> None:
        limit = _int_param(req, "limit", 50, 1, 500)
        try:
            found, attempts = self.web.store.file_attempts(file_id, limit)
        except StoreError as exc:
            _refuse(resp, 503, "database_unreachable", str(exc))
            return
        if found is None:
            _refuse(resp, 404, "unknown_file", f"no file has id {file_id}")
            return
        _answer(resp, 200, {"file": found._asdict(), "events": [a._asdict() for a in attempts]})


class _Batches:
    access = "read"

    def __init__(self, web: WebServices) -> None:
        self.web = web

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = _int_param(req, "limit", 20, 1, 1000)
        _reading(resp, lambda: {"batches": [b._asdict() for b in self.web.store.recent_batches(limit)]})


class _History:
    access = "read"

    def __init__(self, web: WebServices) -> None:
        self.web = web

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        hours = _int_param(req, "hours", 24, 1, 168)
        now = time.time()
        since = history_since(now, hours)

        def read() -> dict[str, Any]:
            return {"since": since, "until": now, "hours": [h._asdict() for h in self.web.store.hourly_history(since, now)]}

        _reading(resp, read)


def history_since(now: float, hours: int) -> float:
    """The start (epoch s) of the first of the last ``hours`` clock hours, the one holding
    ``now`` included: ``hours=1`` is the start of the current hour."""
    return (int(now // 3600) - (hours - 1)) * 3600.0


class _Events:
    access = "read"

    def __init__(self, web: WebServices, slots: StreamSlots) -> None:
        self.web = web
        self.slots = slots

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.slots.take():
            resp.set_header("Retry-After", "10")
            _refuse(resp, 503, "too_many_streams", f"at most {self.slots.limit} open event streams")
            return
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("X-Accel-Buffering", "no")  # nginx: pass events on at once
        gone = req.env.get("waitress.client_disconnected")  # vpod.http.server: channel_request_lookahead
        resp.stream = status_events(self.slots, self.web.snapshot, stop=self.web.stop,
                                    gone=gone if callable(gone) else None)


def _body(req: falcon.Request) -> dict[str, Any]:
    """A POST's JSON object or form fields (``{}`` when empty).

    Raises:
        falcon.HTTPBadRequest: malformed, or not an object.
        falcon.HTTPUnsupportedMediaType: neither JSON nor a form.
    """
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if not req.content_length and media_type == "":
        return {}
    if media_type not in ("application/json", "application/x-www-form-urlencoded"):
        raise falcon.HTTPUnsupportedMediaType(description="expected application/json or a form")
    try:
        body = req.get_media(default_when_empty={})
    except falcon.MediaMalformedError:
        raise falcon.HTTPBadRequest(title="bad_body", description="malformed body") from None
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title="bad_body", description="expected a JSON object")
    return body


def _is_form(req: falcon.Request) -> bool:
    return (req.content_type or "").split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _flag(body: dict[str, Any], name: str, form: bool) -> bool:
    """A boolean field: JSON ``true`` / ``false`` (absent: false), or a form's ``"true"``.

    Raises:
        falcon.HTTPBadRequest: anything else (``"yes"``, ``1``, ``"false"`` in JSON...).
    """
    value = body.get(name, False)
    if value is True or value is False or (form and value == "true"):
        return value is True or value == "true"
    raise falcon.HTTPBadRequest(title="bad_body", description=f"{name}: expected true or false")


def _ids(body: dict[str, Any], form: bool) -> list[int]:
    """``id`` / ``ids`` of a retry: file ids (a form's ``id`` is its decimal text).

    Raises:
        falcon.HTTPBadRequest: not positive integers.
    """
    given = list(body.get("ids", []) or []) if isinstance(body.get("ids", []), list) else None
    if given is None:
        raise falcon.HTTPBadRequest(title="bad_body", description="ids: expected a list of file ids")
    if "id" in body:
        given.append(body["id"])
    out = []
    for value in given:
        if form and isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
            raise falcon.HTTPBadRequest(title="bad_body", description="id(s): expected file ids (positive integers)")
        out.append(value)
    return out


def _candidates(text: str) -> list[Path]:
    """The paths a path as shown (``\\xNN`` for an undecodable byte) may name: as given,
    and with each ``\\xNN`` (0x80-0xff) the byte it stands for."""
    paths = [Path(text)]
    if _ESCAPED_BYTE.search(text):
        raw = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)
        paths.append(Path(raw))
    return paths


class _Retry:
    access = "action"

    def __init__(self, web: WebServices) -> None:
        self.web = web
        self.log = structlog.get_logger("vpod")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _body(req)
        form = _is_form(req)
        all_failed = _flag(body, "all_failed", form)
        ids = _ids(body, form)
        given = body.get("paths", [])
        if isinstance(body.get("path"), str):
            given = [*given, body["path"]] if isinstance(given, list) else given
        if not isinstance(given, list) or not all(isinstance(p, str) and p.startswith("/") for p in given):
            raise falcon.HTTPBadRequest(title="bad_body", description="path(s): expected absolute paths")
        if not given and not ids and not all_failed:
            raise falcon.HTTPBadRequest(title="bad_body", description='give "id", "ids", "path", "paths" or "all_failed": true')
        try:
            requeued, refused = self._requeue(given, all_failed)
            by_id, refused_ids = self._requeue_ids(ids)
        except StoreError as exc:
            _refuse(resp, 503, "database_unreachable", str(exc))
            return
        requeued += by_id
        refused += refused_ids
        if requeued:
            self.web.control()
        self.log.info("web_retry", requeued=requeued, all_failed=all_failed, paths=len(given), ids=len(ids),
                      client=req.remote_addr)
        if form:
            back_to_page(resp, "requeued" if requeued and not refused else (refused[0]["reason"] if refused else "none_failed"))
            return
        _answer(resp, 200, {"ok": not refused, "requeued": requeued, "refused": refused})

    def _requeue_ids(self, ids: list[int]) -> tuple[int, list[dict[str, Any]]]:
        """Requeue the files of ``ids`` (what the page sends: unambiguous where two names
        show alike, ``\\xff`` typed and the byte 0xff)."""
        requeued = 0
        refused: list[dict[str, Any]] = []
        for file_id in ids:
            path = self.web.store.file_path(file_id)
            outcome = RetryOutcome.UNKNOWN
            if path is not None:
                tried = requeue_files(self.web.store, [path])
                outcome = RetryOutcome.REQUEUED if tried.requeued else tried.refused[0][1]
            if outcome is RetryOutcome.REQUEUED:
                requeued += 1
            else:
                refused.append({"id": file_id, "reason": "unknown" if outcome is RetryOutcome.UNKNOWN else "not_failed"})
        return requeued, refused

    def _requeue(self, given: list[str], all_failed: bool) -> tuple[int, list[dict[str, Any]]]:
        done = requeue_files(self.web.store, (), all_failed=all_failed) if all_failed else None
        requeued = done.requeued if done else 0
        refused: list[dict[str, Any]] = []
        for text in given:
            outcome = RetryOutcome.UNKNOWN
            for path in _candidates(text):
                tried = requeue_files(self.web.store, [path])
                if tried.requeued:
                    outcome = RetryOutcome.REQUEUED
                    requeued += tried.requeued
                    break
                if tried.refused and tried.refused[0][1] is RetryOutcome.NOT_FAILED:
                    outcome = RetryOutcome.NOT_FAILED
                    break
            if outcome is not RetryOutcome.REQUEUED:
                why = "unknown" if outcome is RetryOutcome.UNKNOWN else "not_failed"
                refused.append({"path": text, "reason": why})
        return requeued, refused


class _Resume:
    access = "action"

    def __init__(self, web: WebServices) -> None:
        self.web = web
        self.log = structlog.get_logger("vpod")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _body(req)  # a CSRF field may come in a form; nothing else is read
        try:
            before = request_resume(self.web.store)
            if before.state == "paused":
                self.web.control()
                after = _wait_resumed(self.web.store, before, RESUME_WAIT_SECONDS)
            else:
                after = before
        except StoreError as exc:
            _refuse(resp, 503, "database_unreachable", str(exc))
            return
        # Resumed: no longer paused, or paused again by another failure (another pause
        # time): processing_resumed was logged either way.
        resumed = before.state == "paused" and not _same_pause(before, after)
        paused_again = resumed and after.state == "paused"
        self.log.info("web_resume", was=before.state, state=after.state, client=req.remote_addr)
        if _is_form(req):
            back_to_page(resp, "resumed" if resumed else ("not_paused" if before.state != "paused" else "resume_unconfirmed"))
            return
        _answer(resp, 200 if resumed or before.state != "paused" else 504, {
            "ok": resumed or before.state != "paused", "resumed": resumed, "was": before.state, "state": after.state,
            "paused_path": before.paused_path if before.state == "paused" else None,
            "paused_again": paused_again, "paused_again_path": after.paused_path if paused_again else None,
        })


def _same_pause(before: Any, after: Any) -> bool:
    """``after`` is still the pause ``before`` was (paused, the same pause time and file)."""
    return after.state == "paused" and (after.paused_at, after.paused_path) == (before.paused_at, before.paused_path)


def _wait_resumed(store: Any, before: Any, timeout: float) -> Any:
    """The daemon record once it is no longer ``before``'s pause, or at ``timeout`` (s)."""
    deadline = time.monotonic() + timeout
    while True:
        after = wait_for_state(store, "paused", min(0.5, max(0.0, deadline - time.monotonic())))
        if not _same_pause(before, after) or time.monotonic() >= deadline:
            return after


class _Login:
    access = "login"

    def __init__(self, token: str, base: str, keys: SessionKeys) -> None:
        self.token = token
        self.path = base or "/"
        self.keys = keys
        self.log = structlog.get_logger("vpod")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = _body(req).get("token")
        if not token_matches(self.token, given if isinstance(given, str) else None):
            self.log.warning("http_request_refused", status=403, reason="wrong_token", method="POST",
                             path=req.path[:200], client=req.remote_addr)
            if _is_form(req):
                back_to_page(resp, "wrong_token")
                return
            _refuse(resp, 403, "wrong_token", "wrong token")
            return
        csrf = session_cookie(resp, req, self.token, self.path, self.keys)
        if _is_form(req):
            back_to_page(resp, "logged_in")
            return
        _answer(resp, 200, {"ok": True, "csrf_token": csrf})


class _Logout:
    """Ends every login session of the listener (:meth:`SessionKeys.end_all`: the old
    cookie no longer works anywhere) and removes the cookie. An action: it needs the
    login (and with a cookie, its CSRF token and Origin) like any other."""

    access = "action"

    def __init__(self, base: str, keys: SessionKeys) -> None:
        self.path = base or "/"
        self.keys = keys

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _body(req)  # the CSRF field of a form
        self.keys.end_all()
        clear_session(resp, self.path)
        if _is_form(req):
            back_to_page(resp, "logged_out")
            return
        _answer(resp, 200, {"ok": True})
