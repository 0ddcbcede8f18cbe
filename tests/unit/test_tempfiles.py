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
