"""vpod.web.security's rules (issue 17 item 4) and vpod.web.stream's coalescing and slots."""

from __future__ import annotations

import threading
import time

import pytest

from vpod.web.security import (
    SESSION_SECONDS, bearer, csrf_for, is_loopback, judge, new_session, same_origin, session_valid, token_matches,
)
from vpod.web.stream import Changes, StreamSlots, status_events

TOKEN = "0123456789abcdef0123"
NOW = 1_800_000_000.0
HOST = "127.0.0.1:9810"


def verdict(**kw):
    args = dict(access="action", method="POST", token=TOKEN, loopback=True, authorization=None, cookie=None,
                origin=None, referer=None, host=HOST, csrf_given=None, now=NOW)
    args.update(kw)
    return judge(**args)


@pytest.mark.parametrize("host, loop", [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.2", False), ("nas.local", False),
])
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


def test_tokens_and_bearer():
    assert bearer(f"Bearer {TOKEN}") == TOKEN and bearer(f"bearer  {TOKEN} ") == TOKEN
    assert bearer(f"Basic {TOKEN}") is None and bearer("Bearer ") is None and bearer(None) is None
    assert token_matches(TOKEN, TOKEN) and not token_matches(TOKEN, TOKEN + "x") and not token_matches("", "")
    assert not token_matches(TOKEN, "\udcff")  # undecodable header bytes: no crash, no match


def test_sessions_expire_and_belong_to_their_token():
    value = new_session(TOKEN, NOW)
    assert session_valid(TOKEN, value, NOW + 5)
    assert not session_valid(TOKEN, value, NOW + SESSION_SECONDS + 1)
    assert not session_valid("another-token-0123456", value, NOW)
    issued, _, signature = value.partition(".")
    assert not session_valid(TOKEN, f"{int(issued) + 1}.{signature}", NOW)  # a forged issue time
    assert not session_valid(TOKEN, "garbage", NOW) and not session_valid(TOKEN, None, NOW)


def test_same_origin():
    assert same_origin(f"http://{HOST}", HOST) and same_origin(f"http://{HOST}/vpod/", HOST)
    assert not same_origin("http://evil.example", HOST) and not same_origin("null", HOST)
    assert not same_origin("http://127.0.0.1:9811", HOST)


def test_reads():
    read = dict(access="read", method="GET")
    assert verdict(**read).refusal is None  # loopback: open
    assert verdict(**read, loopback=False).refusal[:2] == (401, "unauthorized")
    assert verdict(**read, loopback=False, token="").refusal[:2] == (403, "token_required")
    assert verdict(**read, loopback=False, authorization=f"Bearer {TOKEN}").refusal is None
    assert verdict(**read, loopback=False, cookie=new_session(TOKEN, NOW)).via == "cookie"
    assert verdict(access="public", method="GET", loopback=False).refusal is None


def test_actions():
    assert verdict().refusal[:2] == (403, "unauthorized")
    assert verdict(token="", authorization="Bearer x").refusal[:2] == (403, "actions_off")
    assert verdict(authorization=f"Bearer {TOKEN}").refusal is None  # curl: no Origin, no cookie
    assert verdict(authorization=f"Bearer {TOKEN}", origin="http://evil.example").refusal[:2] == (403, "cross_origin")
    assert verdict(authorization=f"Bearer {TOKEN}", referer="http://evil.example/x").refusal[:2] == (403, "cross_origin")
    assert verdict(authorization=f"Bearer {TOKEN}", origin=f"http://{HOST}").refusal is None


def test_cookie_actions_need_the_csrf_token_and_an_origin():
    session = new_session(TOKEN, NOW)
    good = csrf_for(TOKEN, session)
    origin = f"http://{HOST}"
    assert verdict(cookie=session, origin=origin).refusal[:2] == (403, "csrf")
    assert verdict(cookie=session, origin=origin, csrf_given="0" * 40).refusal[:2] == (403, "csrf")
    assert verdict(cookie=session, origin=origin, csrf_given=csrf_for(TOKEN, new_session(TOKEN, NOW - 9))).refusal
    assert verdict(cookie=session, csrf_given=good).refusal[:2] == (403, "cross_origin")  # no Origin or Referer
    assert verdict(cookie=session, origin=origin, csrf_given=good).refusal is None
    assert verdict(cookie=session, referer=f"{origin}/", csrf_given=good).refusal is None


