"""The HTTP layer on real sockets (issue 16 item 1): /health and /metrics answer as the
old listener did, unknown paths and methods, a bug in a responder, and the limits that
waitress applies before the app runs."""

from __future__ import annotations

import json
import socket

import pytest
from prometheus_client import CollectorRegistry, Counter

from support.http import post
from vpod.config import HttpConfig
from vpod.http_listener import HttpListener

BODY = {"status": "healthy", "state": "running", "queue_depth": 0, "node": "n\u00e9"}


def serve(health, limits: HttpConfig | None = None) -> HttpListener:
    registry = CollectorRegistry()
    Counter("vpod_demo", "a demo counter", registry=registry).inc()
    listener = HttpListener("127.0.0.1:0", health, registry, limits=limits)
    listener.start()
    return listener


@pytest.fixture
def listener():
    current = serve(lambda: (True, BODY))
    yield current
    current.close()


def test_health_and_metrics_answer_as_before(listener):
    status, headers, body = post(listener.port, "/health", b"", method="GET")
    assert (status, headers["content-type"], body) == (200, "application/json", json.dumps(BODY).encode())
    assert headers["server"] == "vpod"
    status, headers, body = post(listener.port, "/metrics", b"", method="GET")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"vpod_demo_total 1.0" in body
    status, headers, _ = post(listener.port, "/metrics", b"", {"Accept": "application/openmetrics-text"}, method="GET")
    assert headers["content-type"].startswith("application/openmetrics-text")
    status, headers, body = post(listener.port, "/nothing?x=1", b"", method="GET")
    assert (status, headers["content-type"], body) == (404, "text/plain; charset=utf-8",
                                                        b"not found: try GET /health, GET /metrics, POST /hooks/sonarr, POST /hooks/radarr\n")
    assert post(listener.port, "/health", b"{}", {"Content-Type": "application/json"})[0] == 405
    # Without a webhook receiver the hooks are off.
    assert post(listener.port, "/hooks/sonarr", b"{}", {"Content-Type": "application/json"})[0] == 403


def test_unhealthy_is_503_and_a_bug_is_500_and_the_server_goes_on():
    calls = []

    def health():
        calls.append(1)
        if len(calls) == 1:
            return False, {"status": "unhealthy", "reason": "paused"}
        raise RuntimeError("boom")

    listener = serve(health)
    try:
        assert post(listener.port, "/health", b"", method="GET")[0] == 503
        status, _, body = post(listener.port, "/health", b"", method="GET")
        assert status == 500 and b"boom" not in body
        assert post(listener.port, "/metrics", b"", method="GET")[0] == 200
    finally:
        listener.close()


def test_waitress_refuses_a_body_or_headers_over_the_limits_before_the_app():
    listener = serve(lambda: (True, BODY), HttpConfig(listen="127.0.0.1:0", max_body_bytes=2048))
    try:
        assert post(listener.port, "/hooks/radarr", b"x" * 4096, {"Content-Type": "application/json"})[0] == 413
        assert post(listener.port, "/health", b"", {"X-Big": "y" * 70_000}, method="GET")[0] == 431
        assert post(listener.port, "/health", b"", method="GET")[0] == 200
    finally:
        listener.close()


def test_close_releases_the_port(listener):
    port = listener.port
    listener.close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
