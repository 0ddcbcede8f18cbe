"""Two vpods (different databases) on nested folders: one watches ``tp`` with its
subfolders, the other ``tp/two`` (issue 11, item 7, follow-up). Each file has one owner
whichever started first: the one that claimed first keeps its folder; the other leaves
it alone (a root below another vpod's recursive root is not watched; a subfolder another
vpod claimed is skipped while the rest of the root is watched)."""

from __future__ import annotations

import shutil

import pytest
from support.daemon import run_vpod
from support.media import default_audio_languages

pytestmark = pytest.mark.integration


def sections(root, db, audio):
    return {
        "watch": {"paths": [str(root)], "settle_seconds": 0.3},
        "database": {"path": str(db)},
        "policy": {"audio_languages": [audio]},
    }


@pytest.mark.parametrize("first", ["inner", "outer"])
def test_nested_libraries_of_two_vpods_give_each_file_one_owner(tmp_path, daemon_factory, env, jpn_eng_mkv, first):
    outer_root, inner_root = tmp_path / "tp", tmp_path / "tp" / "two"
    inner_root.mkdir(parents=True)
    start = {
        "inner": lambda: daemon_factory(sections(inner_root, tmp_path / "inner.db", "eng"), name="inner"),
        "outer": lambda: daemon_factory(sections(outer_root, tmp_path / "outer.db", "jpn"), name="outer"),
    }
    daemons = {first: start[first]()}
    second = "outer" if first == "inner" else "inner"
    daemons[second] = start[second]()
    # The first to claim owns tp/two; the other leaves it alone.
    owner, other = daemons[first], daemons[second]
    language = "eng" if first == "inner" else "jpn"

    # Two files one after the other: were the other vpod working on tp/two, it would
    # have taken the first up (and flipped its default audio) by the time the owner is
    # done with the second.
    a = shutil.copyfile(jpn_eng_mkv, inner_root / "a.mkv")
    owner.wait_for("file_processed", path=str(a), success=True)
    b = shutil.copyfile(jpn_eng_mkv, inner_root / "b.mkv")
    owner.wait_for("file_processed", path=str(b), success=True)
    assert default_audio_languages(a) == [language] and default_audio_languages(b) == [language]
    assert not other.named("file_processed", path=str(a)) and not other.named("file_processed", path=str(b))
    assert len(owner.named("file_processed", path=str(a))) == 1  # no back and forth
    refused = other.wait_for("library_claimed_elsewhere")
    assert refused and str(tmp_path / f"{first}.db") in refused[0]["holder"], other.tail()

    if first == "inner":
        # The outer vpod left tp/two alone but still owns the rest of tp.
        assert refused[0]["root"] == str(inner_root) and refused[0]["subfolder"] is True
        c = shutil.copyfile(jpn_eng_mkv, outer_root / "c.mkv")
        other.wait_for("file_processed", path=str(c), success=True)
        assert default_audio_languages(c) == ["jpn"]
        # The inner vpod stops: the outer one walks tp/two and applies its policy.
        assert owner.stop() == 0
        other.wait_for("library_claimed", root=str(inner_root), timeout=30)
        other.wait_for("file_processed", path=str(a), success=True)
        assert default_audio_languages(a) == ["jpn"]
    else:
        # The inner vpod does not watch tp/two at all: the outer vpod's marker is above it.
        assert refused[0]["root"] == str(inner_root)
        assert refused[0]["marker"] == str(outer_root / ".vpod-library")
        assert not other.named("watch_started", root=str(inner_root))
        assert not (inner_root / ".vpod-library").exists()
        # vpod status gives the folder its own reason, not "missing" (issue 11 follow-up, item 5).
        status = run_vpod(["status", "--config", str(other.config)], env=env)
        text = status.stdout
        assert f"not watched: {inner_root} is the library of the vpod of database {tmp_path / 'outer.db'}" in text
        assert "missing, deleted or moved away" not in text, text
    for daemon in daemons.values():
        assert daemon.stop() == 0
