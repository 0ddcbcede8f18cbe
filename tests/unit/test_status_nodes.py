"""vpod status with several nodes (issue 14, must-have 6): every node, the shared queue,
a warning for a node whose clock is off from the database clock by more than 2 s.

The nodes come from a real SQLite store whose ``nodes()`` answer is given: what a node
reports about its clock is measured on PostgreSQL (tests/integration/test_status_nodes_pg.py
runs a node under faketime there); here the report itself is checked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.records import NodeRecord
from vpod.db.store import Store
from vpod.status import format_status, read_status


class _Nodes:
    """A real store, with the nodes another process would have registered."""

    def __init__(self, store: Store, nodes: list[NodeRecord]) -> None:
        self._store = store
        self._nodes = nodes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def nodes(self) -> list[NodeRecord]:
        return list(self._nodes)


def node(name: str, *, offset: float | None = 0.0, alive: bool = True, doing: tuple[str, ...] = ()) -> NodeRecord:
    now = time.time()
    return NodeRecord(
        node=name, host=f"{name}.lan", pid=4242, version="0.14", workers=2, started_at=now - 600,
        last_seen=now - 3, heartbeat_age_seconds=3.0, clock_offset_seconds=offset, alive=alive, doing=doing,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    yield opened
    opened.close()


def test_every_node_is_shown_and_a_skewed_clock_warned_about(store: Store) -> None:
    nodes = [
        node("nas-a", offset=0.2, doing=("/srv/lib/a.mkv",)),
        node("nas-b", offset=600.0),
        node("old", offset=-2.5, alive=False),
    ]
    status = read_status(_Nodes(store, nodes))  # type: ignore[arg-type]
    text = format_status(status)
    assert "nodes: 3 (2 alive)" in text
    for name in ("nas-a", "nas-b", "old"):
        assert f"  {name}" in text
    assert "pid 4242 on nas-a.lan, version 0.14, 2 workers, heartbeat 3.0 s ago, 1 in progress" in text
    assert "      /srv/lib/a.mkv" in text
    warnings = [line for line in text.splitlines() if line.startswith("warning: the clock of node")]
    assert len(warnings) == 2
    assert "node nas-b is 600.0 s ahead of the database clock" in warnings[0]
    assert "node old is 2.5 s behind" in warnings[1]
    assert "queue: 0 queued, 0 in progress" in text  # the shared queue, once

    data = status.as_dict()
    assert [n["node"] for n in data["nodes"]] == ["nas-a", "nas-b", "old"]
    assert [n["clock_skewed"] for n in data["nodes"]] == [False, True, True]
    assert data["nodes"][0]["doing"] == ["/srv/lib/a.mkv"] and data["nodes"][1]["clock_offset_seconds"] == 600.0


def test_a_node_within_two_seconds_or_unmeasured_is_not_warned_about(store: Store) -> None:
    text = format_status(read_status(_Nodes(store, [node("a", offset=1.99), node("b", offset=-2.0), node("c", offset=None)])))  # type: ignore[arg-type]
    assert "warning" not in text


def test_nodes_on_other_hosts_count_as_running(store: Store) -> None:
    """No daemon on this host wrote a live record, but nodes elsewhere beat: vpod runs."""
    status = read_status(_Nodes(store, [node("far", offset=0.0)]))  # type: ignore[arg-type]
    assert not status.daemon.running and status.running
    assert format_status(status).startswith("vpod: running on 1 node(s): far")
    dead = read_status(_Nodes(store, [node("far", alive=False)]))  # type: ignore[arg-type]
    assert not dead.running and format_status(dead).startswith("vpod: stopped")
