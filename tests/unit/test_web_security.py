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


def _client(loopback: bool, keys=None):
    import falcon
    import falcon.testing
    import structlog

    from vpod.web.security import WebSecurity

    app = falcon.App(middleware=[WebSecurity(TOKEN, loopback, structlog.get_logger("test"), keys)])
    app.add_route("/", _Page())
    return falcon.testing.TestClient(app, headers={"Host": HOST})


def test_html_answers_carry_the_csp_and_the_page_gets_the_csrf_token():
    from vpod.web.security import CSP, SESSION_COOKIE

    page = _client(loopback=True).simulate_get("/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY" and 'content=""' in page.text  # no login: no CSRF token
    from vpod.web.security import SessionKeys

    keys = SessionKeys()
    session = new_session(TOKEN, time.time(), keys)
    logged_in = _client(loopback=True, keys=keys).simulate_get("/", cookies={SESSION_COOKIE: session})
    assert f'content="{csrf_for(TOKEN, session)}"' in logged_in.text


def test_off_loopback_a_browser_gets_the_login_form():
    from vpod.web.security import CSP

    refused = _client(loopback=False).simulate_get("/", headers={"Accept": "text/html"})
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
    assert 'name="token"' in refused.text and 'action="api/login"' in refused.text and "<script" not in refused.text
    assert refused.headers["content-security-policy"] == CSP
    assert '<link rel="stylesheet" href="static/page.css">' in refused.text  # fix17 defect 16: styled
    again = _client(loopback=False).simulate_get("/", query_string="said=wrong_token", headers={"Accept": "text/html"})
    assert "Refused: wrong token." in again.text
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


# -- fix17: the tester's defects 1, 3, 7, 9, 12, 14, 15 ------------------------------------


def test_loopback_reads_need_a_loopback_host():
    """Defect 12: DNS rebinding (a site's name resolved to 127.0.0.1) is refused 421."""
    read = dict(access="read", method="GET")
    for host in ("evil.example:9810", "evil.example", "127.0.0.1.evil.example", "[::2]:80", "0.0.0.0:9810"):
        assert verdict(**read, host=host).refusal[:2] == (421, "wrong_host"), host
    for host in ("127.0.0.1:9810", "localhost:9810", "LOCALHOST", "app.localhost:1", "[::1]:9810", "127.3.4.5", ""):
        assert verdict(**read, host=host).refusal is None, host
    assert verdict(**read, host="nas.example:9810", loopback=False, authorization=f"Bearer {TOKEN}").refusal is None
    assert verdict(host="evil.example", origin="http://evil.example", authorization=f"Bearer {TOKEN}").refusal[0] == 421


def test_logout_ends_every_session_of_the_listener():
    """Defect 9: a cookie signed under the listener's keys stops working once they end."""
    from vpod.web.security import SessionKeys

    keys, other = SessionKeys(), SessionKeys()
    session = new_session(TOKEN, NOW, keys)
    assert session_valid(TOKEN, session, NOW + 1, keys)
    assert not session_valid(TOKEN, session, NOW + 1, other)  # another listener (a restart)
    assert verdict(cookie=session, keys=keys, origin=f"http://{HOST}", csrf_given=csrf_for(TOKEN, session)).refusal is None
    keys.end_all()
    assert not session_valid(TOKEN, session, NOW + 1, keys)
    assert verdict(cookie=session, keys=keys, origin=f"http://{HOST}", csrf_given=csrf_for(TOKEN, session)).refusal[:2] == (
        403, "unauthorized")


class _Action:
    access = "action"

    def on_post(self, req, resp):
        resp.media = {"ok": True}


def test_wrong_methods_are_405_and_401_says_how_to_authenticate():
    """Defect 15: PUT on a POST route is 405 (not 403); a 401 carries WWW-Authenticate."""
    import falcon
    import falcon.testing
    import structlog

    from vpod.web.security import WebSecurity

    app = falcon.App(middleware=[WebSecurity(TOKEN, False, structlog.get_logger("test"))])
    app.add_route("/api/retry", _Action())
    app.add_route("/", _Page())
    client = falcon.testing.TestClient(app, headers={"Host": HOST})
    assert client.simulate_put("/api/retry").status_code == 405
    refused = client.simulate_get("/", headers={"Accept": "application/json"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")


def test_a_busy_daemon_sends_a_status_event_without_any_change():
    """Defect 1: while a file is in progress, elapsed and progress reach the page."""
    slots = StreamSlots(Changes())
    assert slots.take()
    reads = []

    def snapshot():
        reads.append(1)
        return {"n": len(reads), "in_progress": [{"path": "/m/a.mkv", "progress_percent": 5.0 * len(reads)}]}

    stream = status_events(slots, snapshot, min_interval=0.01, busy_interval=0.05, heartbeat=60)
    events = drain(stream, lambda ev: sum(b"event: status" in e for e in ev) >= 3)
    assert [e for e in events if e.startswith(b"event: status")][-1].startswith(b'event: status\ndata: {"n":3')
    stream.close()


def test_an_idle_daemon_sends_only_heartbeats():
    slots = StreamSlots(Changes())
    assert slots.take()
    stream = status_events(slots, lambda: {"in_progress": []}, min_interval=0.01, busy_interval=0.01, heartbeat=0.3)
    events = drain(stream, lambda ev: b": heartbeat\n\n" in ev)
    assert sum(b"event: status" in e for e in events) == 1
    stream.close()


def test_the_daemon_beginning_to_stop_is_told_at_once():
    """Defect 3: the stop Event wakes a quiet stream (no change, no heartbeat due)."""
    slots = StreamSlots(Changes())
    assert slots.take()
    stop = threading.Event()
    stream = status_events(slots, lambda: {"state": "stopping" if stop.is_set() else "running"}, stop=stop,
                           min_interval=60, heartbeat=60)
    drain(stream, lambda ev: any(b"event: status" in e for e in ev))
    stop.set()
    told = drain(stream, lambda ev: any(b"event: status" in e for e in ev))
    assert told[-1] == b'event: status\ndata: {"state":"stopping"}\n\n'
    stream.close()


def test_a_client_gone_frees_its_slot_without_a_write():
    """Defect 7: waitress's client_disconnected is looked at while the stream waits."""
    slots = StreamSlots(Changes(), limit=1)
    assert slots.take()
    gone = threading.Event()
    stream = status_events(slots, dict, min_interval=60, heartbeat=60, gone=gone.is_set)
    drain(stream, lambda ev: any(b"event: status" in e for e in ev))
    ended = threading.Event()
    threading.Thread(target=lambda: (list(stream), ended.set()), daemon=True).start()
    gone.set()
    assert ended.wait(5) and slots.open == 0 and slots.take()


def test_history_since_is_the_start_of_the_first_hour():
    """Defect 14: hours=1 is the current clock hour, from its start."""
    pytest.importorskip("falcon")
    from vpod.web.api import history_since

    now = 1_800_001_234.5
    assert history_since(now, 1) == 1_800_000_000.0 <= now
    assert history_since(now, 24) == 1_800_000_000.0 - 23 * 3600


def test_allowed_hosts_open_a_loopback_listener_to_a_proxy_on_this_machine():
    read = dict(access="read", method="GET")
    assert verdict(**read, host="nas.example:443", allowed_hosts=("NAS.example",)).refusal is None
    assert verdict(**read, host="nas.example.evil:443", allowed_hosts=("nas.example",)).refusal[:2] == (421, "wrong_host")
    assert verdict(**read, host="other.example", allowed_hosts=("nas.example",)).refusal[:2] == (421, "wrong_host")
