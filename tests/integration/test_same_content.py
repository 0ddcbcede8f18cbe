"""Content vpod already handled at one path, dropped again at another: skipped only while
the policy that judged it is still in force (the "twin" rule of Store.enqueue)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from support.daemon import write_config
from support.media import audio, mkvmerge_tracks, video
from support.store import file_record

pytestmark = pytest.mark.integration

SETTLE = 0.3


def sections(roots: list[Path], db: Path, **policy: object) -> dict:
    return {
        "watch": {"paths": [str(r) for r in roots], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, "workers": 1},
        "policy": policy,
        "database": {"path": str(db)},
        # info, not debug: a skipped drop must be visible at the default level
        "logging": {"format": "json", "level": "info"},
    }


@pytest.fixture
def base_mkv(media_cache) -> Path:
    """video + audio jpn (default) + audio eng: conforms to ["jpn"]; ["eng"] needs 3 changes."""
    return media_cache("jpn-first.mkv", [video(), audio("jpn", default=True), audio("eng")])


def audio_tracks(path: Path) -> list[tuple[str, bool]]:
    return [(t["language"], t["default"]) for t in mkvmerge_tracks(path) if t["type"] == "audio"]


def drop_conforming_pair(daemon, base_mkv: Path, w4: Path, w2: Path) -> None:
    """x.mkv is processed (conforming, 0 changes); y.mkv, same bytes, is recognized."""
    shutil.copyfile(base_mkv, w4 / "x.mkv")
    processed = daemon.wait_for("file_processed", path=str(w4 / "x.mkv"))[0]
    assert processed["changes"] == 0
    shutil.copyfile(base_mkv, w2 / "y.mkv")
    skipped = daemon.wait_for("file_not_queued", path=str(w2 / "y.mkv"))[0]
    assert skipped["outcome"] == "same_content_done" and skipped["level"] == "info"
    assert daemon.named("file_queued", path=str(w2 / "y.mkv")) == []


def test_same_content_dropped_after_a_policy_change_is_processed_under_the_new_policy(
    tmp_path, daemon_factory, base_mkv
):
    """The reviewer's scenario: conforming under ["jpn"], SIGHUP to ["eng"], the same
    bytes dropped at a new path must be queued and normalized under ["eng"]."""
    w4, w2, db = tmp_path / "w4", tmp_path / "w2", tmp_path / "vpod.db"
    w4.mkdir()
    w2.mkdir()
    daemon = daemon_factory(sections([w4, w2], db, audio_languages=["jpn"]))
    drop_conforming_pair(daemon, base_mkv, w4, w2)

    write_config(daemon.config, sections([w4, w2], db, audio_languages=["eng"]))
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")[0]
    assert "[policy] audio_languages" in reloaded["changed"]
    target = w2 / "z_samecontent.mkv"
    shutil.copyfile(base_mkv, target)

    daemon.wait_for("file_queued", path=str(target))
    processed = daemon.wait_for("file_processed", path=str(target))[0]
    assert processed["changes"] == 3, processed["actions"]
    assert audio_tracks(target) == [("eng", True), ("jpn", False)]
    # Files already there are not revisited by a policy change (only new drops are).
    assert audio_tracks(w4 / "x.mkv") == audio_tracks(w2 / "y.mkv") == [("jpn", True), ("eng", False)]
    assert daemon.named("file_queued", path=str(w2 / "y.mkv")) == []
    assert daemon.stop() == 0
    assert file_record(db, target).state == "done"


def test_same_content_at_a_new_path_is_not_reprocessed_while_the_policy_holds(
    tmp_path, daemon_factory, base_mkv
):
    """A reload that changes no key of the judgement (other settings, on_error, backup)
    keeps the twin rule: the copy is reported at info level and never queued."""
    w4, w2, db = tmp_path / "w4", tmp_path / "w2", tmp_path / "vpod.db"
    w4.mkdir()
    w2.mkdir()
    daemon = daemon_factory(sections([w4, w2], db, audio_languages=["jpn"]))
    drop_conforming_pair(daemon, base_mkv, w4, w2)

    reloaded_sections = sections([w4, w2], db, audio_languages=["ja"], on_error="fail", backup=True)
    reloaded_sections["processing"]["max_attempts"] = 5
    write_config(daemon.config, reloaded_sections)
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")[0]
    assert "[policy] on_error" in reloaded["changed"]
    target = w2 / "z_samecontent.mkv"
    shutil.copyfile(base_mkv, target)
    skipped = daemon.wait_for("file_not_queued", path=str(target))[0]
    assert skipped["outcome"] == "same_content_done" and skipped["level"] == "info"
    time.sleep(SETTLE * 4)  # give a wrongly queued job time to show up
    assert daemon.stop() == 0
    assert daemon.named("file_queued", path=str(target)) == []
    assert daemon.named("file_processed", path=str(target)) == []
    assert not list(w2.glob("*.orig.*"))
    assert file_record(db, target).state == "done"