def test_login_needs_no_session_but_the_same_origin():
    assert verdict(access="login").refusal is None
    assert verdict(access="login", origin="http://evil.example").refusal[:2] == (403, "cross_origin")


def drain(stream, until, timeout=5.0):
    """Events of ``stream`` (a generator in a thread) until ``until(events)``."""
    events: list[bytes] = []
    done = threading.Event()

    def run():
        for item in stream:
            events.append(item)
            if until(events):
                break
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(timeout)
    return events


def test_a_burst_of_changes_is_one_status_event_and_close_ends_streams():
    changes = Changes()
    slots = StreamSlots(changes, limit=1)
    reads = []

    def snapshot():
        reads.append(time.monotonic())
        return {"n": len(reads)}

    assert slots.take()
    assert not slots.take()  # bounded
    stream = status_events(slots, snapshot, min_interval=0.5, heartbeat=60)
    first = drain(stream, lambda ev: any(b"event: status" in e for e in ev))
    assert first[0].startswith(b"retry: ") and first[-1] == b'event: status\ndata: {"n":1}\n\n'
    for _ in range(50):
        changes.on_file_finished(object())
    second = drain(stream, lambda ev: any(b"event: status" in e for e in ev))
    assert len(reads) == 2 and second[-1] == b'event: status\ndata: {"n":2}\n\n'  # fifty changes, one event
    ended = threading.Event()
    threading.Thread(target=lambda: (list(stream), ended.set()), daemon=True).start()
    slots.close()
    assert ended.wait(5) and slots.open == 0  # the slot is free again
    assert second


def test_a_heartbeat_after_silence():
    slots = StreamSlots(Changes())
    assert slots.take()
    stream = status_events(slots, dict, heartbeat=0.2)
    events = drain(stream, lambda ev: b": heartbeat\n\n" in ev)
    assert events[-1] == b": heartbeat\n\n"
    stream.close()
    assert slots.open == 0


class _Page:
    """An HTML resource as the page declares itself (``access = "read"``)."""

    access = "read"

    def on_get(self, req, resp):
        from vpod.web.security import csrf_token

        resp.content_type = "text/html; charset=utf-8"
        resp.text = f'<meta name="csrf-token" content="{csrf_token(req)}">'


def _client(loopback: bool):
    import falcon
    import falcon.testing
    import structlog

    from vpod.web.security import WebSecurity

    app = falcon.App(middleware=[WebSecurity(TOKEN, loopback, structlog.get_logger("test"))])
    app.add_route("/", _Page())
    return falcon.testing.TestClient(app)


def test_html_answers_carry_the_csp_and_the_page_gets_the_csrf_token():
    from vpod.web.security import CSP, SESSION_COOKIE

    page = _client(loopback=True).simulate_get("/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY" and 'content=""' in page.text  # no login: no CSRF token
    session = new_session(TOKEN, time.time())
    logged_in = _client(loopback=True).simulate_get("/", cookies={SESSION_COOKIE: session})
    assert f'content="{csrf_for(TOKEN, session)}"' in logged_in.text


def test_off_loopback_a_browser_gets_the_login_form():
    from vpod.web.security import CSP

    refused = _client(loopback=False).simulate_get("/", headers={"Accept": "text/html"})
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
    assert 'name="token"' in refused.text and 'action="api/login"' in refused.text and "<script" not in refused.text
    assert refused.headers["content-security-policy"] == CSP
    allowed = _client(loopback=False).simulate_get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200


def test_streams_of_one_listener_share_one_read_per_change():
    changes = Changes()
    slots = StreamSlots(changes)
    reads = []

    def snapshot():
        reads.append(1)
        return {"n": len(reads)}

    streams = []
    for _ in range(3):
        assert slots.take()
        streams.append(status_events(slots, snapshot, min_interval=60, heartbeat=60))
    for stream in streams:
        assert drain(stream, lambda ev: any(b"event: status" in e for e in ev))[-1] == b'event: status\ndata: {"n":1}\n\n'
    assert len(reads) == 1  # three pages, one database read
    for stream in streams:
        stream.close()
    assert slots.open == 0
