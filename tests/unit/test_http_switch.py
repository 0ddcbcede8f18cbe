"""Switching the HTTP listener on reload: the new address is bound before the old one
closes (issue 11 item 14). Real sockets on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry

from support.http import health
from vpod.http_listener import HttpListener, ListenError, switch_listener


def _healthy() -> tuple[bool, dict[str, object]]:
    return True, {"status": "healthy"}


@pytest.fixture
def listener():
    current = HttpListener("127.0.0.1:0", _healthy, CollectorRegistry())
    current.start()
    yield current
    current.close()


def test_an_address_in_use_leaves_the_old_listener_serving(listener):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ListenError, match="cannot listen on"):
            switch_listener(listener, f"127.0.0.1:{taken.getsockname()[1]}", _healthy, CollectorRegistry())
    assert listener.serving and health(listener.port)[0] == 200


def test_the_same_port_on_another_address_is_taken_over(listener):
    port = listener.port
    new = switch_listener(listener, f"0.0.0.0:{port}", _healthy, CollectorRegistry())
    try:
        assert new is not listener and not listener.serving
        assert new.port == port and health(port)[0] == 200
    finally:
        new.close()


def test_empty_stops_serving(listener):
    assert switch_listener(listener, "", _healthy, CollectorRegistry()) is None
    assert not listener.serving
