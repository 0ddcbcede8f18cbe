"""The PostgreSQL driver's own log lines (psycopg, psycopg_pool: stdlib ``logging``) go
through vpod's structured output: a daemon whose database becomes unreachable keeps
writing JSON lines only on stderr (the pool's reconnect warnings included), and never
the password.
"""

from __future__ import annotations

import json
import time

import pytest

from support.tcpproxy import BlackholeProxy

pytestmark = pytest.mark.integration


def test_a_daemon_whose_database_is_unreachable_writes_only_json_lines(tmp_path, daemon_factory, postgres):
    library = tmp_path / "movies"
    library.mkdir()
    database = postgres.database(tmp_path)
    proxy = BlackholeProxy(("127.0.0.1", postgres.port))
    url = database.url.replace(f":{postgres.port}/", f":{proxy.port}/")
    node = daemon_factory({
        "watch": {"libraries": {"movies": str(library)}, "settle_seconds": 0.5},
        "database": {"path": str(database.path), "url": url, "password_file": database.password_file},
        "node": {"name": "node-a"},
        "logging": {"format": "json", "level": "info"},
    }, name="a")
    proxy.close()  # the server is gone: open connections are reset, new ones refused
    deadline = time.monotonic() + 60
    while b"error connecting" not in node.log_path.read_bytes():  # the pool trying to reconnect
        assert node.proc.poll() is None, node.tail()
        assert time.monotonic() < deadline, f"the pool never tried to reconnect:\n{node.tail()}"
        time.sleep(0.2)
    node.kill()  # a clean stop waits out the unreachable database (its writes' timeouts): not the point here
    text = node.log_path.read_text()
    password = open(database.password_file).read().strip()
    assert password and password not in text
    lines = text.splitlines()
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, not_json
    driver = [json.loads(line) for line in lines if "error connecting" in line]
    assert driver and all(e["event"] == "database_driver" and e["logger"] == "psycopg.pool" for e in driver), driver
    assert all(e["level"] == "warning" and "timestamp" in e for e in driver), driver
