"""Temp file ownership: a sweep removes only what no live vpod owns (kernel flock)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from vpod.tempfiles import sweep_temps, temp_beside


class Registry:
    """An in-memory TempRegistry (the Store's three methods)."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()

    def register_temp(self, path: Path) -> None:
        self.paths.add(path)

    def forget_temp(self, path: Path) -> None:
        self.paths.discard(path)

    def pending_temps(self) -> list[Path]:
        return sorted(self.paths)


def test_a_temp_file_in_use_is_not_swept_and_goes_when_done(tmp_path):
    registry = Registry()
    source = tmp_path / "film.mkv"
    source.write_bytes(b"source")
    with temp_beside(source, registry) as temp:
        temp.write_bytes(b"partial remux")
        swept = sweep_temps(registry)  # another vpod starting now
        assert swept.removed == [] and swept.in_use == [temp]
        assert temp.read_bytes() == b"partial remux" and registry.pending_temps() == [temp]
    assert not temp.exists() and registry.pending_temps() == []
    assert source.read_bytes() == b"source"


def test_the_leftover_of_a_killed_process_is_swept(tmp_path):
    registry = Registry()
    source = tmp_path / "film.mkv"
    source.write_bytes(b"source")
    # A child process creates a temp file the real way and is killed -9 while it is open.
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, time\nfrom pathlib import Path\nfrom vpod.tempfiles import temp_beside\n"
         "class R:\n    def register_temp(self, p): print(p, flush=True)\n    def forget_temp(self, p): pass\n"
         "with temp_beside(Path(sys.argv[1]), R()) as t:\n    t.write_bytes(b'partial')\n    time.sleep(600)\n",
         str(source)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        leftover = Path(child.stdout.readline().strip())
        registry.register_temp(leftover)
        deadline = time.monotonic() + 30
        while not (leftover.exists() and leftover.stat().st_size):
            assert child.poll() is None and time.monotonic() < deadline, "the child never wrote its temp file"
            time.sleep(0.01)
        assert sweep_temps(registry).in_use == [leftover]  # alive: its lock protects it
    finally:
        child.kill()
        child.wait()
    swept = sweep_temps(registry)
    assert swept.removed == [leftover] and not leftover.exists() and registry.pending_temps() == []
    assert source.read_bytes() == b"source"


def test_only_registered_files_with_the_temp_prefix_are_removed(tmp_path):
    registry = Registry()
    user_file = tmp_path / "film.mkv"
    user_file.write_bytes(b"mine")
    registry.register_temp(user_file)  # a corrupt record must never cost a user file
    unregistered = tmp_path / ".vpod-tmp-0000000000000000.mkv"
    unregistered.write_bytes(b"not recorded by this database")
    assert sweep_temps(registry).removed == []
    assert user_file.read_bytes() == b"mine" and unregistered.exists()
    assert registry.pending_temps() == []


def test_a_temp_file_is_named_after_and_registered_with_its_claim(tmp_path):
    """Issue 14 item 5: a sweeper on any node can tell whose claim a temp file is. The
    registry is the lease keeper's (vpod.leases.ClaimTemps), as the daemon wires it."""
    import threading

    from vpod.config import DatabaseConfig
    from vpod.db.factory import open_store
    from vpod.db.store import Job
    from vpod.leases import LeaseKeeper
    from vpod.media.tools import ToolRunner
    from vpod.tempfiles import claim_of

    store = open_store(DatabaseConfig(path=tmp_path / "v.db"))
    keeper = LeaseKeeper(store, ToolRunner(60.0), threading.Event())
    source = tmp_path / "film.mkv"
    source.write_bytes(b"source")
    job = Job(17, tmp_path, b"film.mkv", None, 0, lease="0123456789abcdef0123456789abcdef")
    with keeper.hold(job, "worker-1"), temp_beside(source, keeper.temps) as temp:
        assert temp.name.startswith(".vpod-tmp-j17-01234567-") and claim_of(temp) == (17, "01234567")
        assert store.pending_temps() == [temp]  # no live lease in the store holds job 17
    with temp_beside(source, keeper.temps) as outside:  # no claim on this thread
        assert claim_of(outside) is None
    assert store.pending_temps() == [] and source.read_bytes() == b"source"
    store.close()


def test_the_daemon_sweeps_leftovers_periodically_not_only_at_start(tmp_path):
    """Issue 14 item 5: a node that died leaves a temp; whichever node sweeps next takes
    it, without a restart. A temp in use (locked) stays."""
    from vpod.config import DatabaseConfig
    from vpod.db.factory import open_store
    from vpod.tempfiles import SWEEP_SECONDS, TempSweeper

    store = open_store(DatabaseConfig(path=tmp_path / "v.db"))
    sweeper = TempSweeper(store, clock=lambda: 0.0)
    source = tmp_path / "film.mkv"
    source.write_bytes(b"source")
    leftover = tmp_path / ".vpod-tmp-j3-deadbeef-0000000000000000.mkv"
    store.register_temp(leftover)
    leftover.write_bytes(b"a dead node's partial remux")
    with temp_beside(source, store) as in_use:
        assert sweeper.tick(1.0) == SWEEP_SECONDS and leftover.exists()  # not due yet
        assert sweeper.tick(SWEEP_SECONDS) == 2 * SWEEP_SECONDS
        assert not leftover.exists() and in_use.exists()
        assert store.pending_temps() == [in_use]
    assert source.read_bytes() == b"source"
    store.close()
