"""What ``vpod status`` says of a row in progress whose owner ended.

The Store side (``job_for_path``, ``abandon_dead_owners``, ``owner_alive``) is in the
contract suite, tests/unit/test_store_contract.py.
"""

from __future__ import annotations

from pathlib import Path

from vpod.fingerprint import StatKey

from tests.support.stores import own_a_row_and_exit
from tests.support.stores import sqlite_store as store  # noqa: F401  (the fixture)

ROOT = Path("/library")
STAT = StatKey(10, 1, 2, 3)


def test_status_says_when_a_row_in_progress_has_lost_its_owner(store):
    from vpod.status import format_status, read_status

    own_a_row_and_exit(Path(store.location), ROOT, b"dead.mkv")
    store.register_owner("process")
    assert store.start(store.job_for_path(ROOT, b"live.mkv", "fp", STAT), "process-2_0", "b")
    lines = format_status(read_status(store, batches=0, failures=0)).splitlines()
    [dead_line] = [line for line in lines if "dead.mkv" in line]
    [live_line] = [line for line in lines if "live.mkv" in line]
    assert "its owner ended" in dead_line and "its owner ended" not in live_line


def test_a_dead_owners_progress_shows_where_it_stopped_without_time_left(store):
    """A row whose owner ended keeps its last progress note; status shows where it
    stopped and promises no time left (text and JSON), while a live row's ETA shows."""
    import contextlib
    import json
    import sqlite3
    import time

    from vpod.status import format_status, read_status

    own_a_row_and_exit(Path(store.location), ROOT, b"dead.mkv")
    with contextlib.closing(sqlite3.connect(store.location)) as conn:  # its last note before the kill
        conn.execute(
            "UPDATE files SET progress_percent = 18.0, eta_seconds = 1.0, progress_at = ? WHERE relpath = ?",
            (time.time(), b"dead.mkv"),
        )
        conn.commit()
    store.register_owner("process")
    live = store.start(store.job_for_path(ROOT, b"live.mkv", "fp", STAT), "process-2_0", "b")
    assert live is not None
    store.note_progress(live, 40.0, 120.0)
    report = read_status(store, batches=0, failures=0)
    lines = format_status(report).splitlines()
    [dead_line] = [line for line in lines if "dead.mkv" in line]
    [live_line] = [line for line in lines if "live.mkv" in line]
    assert "18 % when it stopped" in dead_line and "left" not in dead_line
    assert "40 %, " in live_line and " left" in live_line
    rows = {Path(r["path"]).name: r for r in json.loads(json.dumps(report.as_dict()))["in_progress"]}
    assert rows["dead.mkv"]["eta_seconds"] is None and rows["dead.mkv"]["progress_percent"] == 18.0
    assert rows["live.mkv"]["eta_seconds"] is not None


def test_an_estimate_that_ran_out_is_not_shown_as_zero_seconds_left(store):
    """T18C finding 10: ``78 %, 1.49x, 0.0 s left`` mid-encode. The row is written at most
    every 5 s (and the estimate only while the tool reports): an estimate counted down
    past its end is not known any more, not 0 s."""
    import contextlib
    import sqlite3
    import time

    from vpod.status import format_status, read_status

    store.register_owner("process")
    job = store.start(store.job_for_path(ROOT, b"enc.mkv", "fp", STAT), "process-2_0", "b")
    assert job is not None
    store.note_progress(job, 78.0, 2.9)
    with contextlib.closing(sqlite3.connect(store.location)) as conn:  # noted 4 s ago
        conn.execute("UPDATE files SET progress_at = ? WHERE relpath = ?", (time.time() - 4.0, b"enc.mkv"))
        conn.commit()
    report = read_status(store, batches=0, failures=0)
    [shown] = report.queue.in_progress
    assert shown.progress_percent == 78.0 and shown.eta_seconds is None
    [line] = [line for line in format_status(report).splitlines() if "enc.mkv" in line]
    assert "78 %" in line and "left" not in line
    store.note_progress(job, 80.0, 30.0)  # the next report: an estimate again
    [shown] = store.queue_report().in_progress
    assert shown.eta_seconds is not None and 25 < shown.eta_seconds <= 30
