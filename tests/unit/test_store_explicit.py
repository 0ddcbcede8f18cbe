"""Who owns a row in progress: ``owner_alive`` and what ``vpod status`` says of a dead owner.

The Store side (``job_for_path``, ``abandon_dead_owners``) is in the contract suite,
tests/unit/test_store_contract.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.fingerprint import StatKey
from vpod.process import owner_alive

ROOT = Path("/library")
STAT = StatKey(10, 1, 2, 3)


@pytest.fixture
def store(tmp_path):
    opened = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    yield opened
    opened.close()


def test_owner_alive_only_judges_vpod_process_workers():
    assert owner_alive("worker-1")
    assert owner_alive(f"process-{os.getpid()}_0")
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not owner_alive(f"process-{dead.pid}_3")


def test_rows_of_a_dead_vpod_process_are_released(store):
    dead = subprocess.Popen(["true"])
    dead.wait()
    owners = {b"dead.mkv": f"process-{dead.pid}_0", b"live.mkv": f"process-{os.getpid()}_1", b"daemon.mkv": "worker-1"}
    for relpath, worker in owners.items():
        assert store.start(store.job_for_path(ROOT, relpath, "fp", STAT), worker, "b")
    assert store.abandon_dead_owners(owner_alive) == [ROOT / "dead.mkv"]
    assert store.file_record(ROOT / "dead.mkv").reason == "interrupted"
    assert store.file_record(ROOT / "live.mkv").state == "processing"
    assert store.file_record(ROOT / "daemon.mkv").state == "processing"


def test_status_says_when_a_row_in_progress_has_lost_its_owner(store):
    from vpod.status import format_status, read_status

    dead = subprocess.Popen(["true"])
    dead.wait()
    for relpath, worker in {b"dead.mkv": f"process-{dead.pid}_0", b"live.mkv": f"process-{os.getpid()}_0"}.items():
        assert store.start(store.job_for_path(ROOT, relpath, "fp", STAT), worker, "b")
    lines = format_status(read_status(store, batches=0, failures=0)).splitlines()
    [dead_line] = [line for line in lines if "dead.mkv" in line]
    [live_line] = [line for line in lines if "live.mkv" in line]
    assert "its owner ended" in dead_line and "its owner ended" not in live_line
