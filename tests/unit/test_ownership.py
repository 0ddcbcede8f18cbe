"""Library markers: who may work in a watch root (vpod/watch/ownership.py)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from vpod.watch.ownership import (
    MARKER_NAME,
    STALE_AFTER_HEARTBEATS,
    LibraryClaims,
    Marker,
    MarkerLookup,
    foreign_holder,
    holds,
)

HOST = socket.gethostname()


def marker(database_id: str = "other", *, host: str = HOST, age: float = 0.0, released: bool = False) -> Marker:
    return Marker(database_id, f"/var/lib/{database_id}.db", host, 4242, time.time() - age, 60.0, released)


def written(root: Path, m: Marker) -> Path:
    (root / MARKER_NAME).write_bytes(m.encode())
    return root / MARKER_NAME


@pytest.mark.parametrize(
    "make, locked, expected",
    [
        (lambda: None, False, False),  # no marker
        (lambda: None, True, True),  # locked, unreadable: someone runs there
        (lambda: marker("mine"), True, False),  # our own daemon holds it
        (lambda: marker(), True, True),  # another database's daemon runs
        (lambda: marker(), False, False),  # same host, lock dropped: its daemon ended
        (lambda: marker(), None, True),  # no locks here, fresh heartbeat
        (lambda: marker(age=STALE_AFTER_HEARTBEATS * 60 + 1), None, False),  # no locks, stale
        (lambda: marker(host="elsewhere"), False, True),  # another host: its lock may be invisible here
        (lambda: marker(host="elsewhere", age=STALE_AFTER_HEARTBEATS * 60 + 1), False, False),
        (lambda: marker(host="elsewhere", released=True), False, False),  # it stopped cleanly
    ],
)
def test_who_holds_a_library(make, locked, expected):
    # Markers are made when the test runs: a heartbeat taken at collection time would be
    # minutes old by then in a full run, and stale.
    assert holds(make(), locked, database_id="mine", host=HOST, now=time.time()) is expected


def test_a_claim_writes_the_marker_and_keeps_another_database_out_until_released(tmp_path):
    first = LibraryClaims("db-one", Path("/db/one.db"))
    second = LibraryClaims("db-two", Path("/db/two.db"))
    assert first.claim(tmp_path) is None
    content = json.loads((tmp_path / MARKER_NAME).read_text())
    assert content["database_id"] == "db-one" and content["database"] == "/db/one.db" and content["host"] == HOST

    holder = second.claim(tmp_path)  # the flock of the first is held
    assert holder is not None and holder.database_id == "db-one"
    assert second.held_elsewhere() == {tmp_path: holder}
    assert "/db/one.db" in (second.refusal(tmp_path / "sub" / "x.mkv") or "")
    assert second.refusal(tmp_path.parent / "elsewhere.mkv") is None
    assert foreign_holder(tmp_path, database_id="db-two") is not None
    assert foreign_holder(tmp_path, database_id="db-one") is None  # a vpod process of the owner's database

    first.release(tmp_path)
    assert not (tmp_path / MARKER_NAME).exists()  # a stopped vpod leaves nothing behind
    with capture_logs() as logs:
        assert second.claim(tmp_path) is None
    assert not [e for e in logs if e["event"] == "library_claim_taken_over"]  # released: nothing to report
    assert second.held_elsewhere() == {}
    second.release_all()


def test_a_marker_whose_daemon_died_is_taken_over_at_once(tmp_path):
    dead = LibraryClaims("db-dead", Path("/db/dead.db"))
    assert dead.claim(tmp_path) is None
    dead._drop(tmp_path)  # its descriptor closed as by kill -9: the lock is gone, the marker stays
    live = LibraryClaims("db-live", Path("/db/live.db"))
    with capture_logs() as logs:
        assert live.claim(tmp_path) is None
    taken = [e for e in logs if e["event"] == "library_claim_taken_over"]
    assert len(taken) == 1 and taken[0]["why"] == "its vpod has ended"
    assert json.loads((tmp_path / MARKER_NAME).read_text())["database_id"] == "db-live"
    live.release_all()


def test_a_marker_from_another_host_holds_until_its_heartbeat_is_stale(tmp_path):
    claims = LibraryClaims("mine", Path("/db/mine.db"))
    written(tmp_path, marker(host="nas-2", age=10))
    assert claims.claim(tmp_path) is not None
    written(tmp_path, marker(host="nas-2", age=STALE_AFTER_HEARTBEATS * 60 + 5))
    with capture_logs() as logs:
        assert claims.claim(tmp_path) is None
    assert [e["why"] for e in logs if e["event"] == "library_claim_taken_over"] == ["its heartbeat is stale"]
    claims.release_all()


def test_a_removed_marker_is_written_again_at_the_next_heartbeat(tmp_path):
    now = [1000.0]
    claims = LibraryClaims("mine", Path("/db/mine.db"), heartbeat_seconds=60, clock=lambda: now[0])
    assert claims.claim(tmp_path) is None
    (tmp_path / MARKER_NAME).unlink()
    now[0] += 61
    assert claims.renew() == []
    assert json.loads((tmp_path / MARKER_NAME).read_text())["heartbeat_at"] == 1061.0
    now[0] += 61
    assert claims.renew() == []
    assert json.loads((tmp_path / MARKER_NAME).read_text())["heartbeat_at"] == 1122.0
    claims.release_all()


def test_vpod_process_finds_the_library_a_file_lies_in(tmp_path):
    library = tmp_path / "library"
    (library / "show" / "season").mkdir(parents=True)
    owner = LibraryClaims("db-daemon", Path("/db/daemon.db"))
    assert owner.claim(library) is None
    file = library / "show" / "season" / "e1.mkv"
    assert MarkerLookup("db-daemon").refusal(file) is None  # the same database: go ahead
    refusal = MarkerLookup("db-other").refusal(file)
    assert refusal is not None and str(library) in refusal and "/db/daemon.db" in refusal
    assert MarkerLookup("db-other").refusal(tmp_path / "loose.mkv") is None
    owner.release_all()
    assert MarkerLookup("db-other").refusal(file) is None


def test_a_dry_run_daemon_only_looks(tmp_path):
    owner = LibraryClaims("db-owner", Path("/db/owner.db"))
    looker = LibraryClaims("db-look", Path("/db/look.db"), read_only=True)
    assert looker.claim(tmp_path) is None and not (tmp_path / MARKER_NAME).exists()
    assert owner.claim(tmp_path) is None
    assert looker.claim(tmp_path) is not None
    owner.release_all()
    assert looker.claim(tmp_path) is None and not (tmp_path / MARKER_NAME).exists()


def test_nested_libraries_the_first_claim_keeps_its_folder(tmp_path):
    outer, inner = tmp_path / "tp", tmp_path / "tp" / "two"
    inner.mkdir(parents=True)
    first = LibraryClaims("first", tmp_path / "first.db", roots=lambda: (inner,))
    second = LibraryClaims("second", tmp_path / "second.db", roots=lambda: (outer,))
    try:
        assert first.claim(inner) is None
        assert second.claim(outer) is None  # nothing above tp: its own
        # The second leaves the first's subfolder alone, and only it.
        with capture_logs() as logs:
            assert "is the library of" in second.refusal(inner / "m.mkv")
            assert second.refusal(inner / "deeper" / "n.mkv") is not None
        assert [(e["event"], e["root"], e["subfolder"]) for e in logs] == [
            ("library_claimed_elsewhere", str(inner), True)
        ]
        assert second.refusal(outer / "x.mkv") is None
        assert first.refusal(inner / "m.mkv") is None
        first.release_all()
        assert second.freed_subfolders() == [inner]
    finally:
        first.release_all()
        second.release_all()


def test_a_root_below_another_vpods_recursive_root_is_held_elsewhere(tmp_path):
    outer, inner = tmp_path / "tp", tmp_path / "tp" / "two"
    inner.mkdir(parents=True)
    owner = LibraryClaims("owner", tmp_path / "owner.db")
    late = LibraryClaims("late", tmp_path / "late.db")
    try:
        assert owner.claim(outer) is None
        holder = late.claim(inner)
        assert holder is not None and holder.database_id == "owner"
        assert not (inner / MARKER_NAME).exists()
        owner.release_all()
        assert late.retake((inner,)) == [inner]
    finally:
        owner.release_all()
        late.release_all()


def test_a_claim_after_the_link_moved_removes_the_marker_in_the_old_folder(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    link = tmp_path / "inbox"
    link.symlink_to(old)
    claims = LibraryClaims("mine", tmp_path / "mine.db")
    assert claims.claim(link) is None and (old / MARKER_NAME).exists()
    link.unlink()
    link.symlink_to(new)
    assert claims.claim(link) is None
    assert not (old / MARKER_NAME).exists() and (new / MARKER_NAME).exists()
    claims.release_all()
    assert not (new / MARKER_NAME).exists()


def test_nodes_of_one_database_share_a_root_and_the_survivor_takes_the_marker_over(tmp_path):
    """Issue 14 item 3: several nodes of one database (a server) are one vpod. A second
    node's claim on a root the first one's marker locks is not "another vpod": it works
    there (nothing held elsewhere, nothing logged as claimed elsewhere) and takes the
    marker over once the first node gives it up. Another database is still kept out."""
    first = LibraryClaims("shared-db", "postgresql://db.example/vpod")
    second = LibraryClaims("shared-db", "postgresql://db.example/vpod")
    assert first.claim(tmp_path) is None
    with capture_logs() as logs:
        assert second.claim(tmp_path) is None
    assert second.held_elsewhere() == {} and second.refusal(tmp_path / "a.mkv") is None
    assert not [e for e in logs if e["event"] == "library_claimed_elsewhere"]
    assert second.renew() == []  # the first still holds it: shared, nothing lost

    first.release_all()  # the first node stops: its marker goes
    assert not (tmp_path / MARKER_NAME).exists()
    assert second.renew() == []  # the survivor takes it over at its next check
    assert (tmp_path / MARKER_NAME).exists()
    other = LibraryClaims("other-db", Path("/db/other.db"))
    assert other.claim(tmp_path) is not None  # another database: kept out, as before
    second.release_all()
    assert not (tmp_path / MARKER_NAME).exists()
