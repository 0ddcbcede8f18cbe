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
