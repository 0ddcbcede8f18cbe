"""The web API against a running ``vpod run`` (issue 17 items 3 and 4, and the server
side of item 1's live updates): listings, retry and resume with the token, the refusals
of requests without it or from another site, the event stream, hostile file names, and
reads refused off loopback without a token."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from support.http import post
from support.media import default_audio_languages
from support.tools import breakable_tool, path_with

pytestmark = pytest.mark.integration

SETTLE = 0.3
TOKEN = "test-token-0123456789abcdef"
HOSTILE = "<img src=x onerror=alert(1)>.mkv"


def sections(inbox: Path, **http: Any) -> dict[str, Any]:
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, "workers": 1},
        "http": {"listen": "127.0.0.1:0", "token": TOKEN, **http},
    }


def port_of(daemon) -> int:
    return daemon.wait_for("http_listening")[0]["port"]


def call(port: int, method: str, path: str, body: Any = None, *, token: str | None = None,
         headers: dict[str, str] | None = None, form: bool = False) -> tuple[int, dict[str, str], Any]:
    """One request; the body parsed as JSON when the answer is JSON."""
    fields = dict(headers or {})
    data = b""
    if body is not None:
        if form:
            from urllib.parse import urlencode

            data = urlencode(body).encode()
            fields.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            data = json.dumps(body).encode()
            fields.setdefault("Content-Type", "application/json")
    if token is not None:
        fields["Authorization"] = f"Bearer {token}"
    status, answer_headers, content = post(port, path, data, fields, method=method)
    parsed: Any = content
    if answer_headers.get("content-type", "").startswith("application/json"):
        parsed = json.loads(content)
    return status, answer_headers, parsed


def failed_paths(port: int) -> list[str]:
    status, _, body = call(port, "GET", "/api/files?state=failed")
    assert status == 200
    return [f["path"] for f in body["files"]]


def test_a_failure_is_listed_and_retried_with_the_token_only(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    flag = tmp_path / "mkvpropedit-broken"
    flag.touch()
    tools = breakable_tool(tmp_path / "bin", "mkvpropedit", flag)
    daemon = daemon_factory(sections(inbox), extra_env={"PATH": path_with(tools)})
    port = port_of(daemon)
    for name in ("a.mkv", "b.mkv"):
        shutil.copyfile(jpn_eng_mkv, inbox / name)
    for name in ("a.mkv", "b.mkv"):
        daemon.wait_for("file_failed", path=str(inbox / name))

    status, headers, snapshot = call(port, "GET", "/api/status")
    assert status == 200 and headers["x-content-type-options"] == "nosniff"
    assert snapshot["state"] == "running" and snapshot["counts"]["failed"] == 2
    assert snapshot["library_counts"] == {"inbox": snapshot["counts"]}  # one library: its counts are the totals
    failure = next(f for f in snapshot["recent_failures"] if f["path"] == str(inbox / "a.mkv"))
    assert failure["reason"] == "tool_failed" and "simulated failure" in failure["error"]
    assert failure["library"] == "inbox" and failure["at"] > 0
    assert snapshot["recent_batches"] and "unchanged_count" in snapshot["recent_batches"][0]

    status, _, listing = call(port, "GET", "/api/files?state=failed&library=inbox")
    assert status == 200 and listing["next"] is None
    listed = {f["path"]: f for f in listing["files"]}
    assert set(listed) == {str(inbox / "a.mkv"), str(inbox / "b.mkv")}
    assert listed[str(inbox / "a.mkv")]["reason"] == "tool_failed"
    assert "simulated failure" in listed[str(inbox / "a.mkv")]["error"]
    status, _, events = call(port, "GET", f"/api/files/{failure['id']}/events")
    assert status == 200 and events["file"]["path"] == str(inbox / "a.mkv")
    assert events["events"][0]["status"] == "failed" and "simulated failure" in events["events"][0]["error"]
    assert call(port, "GET", "/api/files/999999/events")[0] == 404
    flag.unlink()  # the cause is fixed: only a refused retry keeps the files failed now

    retry = {"path": str(inbox / "a.mkv")}
    host = f"http://127.0.0.1:{port}"
    assert call(port, "POST", "/api/retry", retry)[0] == 403  # no token
    assert call(port, "POST", "/api/retry", retry, token="wrong-token-0123456789")[0] == 403
    assert call(port, "POST", "/api/retry", retry, token=TOKEN, headers={"Origin": "http://evil.example"})[0] == 403
    status, headers, login = call(port, "POST", "/api/login", {"token": TOKEN}, headers={"Origin": host})
    assert status == 200 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";", 1)[0]
    with_cookie = {"Cookie": cookie, "Origin": host}
    status, _, refused = call(port, "POST", "/api/retry", retry, headers=with_cookie)  # no CSRF token
    assert status == 403 and refused["reason"] == "csrf"
    assert call(port, "POST", "/api/retry", retry, headers={**with_cookie, "X-CSRF-Token": "0" * 40})[0] == 403
    assert call(port, "POST", "/api/retry", retry, headers={"Cookie": cookie})[0] == 403  # no Origin
    time.sleep(SETTLE * 2)  # had any of them requeued the file, the daemon would be at it now
    assert sorted(failed_paths(port)) == [str(inbox / "a.mkv"), str(inbox / "b.mkv")]
    assert not daemon.named("file_processed")

    status, _, answer = call(port, "POST", "/api/retry", retry, token=TOKEN, headers={"Origin": host})
    assert status == 200 and answer == {"ok": True, "requeued": 1, "refused": []}
    daemon.wait_for("file_processed", path=str(inbox / "a.mkv"))
    assert default_audio_languages(inbox / "a.mkv") == ["eng"]

    # The page's way: the login cookie, its CSRF token, a form, then back to the page.
    csrf = login["csrf_token"]
    status, headers, _ = call(port, "POST", "/api/retry", {"all_failed": "true", "csrf_token": csrf}, form=True,
                              headers=with_cookie)
    assert status == 303 and headers["location"] == "../?said=requeued"
    daemon.wait_for("file_processed", path=str(inbox / "b.mkv"))
    assert failed_paths(port) == []
    status, _, again = call(port, "POST", "/api/retry", retry, token=TOKEN)
    assert status == 200 and again["refused"] == [{"path": str(inbox / "a.mkv"), "reason": "not_failed"}]
    assert daemon.stop() == 0


def test_paged_listing_and_hostile_names_come_back_as_json_strings(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)
    (inbox / HOSTILE).write_text("not a video")
    (inbox / 'quote"\'&.mkv').write_text("not a video")
    bad = os.fsencode(inbox) + b"/bad\xff\xfe.mkv"
    with open(bad, "wb") as handle:
        handle.write(b"not a video")
    for n in range(3):
        (inbox / f"plain-{n}.mkv").write_text("not a video")
    daemon.wait_for("file_failed", count=6)

    seen: list[dict[str, Any]] = []
    after = 0
    pages = 0
    while True:
        status, headers, page = call(port, "GET", f"/api/files?state=failed&limit=2&after={after}")
        assert status == 200 and headers["content-type"] == "application/json"
        assert len(page["files"]) <= 2
        seen += page["files"]
        pages += 1
        if page["next"] is None:
            break
        after = page["next"]
    assert pages >= 3 and len(seen) == 6 and len({f["id"] for f in seen}) == 6
    assert [f["id"] for f in seen] == sorted(f["id"] for f in seen)
    paths = {f["path"] for f in seen}
    assert str(inbox / HOSTILE) in paths and str(inbox / 'quote"\'&.mkv') in paths
    assert f"{inbox}/bad\\xff\\xfe.mkv" in paths  # undecodable bytes as \xNN, as vpod status shows them
    assert call(port, "GET", "/api/files?state=nonsense")[0] == 400
    assert call(port, "GET", "/api/files?limit=0")[0] == 400
    assert call(port, "GET", "/api/files?library=elsewhere")[2]["files"] == []

    # The raw bytes of the answer are JSON: nothing of the name is markup to a browser
    # told it is JSON and not to sniff (nosniff).
    status, headers, raw = post(port, "/api/status", b"", method="GET")
    assert status == 200 and headers["content-type"] == "application/json"
    snapshot = json.loads(raw)
    assert str(inbox / HOSTILE) in {f["path"] for f in snapshot["recent_failures"]}
    # A failure shown with \xNN is retried by that text.
    status, _, answer = call(port, "POST", "/api/retry", {"path": f"{inbox}/bad\\xff\\xfe.mkv"}, token=TOKEN)
    assert status == 200 and answer["requeued"] == 1
    daemon.wait_for("file_failed", count=7)
    status, _, history = call(port, "GET", "/api/history?hours=3")
    assert status == 200 and len(history["hours"]) == 3 and sum(h["failed"] for h in history["hours"]) == 7
    status, _, batches = call(port, "GET", "/api/batches?limit=5")
    assert status == 200 and 1 <= len(batches["batches"]) <= 5
    assert daemon.stop() == 0


def test_resume_after_an_on_error_fail_pause(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({**sections(inbox), "policy": {"on_error": "fail"}})
    port = port_of(daemon)
    (inbox / "broken.mkv").write_text("not a video")
    daemon.wait_for("processing_paused")
    status, _, snapshot = call(port, "GET", "/api/status")
    assert snapshot["state"] == "paused" and snapshot["paused"]["path"] == str(inbox / "broken.mkv")
    shutil.copyfile(jpn_eng_mkv, inbox / "good.mkv")
    daemon.wait_for("file_queued", path=str(inbox / "good.mkv"))

    assert call(port, "POST", "/api/resume", {})[0] == 403  # no token
    assert call(port, "GET", "/api/status")[2]["state"] == "paused"
    status, _, answer = call(port, "POST", "/api/resume", token=TOKEN)
    assert status == 200 and answer["resumed"] is True and answer["was"] == "paused"
    assert answer["paused_path"] == str(inbox / "broken.mkv")
    daemon.wait_for("processing_resumed")
    daemon.wait_for("file_processed", path=str(inbox / "good.mkv"))
    status, _, again = call(port, "POST", "/api/resume", token=TOKEN)
    assert status == 200 and again["resumed"] is False and again["was"] == "running"
    assert daemon.stop() == 0


class EventStream:
    """A raw ``GET /api/events`` connection, read event by event."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split()[1])
        self.head = head.decode("latin-1").lower()

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buffer[:200])
            self.buffer += chunk
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def next_status(self, deadline: float) -> dict[str, Any]:
        """The next ``status`` event (chunked transfer framing skipped line by line)."""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            block = self._until(b"\n\n").decode()
            lines = [line for line in block.split("\n") if ":" in line or line.startswith("event")]
            if any(line == "event: status" for line in lines):
                data = next(line for line in lines if line.startswith("data: "))
                return json.loads(data[len("data: "):])
        raise TimeoutError("no status event")

    def ended(self, timeout: float) -> bool:
        """The server closed the stream within ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return True


def test_the_event_stream_tells_a_finished_file_and_ends_with_the_daemon(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)
    stream = EventStream(port)
    assert stream.status == 200 and "content-type: text/event-stream" in stream.head
    first = stream.next_status(time.monotonic() + 10)  # the snapshot at once
    assert first["counts"]["done"] == 0

    shutil.copyfile(jpn_eng_mkv, inbox / "one.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "one.mkv"))
    finished_at = time.monotonic()
    # The goal is within about 2 s (at most one event per second after a change); the
    # deadline is generous for a loaded machine: this checks that it comes, not how fast.
    deadline = finished_at + 30
    latest = first
    while latest["counts"]["done"] == 0:
        latest = stream.next_status(deadline)
    assert latest["counts"]["done"] == 1

    assert daemon.stop() == 0  # an open stream does not hold the daemon up
    assert stream.ended(10)


def test_event_streams_are_bounded(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)
    from vpod.web.stream import MAX_STREAMS

    streams = [EventStream(port) for _ in range(MAX_STREAMS)]
    assert all(s.status == 200 for s in streams)
    status, headers, body = call(port, "GET", "/api/events")
    assert status == 503 and body["reason"] == "too_many_streams" and headers["retry-after"]
    assert call(port, "GET", "/health")[0] == 200  # the other requests still have their threads
    assert daemon.stop() == 0
    assert all(s.ended(10) for s in streams)


def test_reads_off_loopback_need_the_token(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    open_daemon = daemon_factory({**sections(inbox), "http": {"listen": "0.0.0.0:0"}}, name="no-token")
    port = port_of(open_daemon)
    status, _, body = call(port, "GET", "/api/status")
    assert status == 403 and body["reason"] == "token_required"
    assert call(port, "GET", "/api/files")[0] == 403
    assert call(port, "GET", "/health")[0] == 200  # /health and /metrics keep their own rules
    assert call(port, "POST", "/api/retry", {"all_failed": True})[0] == 403
    assert open_daemon.named("http_web_locked")  # fix17 defect 16: said at start-up
    assert open_daemon.stop() == 0

    daemon = daemon_factory({**sections(inbox), "http": {"listen": "0.0.0.0:0", "token": TOKEN}}, name="token")
    port = port_of(daemon)
    assert call(port, "GET", "/api/status")[0] == 401
    assert call(port, "GET", "/api/status", token="wrong-token-0123456789")[0] == 401
    assert call(port, "GET", "/api/status", token=TOKEN)[0] == 200
    assert call(port, "GET", "/api/events", token=None)[0] == 401
    assert daemon.stop() == 0


def test_the_api_under_a_base_path(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox, base_path="/vpod"))
    port = port_of(daemon)
    assert call(port, "GET", "/vpod/api/status")[0] == 200
    assert call(port, "GET", "/api/status")[0] == 404
    assert call(port, "GET", "/health")[0] == 200
    assert daemon.stop() == 0


# -- fix17: the fresh-user tester's defects (T17-REPORT) ------------------------------------


def raw_get(port: int, path: str, host: str) -> int:
    """The status of a GET sent with ``Host: host``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(100).split()[1])


