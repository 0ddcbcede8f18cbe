"""Bad input at the door (issue 16 item 5): a table of hostile requests to a running
``vpod run``. Each gets its documented answer and a log line; nothing is queued; the
daemon keeps serving and processing; a file outside the libraries stays untouched.

One daemon serves the whole table (module fixture); the cases run in order, the burst
last but one, and the last test proves the daemon still serves and processes a real
webhook afterwards.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.daemon import DaemonProcess, daemon_env, write_config
from support.http import get, health, post
from support.media import audio, mkvmerge_tracks, video

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hooks"
KEY = "hook-key-0123456789"
USER, PASSWORD = "sonarr", "s3cret-pass"
MAX_BODY = 65_536
GOOD = {"Content-Type": "application/json", "X-Api-Key": KEY}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Door:
    """The shared daemon, its libraries and the file outside them."""

    def __init__(self, daemon: DaemonProcess, tv: Path, outside: Path, port: int) -> None:
        self.daemon, self.tv, self.outside, self.port = daemon, tv, outside, port


def _digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    base = tmp_path_factory.mktemp("hostile")
    tv = base / "library" / "tv"
    (tv / "Show").mkdir(parents=True)
    outside = base / "elsewhere"
    outside.mkdir()
    (outside / "secret.mkv").write_bytes(b"not for vpod")
    (tv / "escape").symlink_to(outside)  # a folder in the library that leads out
    (tv / "Show" / "link.mkv").symlink_to(outside / "secret.mkv")  # a file in the library that leads out
    (tv / "Show" / "notes.txt").write_text("not a media file")
    home = base / "home"
    home.mkdir()
    config = write_config(base / "daemon.toml", {
        "watch": {"libraries": {"tv": str(tv)}, "settle_seconds": 60.0},
        "processing": {"workers": 1},
        "database": {"path": str(base / "vpod.db")},
        "logging": {"format": "json", "level": "debug"},
        "http": {"listen": "127.0.0.1:0", "max_body_bytes": MAX_BODY, "requests_per_second": 20.0,
                 "request_burst": 100},
        "hooks": {"username": USER, "password": PASSWORD, "api_key": KEY,
                  "path_map": [{"remote": "/tv", "local": str(tv)}, {"remote": "/other", "local": str(outside)}]},
    })
    daemon = DaemonProcess(config, env=daemon_env(home), log_path=base / "daemon.log")
    daemon.wait_started()
    port = daemon.wait_for("http_listening")[0]["port"]
    yield Door(daemon, tv, outside, port)
    daemon.stop()


def download(path: str, event: str = "Download") -> dict[str, Any]:
    data = json.loads((FIXTURES / "sonarr-v4-download.json").read_text())
    data["eventType"] = event
    data["episodeFile"]["path"] = path
    return data


def body_of(data: Any) -> bytes:
    return json.dumps(data).encode()


BIG = b'{"eventType": "Test", "padding": "' + b"x" * (MAX_BODY + 10) + b'"}'
TEN_MB = b'{"eventType": "Test", "padding": "' + b"x" * (10 * 1024 * 1024) + b'"}'

CASES = [
    # id, method, path, headers, body, status, log event, reason
    ("malformed-json", "POST", "/hooks/sonarr", GOOD, b'{"eventType": "Download", ', 400, "hook_refused", "malformed_json"),
    ("not-utf8", "POST", "/hooks/sonarr", GOOD, b"\xff\xfe{}", 400, "hook_refused", "malformed_json"),
    ("not-an-object", "POST", "/hooks/sonarr", GOOD, b"[1, 2]", 400, "hook_refused", "not_a_payload"),
    ("deep-json", "POST", "/hooks/sonarr", GOOD, b"[" * 20_000 + b"]" * 20_000, 400, "hook_refused",
     "malformed_json"),
    ("wrong-content-type", "POST", "/hooks/sonarr", {**GOOD, "Content-Type": "text/plain"},
     body_of(download("/tv/Show/a.mkv")), 415, "http_request_refused", "unsupported_media_type"),
    ("form-content-type", "POST", "/hooks/sonarr", {**GOOD, "Content-Type": "application/x-www-form-urlencoded"},
     b"eventType=Download", 415, "http_request_refused", "unsupported_media_type"),
    ("body-over-limit", "POST", "/hooks/sonarr", GOOD, BIG, 413, "http_request_refused", "body_too_large"),
    ("ten-mb-body", "POST", "/hooks/sonarr", GOOD, TEN_MB, 413, "http_request_refused", "body_too_large"),
    ("unknown-event-type", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/Show/a.mkv", "Explode")), 400,
     "hook_refused", "not_a_payload"),
    ("event-type-a-number", "POST", "/hooks/sonarr", GOOD, b'{"eventType": 1e999}', 400, "hook_refused",
     "not_a_payload"),
    ("radarr-event-to-sonarr", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/Show/a.mkv", "MovieAdded")),
     400, "hook_refused", "not_a_payload"),
    ("dot-dot", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/Show/../../elsewhere/secret.mkv")), 422,
     "hook_refused", "path_traversal"),
    ("dot-dot-windows", "POST", "/hooks/sonarr", GOOD, body_of(download("D:\\TV\\..\\..\\secret.mkv")), 422,
     "hook_refused", "path_traversal"),
    ("outside-every-library", "POST", "/hooks/sonarr", GOOD, body_of(download("/other/secret.mkv")), 422,
     "hook_refused", "outside_libraries"),
    ("unmapped-path", "POST", "/hooks/sonarr", GOOD, body_of(download("/data/tv/Show/a.mkv")), 422,
     "hook_refused", "outside_libraries"),
    ("symlink-out", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/escape/secret.mkv")), 422,
     "hook_refused", "outside_libraries"),
    ("symlinked-file-out", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/Show/link.mkv")), 422,
     "hook_refused", "outside_libraries"),
    ("not-a-media-file", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/Show/notes.txt")), 422,
     "hook_refused", "not_watched"),
    ("missing-file", "POST", "/hooks/sonarr", GOOD, body_of(download("/tv/Show/nothing.mkv")), 422,
     "hook_refused", "not_found"),
    ("relative-path", "POST", "/hooks/sonarr", GOOD, body_of(download("Show/a.mkv")), 422, "hook_refused",
     "bad_path"),
    ("unknown-instance", "POST", "/hooks/sonarr?instance=nope", GOOD, body_of(download("/tv/Show/a.mkv")), 400,
     "hook_refused", "unknown_instance"),
    ("no-credentials", "POST", "/hooks/sonarr", {"Content-Type": "application/json"},
     body_of(download("/tv/Show/a.mkv")), 401, "http_request_refused", "unauthorized"),
    ("wrong-api-key", "POST", "/hooks/sonarr", {**GOOD, "X-Api-Key": KEY + "x"}, body_of(download("/tv/Show/a.mkv")),
     401, "http_request_refused", "unauthorized"),
    ("wrong-password", "POST", "/hooks/radarr",
     {"Content-Type": "application/json", "Authorization": basic(USER, PASSWORD + "x")},
     body_of(download("/tv/Show/a.mkv")), 401, "http_request_refused", "unauthorized"),
    ("wrong-user", "POST", "/hooks/sonarr",
     {"Content-Type": "application/json", "Authorization": basic("radarr", PASSWORD)},
     body_of(download("/tv/Show/a.mkv")), 401, "http_request_refused", "unauthorized"),
    ("garbled-basic", "POST", "/hooks/sonarr", {"Content-Type": "application/json", "Authorization": "Basic %%%"},
     body_of(download("/tv/Show/a.mkv")), 401, "http_request_refused", "unauthorized"),
    ("get-a-hook", "GET", "/hooks/sonarr", GOOD, b"", 405, "http_request_refused", None),
    ("unknown-hook", "POST", "/hooks/lidarr", GOOD, body_of(download("/tv/Show/a.mkv")), 404,
     "http_request_refused", None),
    ("unknown-path", "GET", "/admin", {}, b"", 404, "http_request_refused", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_hostile_request_gets_its_answer_and_a_log_line(door: Door, case):
    _, method, path, headers, body, status, event, reason = case
    secret_before = _digest(door.outside / "secret.mkv")
    logged_before = len(door.daemon.named(event, status=status))
    got, fields, content = post(door.port, path, body, headers, method=method)
    assert got == status, content[:300]
    lines = door.daemon.wait_for(event, count=logged_before + 1, status=status)
    if reason is not None:
        assert lines[-1]["reason"] == reason, lines[-1]
    if case[0] == "event-type-a-number":
        assert "not a string" in json.loads(content)["error"]
    if status == 401:
        assert fields["www-authenticate"].startswith("Basic")
    if status != 404:  # every refusal is JSON, waitress's own (413, 431) too
        assert fields["content-type"] == "application/json", fields
        assert json.loads(content)["ok"] is False
    text = door.daemon.log_path.read_text()
    assert PASSWORD not in text and KEY + "x" not in text.replace(f'"{KEY}x"', "")  # no secret logged
    assert KEY not in text
    assert not door.daemon.named("file_queued") and not door.daemon.named("hook_download")  # nothing queued
    assert _digest(door.outside / "secret.mkv") == secret_before
    assert health(door.port)[0] == 200  # still serving


def test_a_burst_of_1000_requests_gets_4xx_or_429_and_the_daemon_keeps_serving(door: Door):
    body = body_of(download("/tv/Show/a.mkv"))
    headers = {"Content-Type": "application/json", "X-Api-Key": "guess"}
    statuses = [post(door.port, "/hooks/sonarr", body, headers)[0] for _ in range(1000)]
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 800, sorted(set(statuses))
    limited = door.daemon.wait_for("http_rate_limited", client="127.0.0.1")
    assert len(limited) == 1  # one line for the flood, not 800
    assert not door.daemon.named("file_queued")
    # The client is still limited (on a slow machine a request may find a token refilled
    # meanwhile, at requests_per_second = 20: then it is refused by its key, 401, and the
    # next ones by the rate), but /health and /metrics are not rate-limited.
    again: list[int] = []
    while len(again) < 100 and 429 not in again:
        again.append(post(door.port, "/hooks/sonarr", body, headers)[0])
    assert again[-1] == 429 and set(again) <= {401, 429}, again
    assert health(door.port)[0] == 200
    assert get(door.port, "/metrics")[0] == 200
    time.sleep(1.2)  # refused nothing for a second (vpod.http.limits.QUIET_SECONDS): the flood is over
    assert post(door.port, "/hooks/sonarr", body, headers)[0] == 401
    ended = door.daemon.wait_for("http_rate_limit_ended", client="127.0.0.1")
    assert ended[0]["refused"] == statuses.count(429) + again.count(429)


def test_a_concurrent_burst_leaves_the_log_one_json_object_a_line(door: Door):
    """waitress's own lines ("Task queue depth is N" of the waitress.queue logger, when
    requests wait for an app thread) go through vpod's JSON log, not beside it."""
    time.sleep(1.2)  # a fresh bucket of request_burst (100) requests
    body = body_of(download("/tv/Show/a.mkv"))
    headers = {"Content-Type": "application/json", "X-Api-Key": "guess"}
    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        statuses = list(pool.map(lambda _: post(door.port, "/hooks/sonarr", body, headers)[0], range(300)))
    assert set(statuses) <= {401, 429}
    assert health(door.port)[0] == 200
    lines = door.daemon.log_path.read_bytes().splitlines()
    bad = [line for line in lines if not _is_json_object(line)]
    assert not bad, bad[:5]


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_the_daemon_still_processes_a_real_webhook_afterwards(door: Door, media_cache):
    film = media_cache("hostile-eng-jpn.mkv", [video(), audio("eng", default=True), audio("jpn")])
    target = door.tv / "Show" / "Show - S01E01.mkv"
    shutil.copyfile(film, target)
    status, _, content = post(door.port, "/hooks/sonarr", body_of(download("/tv/Show/Show - S01E01.mkv")), GOOD)
    assert status == 202, content
    answer = json.loads(content)
    assert answer["accepted"] == str(target) and "queued" not in answer  # not known yet: the intake decides
    door.daemon.wait_for("file_processed", path=str(target), timeout=40)
    assert [t["language"] for t in mkvmerge_tracks(target) if t["type"] == "audio" and t["default"]] == ["eng"]
    assert _digest(door.outside / "secret.mkv")[0] == hashlib.sha256(b"not for vpod").hexdigest()
    assert os.path.islink(door.tv / "escape")
