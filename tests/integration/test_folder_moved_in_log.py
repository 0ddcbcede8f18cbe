"""A folder moved in is the walk's: its files are logged ``file_queued`` at debug level,
its counts at info (``scan_completed``, ``why = "folder"``), while a file written live at
the same time keeps its ``file_queued`` at info (README, log events; issue 15 fix).

watchdog's inotify emitter follows a folder moved in with synthetic created events for
its content; vpod took those as live files, so a folder of 2,000 files wrote up to an
info line per file (1,447 in a tester's run) besides its walk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SETTLE = 2.0  # longer than writing the folder takes
FILES = 40


def test_folder_moved_in_is_logged_by_its_walk_and_a_live_file_at_info(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}})  # logs at debug
    daemon.wait_for("scan_completed", why="catch_up")
    # Written just now (a ctime within the settle time): the walk cannot hand them over at
    # once, so every file meets watchdog's synthetic event in the stabilizer, whichever
    # comes first (with older files the walk often wins the race, and the old code's info
    # lines were only some of them).
    staging = tmp_path / "staging" / "batch"  # outside the watched tree
    names = [Path(f"e{i:02}.mkv") for i in range(FILES - 4)] + [Path("Extras") / "deep" / f"x{i}.mkv" for i in range(4)]
    for name in names:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(jpn_eng_mkv, staging / name)
    subprocess.run(["mv", str(staging), str(inbox / "batch")], check=True)
    live = inbox / "live.mkv"
    live.write_bytes(jpn_eng_mkv.read_bytes())  # a live file, while the folder is walked
    moved = [str(inbox / "batch" / name) for name in names]
    for path in [*moved, str(live)]:
        daemon.wait_for("file_queued", path=path)
    queued = daemon.named("file_queued")
    for path in moved:  # each queued by the walk
        assert [e["level"] for e in queued if e["path"] == path] == ["debug"], path
    assert [e["level"] for e in queued if e["path"] == str(live)] == ["info"]

    # Its counts at info: one walk, the subfolders included.
    [walk] = daemon.wait_for("scan_completed", why="folder")
    assert (walk["level"], walk["root"], walk["folder"], walk["files_seen"]) == ("info", str(inbox), str(inbox / "batch"), FILES)
    assert daemon.stop() == 0
    queued = daemon.named("file_queued")  # and queued once each, processing included
    assert sorted(e["path"] for e in queued) == sorted([*moved, str(live)])
    assert len(daemon.named("scan_completed", why="folder")) == 1