def test_counts_per_library_retry_by_id_and_json_errors(tmp_path, daemon_factory):
    """Defects 2 (files by state per library), 6 (a huge id), 10 (two names shown alike:
    retry by id), 12 (Host check), 14 (history's since) and 15 (JSON errors, 405, 415,
    strict all_failed)."""
    inbox, other = tmp_path / "inbox", tmp_path / "other"
    inbox.mkdir()
    other.mkdir()
    daemon = daemon_factory({**sections(inbox), "watch": {"paths": [str(inbox), str(other)], "settle_seconds": SETTLE}})
    port = port_of(daemon)
    (inbox / "bs\\xffname.mkv").write_text("not a video")  # a backslash, x, f, f
    daemon.wait_for("file_failed")
    literal = call(port, "GET", "/api/status")[2]["recent_failures"][0]["id"]
    with open(os.fsencode(inbox) + b"/bs\xffname.mkv", "wb") as handle:  # the byte 0xff
        handle.write(b"not a video")
    (other / "broken.mkv").write_text("not a video")
    daemon.wait_for("file_failed", count=3)

    status, _, snapshot = call(port, "GET", "/api/status")
    assert status == 200
    assert snapshot["library_counts"]["inbox"]["failed"] == 2 and snapshot["library_counts"]["other"]["failed"] == 1
    assert set(snapshot["library_counts"]["inbox"]) == set(snapshot["counts"])
    shown = [f for f in snapshot["recent_failures"] if f["path"] == f"{inbox}/bs\\xffname.mkv"]
    assert len(shown) == 2  # the two names look alike: the page retries by id
    ids = [f["id"] for f in shown]
    assert literal in ids
    status, _, answer = call(port, "POST", "/api/retry", {"id": literal}, token=TOKEN)
    assert status == 200 and answer == {"ok": True, "requeued": 1, "refused": []}
    daemon.wait_for("file_failed", count=4)
    attempts = {i: len(call(port, "GET", f"/api/files/{i}/events")[2]["events"]) for i in ids}
    assert attempts[literal] == 2 and sum(attempts.values()) == 3  # only that one ran again
    status, _, answer = call(port, "POST", "/api/retry", {"ids": [999999]}, token=TOKEN)
    assert status == 200 and answer["ok"] is False and answer["refused"] == [{"id": 999999, "reason": "unknown"}]

    status, headers, body = call(port, "GET", "/api/files/99999999999999999999999999/events")
    assert status == 404 and body["ok"] is False
    for path in ("/api/nonsense", "/api/files/abc/events"):
        status, headers, body = call(port, "GET", path)
        assert status == 404 and headers["content-type"] == "application/json" and body["reason"] == "not_found"
    status, _, body = call(port, "GET", "/api/files?state=failed&state=done")
    assert status == 400 and body["reason"] == "bad_parameter"  # not silently the last one
    status, _, body = call(port, "PUT", "/api/retry", {"all_failed": True}, token=TOKEN)
    assert status == 405 and body["reason"] == "method_not_allowed"
    status, _, body = call(port, "POST", "/api/retry", {"all_failed": "yes"}, token=TOKEN)
    assert status == 400 and body["reason"] == "bad_body"
    status, _, body = post(port, "/api/retry", b"x", {"Content-Type": "text/plain", "Authorization": f"Bearer {TOKEN}"})
    body = json.loads(body)
    assert status == 415 and body["reason"] == "unsupported_media_type" and body["content_type"] == "text/plain"
    refused = daemon.wait_for("http_request_refused", status=415)[0]
    assert refused["reason"] == "unsupported_media_type" and refused["content_type"] == "text/plain"

    status, _, history = call(port, "GET", "/api/history?hours=1")
    assert status == 200 and history["since"] < history["until"] and history["since"] % 3600 == 0
    assert len(history["hours"]) == 1 and history["hours"][0]["hour"] >= history["since"]

    assert raw_get(port, "/api/status", "evil.example:80") == 421
    assert raw_get(port, "/", f"evil.example:{port}") == 421
    assert raw_get(port, "/api/status", f"localhost:{port}") == 200
    assert call(port, "HEAD", "/")[0] == 200
    assert daemon.stop() == 0


