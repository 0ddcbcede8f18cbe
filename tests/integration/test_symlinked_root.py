"""A watch root that is a symlink to a folder (issue 11, item 6): files put directly in
it are seen, under the configured path; re-pointing the link moves the watch."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest
from support.media import default_audio_languages

pytestmark = pytest.mark.integration


def rows(db) -> set[tuple[str, bytes]]:
    with sqlite3.connect(db) as conn:
        return set(conn.execute("SELECT root, relpath FROM files"))


def test_symlinked_root_is_watched_at_its_target_and_follows_a_repointed_link(tmp_path, daemon_factory, jpn_eng_mkv):
    first, second = tmp_path / "disk1" / "inbox", tmp_path / "disk2" / "inbox"
    first.mkdir(parents=True)
    (second / "sub").mkdir(parents=True)
    link = tmp_path / "inbox"
    link.symlink_to(first)
    daemon = daemon_factory({"watch": {"paths": [str(link)], "settle_seconds": 0.3}})
    # Directly in the folder, written through its real path and through the link.
    shutil.copyfile(jpn_eng_mkv, first / "a.mkv")
    shutil.copyfile(jpn_eng_mkv, link / "b.mkv")
    for name in ("a.mkv", "b.mkv"):
        daemon.wait_for("file_processed", path=str(link / name), success=True)
        assert default_audio_languages(first / name) == ["eng"]
    assert [e.get("target") for e in daemon.named("watch_started", root=str(link))] == [str(first)]

    shutil.copyfile(jpn_eng_mkv, second / "sub" / "there-before.mkv")
    subprocess.run(["ln", "-sfn", str(second), str(link)], check=True)
    daemon.wait_for("watch_started", root=str(link), target=str(second), timeout=30)
    repointed = daemon.named("watch_root_repointed", root=str(link))
    assert [(e["old_target"], e["new_target"]) for e in repointed] == [(str(first), str(second))]
    # The new folder's files: those already there (catch-up walk) and new ones.
    daemon.wait_for("file_processed", path=str(link / "sub" / "there-before.mkv"), success=True)
    shutil.copyfile(jpn_eng_mkv, second / "c.mkv")
    daemon.wait_for("file_processed", path=str(link / "c.mkv"), success=True)
    assert default_audio_languages(second / "c.mkv") == ["eng"]
    # The library marker moved along with the watch.
    assert (second / ".vpod-library").exists() and not (first / ".vpod-library").exists()
    assert daemon.stop() == 0

    # One library, identified by the configured path: the first folder's rows are kept.
    assert rows(tmp_path / "vpod.db") == {
        (str(link), os.fsencode(name)) for name in ("a.mkv", "b.mkv", "sub/there-before.mkv", "c.mkv")
    }


def test_a_link_repointed_to_a_folder_made_later_leaves_no_marker_behind(tmp_path, daemon_factory, jpn_eng_mkv):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    link = tmp_path / "inbox"
    link.symlink_to(old)
    daemon = daemon_factory({"watch": {"paths": [str(link)], "settle_seconds": 0.3}})
    assert (old / ".vpod-library").exists()
    subprocess.run(["ln", "-sfn", str(new), str(link)], check=True)  # not there yet
    daemon.wait_for("watch_path_deleted", root=str(link), timeout=30)
    new.mkdir()
    daemon.wait_for("watch_path_restored", root=str(link), timeout=30)
    # The library moved: the old folder keeps no marker, the new one has this vpod's.
    assert not (old / ".vpod-library").exists()
    assert (new / ".vpod-library").exists()
    shutil.copyfile(jpn_eng_mkv, new / "x.mkv")
    daemon.wait_for("file_processed", path=str(link / "x.mkv"), success=True)
    assert daemon.stop() == 0
    assert not (old / ".vpod-library").exists() and not (new / ".vpod-library").exists()
