"""The catch-up scan (issue 15, item 1): what it logs at info level, and the open-writer
check it makes on the descriptor it fingerprints through."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from support.media import audio, default_audio_languages, video
from support.store import file_record

pytestmark = pytest.mark.integration

SETTLE = 0.3


def library(tmp_path: Path, media: Path, count: int) -> list[Path]:
    """``count`` copies of ``media`` in two folders of an inbox, then quiet for the settle time."""
    paths = [tmp_path / "inbox" / f"s{i % 2}" / f"e{i}.mkv" for i in range(count)]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(media, path)
    time.sleep(SETTLE * 2)  # their ctime is a settle time old: the walk queues them itself
    return paths


def test_at_info_level_a_catch_up_reports_counts_and_live_files_keep_file_queued(tmp_path, daemon_factory, jpn_eng_mkv):
    walked = library(tmp_path, jpn_eng_mkv, 6)
    inbox = tmp_path / "inbox"
    daemon = daemon_factory({
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"workers": 1},
        "logging": {"level": "info"},
    })
    completed = daemon.wait_for("scan_completed")[0]
    assert (completed["files_seen"], completed["queued"], completed["library"]) == (6, 6, "inbox")
    live = inbox / "s0" / "live.mkv"
    shutil.copyfile(jpn_eng_mkv, live)
    for path in [*walked, live]:
        daemon.wait_for("file_processed", path=str(path), timeout=120)
    assert daemon.stop() == 0
    # Every file was queued once and processed; only the live one says so line by line.
    assert [e["path"] for e in daemon.named("file_queued")] == [str(live)]
    assert all(default_audio_languages(path) == ["eng"] for path in [*walked, live])


def test_at_debug_level_each_walked_file_still_logs_file_queued(tmp_path, daemon_factory, jpn_eng_mkv):
    walked = library(tmp_path, jpn_eng_mkv, 3)
    daemon = daemon_factory({"watch": {"paths": [str(tmp_path / "inbox")], "settle_seconds": SETTLE}})
    daemon.wait_for("scan_completed")
    for path in walked:
        line = daemon.wait_for("file_queued", path=str(path))[0]
        assert line["level"] == "debug"
    assert daemon.stop() == 0


def test_a_walked_file_still_open_for_writing_is_queued_only_once_closed(tmp_path, daemon_factory, jpn_eng_mkv):
    """Quiet for the settle time by its ctime, but a process holds it open for writing (a
    stalled download): the catch-up finds the writer on the descriptor it would fingerprint
    through and leaves the file waiting; closed, it is queued and processed."""
    (stalled,) = library(tmp_path, jpn_eng_mkv, 1)
    with open(stalled, "ab"):  # this test's process is the writer
        time.sleep(SETTLE * 2)  # opening for append changed nothing, but let its ctime age anyway
        daemon = daemon_factory({"watch": {"paths": [str(tmp_path / "inbox")], "settle_seconds": SETTLE}})
        completed = daemon.wait_for("scan_completed")[0]
        assert (completed["files_seen"], completed["queued"]) == (1, 0)
        assert daemon.named("file_queued") == []
    daemon.wait_for("file_processed", path=str(stalled), timeout=120)
    assert daemon.stop() == 0
    assert len(daemon.named("file_queued", path=str(stalled))) == 1
    assert default_audio_languages(stalled) == ["eng"]


def test_a_walked_copy_of_content_vpod_left_elsewhere_is_recorded_done_without_a_tool_run(
    tmp_path, daemon_factory, jpn_eng_mkv
):
    """A catch-up walk hands its files over as text, asks the policy once per folder and
    writes a batch's new rows as plain tuples: a file it finds with the size and content
    of a file vpod left done in another folder, under the policy in force, is still
    recorded done (``same_content_done``) and never queued, so no tool runs on it."""
    inbox = tmp_path / "inbox"
    first = inbox / "a" / "e.mkv"
    first.parent.mkdir(parents=True)
    shutil.copyfile(jpn_eng_mkv, first)
    config = {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}, "processing": {"workers": 1}}
    daemon = daemon_factory(config)
    daemon.wait_for("file_processed", path=str(first), timeout=120)
    assert daemon.stop() == 0
    copy = inbox / "b" / "copy.mkv"
    copy.parent.mkdir()
    shutil.copy2(first, copy)  # what vpod left, in a folder it has never seen
    time.sleep(SETTLE * 2)  # quiet for the settle time by its ctime: the walk hands it over itself
    again = daemon_factory(config, name="again")
    completed = again.wait_for("scan_completed")[0]
    skipped = again.wait_for("file_not_queued", path=str(copy))[0]
    assert skipped["outcome"] == "same_content_done" and skipped["level"] == "info"
    assert again.stop() == 0
    assert completed["queued"] == 0
    assert again.named("file_queued") == [] and again.named("file_processed") == []


def test_two_copies_of_new_content_in_one_walk_are_worked_on_once_the_worker_deciding_the_second(
    tmp_path, daemon_factory, media_cache
):
    """The catch-up queues a new path without reading it (no result of its size exists
    yet), so two copies of content vpod has never seen, found by one walk, are both
    queued. The worker reads each before it probes it: the first conforms and is recorded
    done, then the second, the same content, is recorded ``same_content_done`` without a
    tool run (the rule "nothing twice" the intake applied before, moved to the worker)."""
    conforming = media_cache("jpn-first.mkv", [video(), audio("jpn", default=True), audio("eng")])
    inbox, db = tmp_path / "inbox", tmp_path / "vpod.db"
    copies = [inbox / "a" / "x.mkv", inbox / "b" / "y.mkv"]
    for path in copies:
        path.parent.mkdir(parents=True)
        shutil.copyfile(conforming, path)
    time.sleep(SETTLE * 2)  # quiet for the settle time by their ctimes: the walk queues them itself
    daemon = daemon_factory({
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"workers": 1},
        "policy": {"audio_languages": ["jpn"]},
        "database": {"path": str(db)},
    })
    completed = daemon.wait_for("scan_completed")[0]
    assert (completed["files_seen"], completed["queued"]) == (2, 2)
    found = daemon.wait_for("file_processed", timeout=120)
    assert len(found) == 1, f"both copies were worked on: {found}"
    processed = found[0]
    assert processed["changes"] == 0
    [worked] = [path for path in copies if str(path) == processed["path"]]
    [other] = [path for path in copies if path != worked]
    skipped = daemon.wait_for("file_not_queued", path=str(other), timeout=120)[0]
    assert skipped["outcome"] == "same_content_done" and skipped["level"] == "info"
    assert daemon.stop() == 0
    # No tool ran on the copy: the worker never started it (file_started comes before the probe).
    assert daemon.named("file_started", path=str(other)) == []
    assert daemon.named("file_processed", path=str(other)) == daemon.named("file_skipped", path=str(other)) == []
    assert file_record(db, other).state == file_record(db, worked).state == "done"