def test_logout_no_js_answers_and_a_resume_paused_again(tmp_path, daemon_factory):
    """Defects 5 (no raw JSON after a form POST: the page says what happened), 9 (logout
    needs the CSRF token and ends the session), 11 (a resume confirmed though another
    failure pauses again) and 17 (processing_paused's failed_path as \\xNN)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({**sections(inbox), "policy": {"on_error": "fail"}})
    port = port_of(daemon)
    host = f"http://127.0.0.1:{port}"
    with open(os.fsencode(inbox) + b"/bad\xff.mkv", "wb") as handle:
        handle.write(b"not a video")
    paused = daemon.wait_for("processing_paused")[0]
    assert paused["failed_path"] == f"{inbox}/bad\\xff.mkv"
    (inbox / "broken-too.mkv").write_text("not a video")
    daemon.wait_for("file_queued", path=str(inbox / "broken-too.mkv"))

    status, headers, _ = call(port, "POST", "/api/login", {"token": "wrong-token-0123456789"}, form=True,
                              headers={"Origin": host})
    assert status == 303 and headers["location"] == "../?said=wrong_token"
    status, _, page = post(port, "/?said=wrong_token", b"", method="GET")
    assert status == 200 and b"Refused: wrong token." in page
    assert b"Refused: wrong token." not in post(port, "/?said=%3Cb%3E", b"", method="GET")[2]
    status, headers, _ = call(port, "POST", "/api/resume", {"csrf_token": ""}, form=True, headers={"Origin": host})
    assert status == 303 and headers["location"] == "../?said=unauthorized"

    status, headers, login = call(port, "POST", "/api/login", {"token": TOKEN}, headers={"Origin": host})
    cookie = {"Cookie": headers["set-cookie"].split(";", 1)[0], "Origin": host}
    csrf = {**cookie, "X-CSRF-Token": login["csrf_token"]}
    assert call(port, "POST", "/api/logout", {}, headers=cookie)[0] == 403  # no CSRF token
    assert call(port, "POST", "/api/logout", {}, headers={**csrf, "Origin": "http://evil.example"})[0] == 403
    status, _, answer = call(port, "POST", "/api/resume", {}, headers=csrf)
    assert status == 200 and answer["resumed"] is True  # confirmed, though broken-too may pause it again
    daemon.wait_for("processing_paused", count=2)
    assert call(port, "POST", "/api/logout", {}, headers=csrf)[0] == 200
    status, _, refused = call(port, "POST", "/api/resume", {}, headers=csrf)  # the old cookie
    assert status == 403 and refused["reason"] == "unauthorized"
    assert daemon.stop() == 0


def test_a_stop_with_a_stream_open_logs_no_error(tmp_path, daemon_factory):
    """Defect 8: no OSError traceback from waitress's trigger; defect 3: the stream tells
    the stop at once."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)
    streams = [EventStream(port) for _ in range(3)]
    for stream in streams:
        stream.next_status(time.monotonic() + 10)
    daemon.signal(15)
    assert streams[0].next_status(time.monotonic() + 30)["state"] in ("stopping", "stopped")
    assert daemon.proc.wait(60) == 0
    assert [e for e in daemon.events() if e.get("level") in ("error", "critical")] == []


