"""/metrics names the node (vpod_node_info), /health reports the database connection
(issue 14, must-have 6), from a real daemon."""

from __future__ import annotations

import json
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.http import get, health
from support.postgres import PASSWORD, PostgresMissing, in_ci, running_postgres
from vpod import __version__
from vpod.db.secrets import hide_password

pytestmark = pytest.mark.integration


def sections(inbox):
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "http": {"listen": "127.0.0.1:0"},
    }


def test_metrics_name_the_node_and_health_reports_the_database(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = daemon.wait_for("http_listening")[0]["port"]
    node = socket.gethostname()

    code, content_type, text = get(port, "/metrics")
    assert code == 200
    infos = [
        s for family in text_string_to_metric_families(text) for s in family.samples if s.name == "vpod_node_info"
    ]
    assert [(s.labels, s.value) for s in infos] == [({"node": node, "version": __version__}, 1.0)]

    code, body = health(port)
    assert code == 200 and body["node"] == node
    db = tmp_path / "vpod.db"
    assert body["database"] == {"location": str(db), "connected": True}

    # the database cannot be read: 503, and the reason says why
    db.rename(tmp_path / "vpod.db.away")
    db.mkdir()
    try:
        code, body = health(port)
        assert code == 503 and body["reason"] == "database_unreachable"
        assert body["database"]["connected"] is False and body["database"]["location"] == str(db)
        assert str(db) in body["database"]["error"]
    finally:
        db.rmdir()
        (tmp_path / "vpod.db.away").rename(db)
    assert health(port)[1]["database"]["connected"] is True
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("connection to postgresql://vpod:s3cr%40t@db:5432/vpod failed", "postgresql://vpod:***@db:5432/vpod"),
        ("host=db user=vpod password=s3cret dbname=vpod", "password=***"),
        ("password = 'two words' sslmode=require", "password = *** sslmode"),
        ("postgresql://vpod@db/vpod: timeout", "postgresql://vpod@db/vpod: timeout"),
    ],
)
def test_a_password_never_leaves_in_a_message(text, shown):
    hidden = hide_password(text)
    assert shown in hidden
    assert "s3cr" not in hidden and "two words" not in hidden


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, which it may stop (the session's is shared)."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresMissing as exc:
        if in_ci():
            raise
        pytest.skip(str(exc))


def test_health_reports_a_postgres_connection_lost_and_back_without_its_password(tmp_path, daemon_factory, own_postgres):
    """/health says the database is gone and why while the server is stopped; the URL's
    password (given in the URL itself here) appears nowhere."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = own_postgres
    database = server.database(tmp_path)
    url = database.url.replace("vpod@", f"vpod:{PASSWORD}@")
    daemon = daemon_factory({**sections(inbox), "database": {"url": url}, "node": {"name": "nas-a"}})
    port = daemon.wait_for("http_listening")[0]["port"]
    code, body = health(port)
    assert code == 200 and body["node"] == "nas-a"
    assert body["database"] == {"location": database.url, "connected": True}

    server.stop("immediate")
    code, _, text = get(port, "/health", timeout=60)
    assert PASSWORD not in text
    body = json.loads(text)
    assert code == 503 and body["reason"] == "database_unreachable"
    assert body["database"]["connected"] is False and body["database"]["location"] == database.url
    assert body["database"]["error"]

    server.start()
    deadline = time.monotonic() + 60
    while health(port)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health(port)[1]["database"]["connected"] is True
    assert daemon.stop() == 0
    assert PASSWORD not in daemon.log_path.read_text()