def test_closed_streams_free_their_slots_at_once(tmp_path, daemon_factory):
    """Defect 7: streams closed by their clients are not counted until a heartbeat."""
    from vpod.web.stream import MAX_STREAMS

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)
    streams = [EventStream(port) for _ in range(MAX_STREAMS)]
    for stream in streams:
        stream.next_status(time.monotonic() + 10)
        stream.sock.close()
    deadline = time.monotonic() + 10  # far below the 15 s heartbeat; a slot is freed within about 1 s
    while True:
        fresh = EventStream(port)
        if fresh.status == 200 or time.monotonic() > deadline:
            break
        fresh.sock.close()
        time.sleep(0.2)
    assert fresh.status == 200
    assert daemon.stop() == 0


def test_a_reverse_proxy_on_this_machine_passing_its_host_is_answered_when_allowed(tmp_path, daemon_factory):
    """A re-test put nginx-like proxying (Host passed on, as the README says) in front of a
    loopback listener: every request got 421. `[http] allowed_hosts` names the proxy's
    host; other names stay refused (DNS rebinding), and the refusal names the host."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox, allowed_hosts=["nas.example"]))
    port = port_of(daemon)
    status, _, body = call(port, "GET", "/api/status", headers={"Host": "nas.example"})
    assert status == 200 and body["state"] == "running"
    status, _, body = call(port, "POST", "/api/resume", {}, token=TOKEN,
                           headers={"Host": "nas.example", "Origin": "http://nas.example"})
    assert status in (200, 504) and body.get("reason") != "cross_origin"  # nothing paused: not resumed, not refused
    status, _, body = call(port, "GET", "/api/status", headers={"Host": "evil.example:80"})
    assert (status, body["reason"]) == (421, "wrong_host")
    refused = daemon.wait_for("http_request_refused", reason="wrong_host")[0]
    assert refused["host"] == "evil.example:80"
    assert daemon.stop() == 0
