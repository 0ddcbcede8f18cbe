"""vpod process PATHS → files: filters, -R, order, one entry per file, Store identity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpod.config import WatchConfig
from vpod.targets import collect_targets
from vpod.watch.filters import PathFilter

FILTER = PathFilter.from_config(WatchConfig())


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    for rel in ("b.mkv", "a.MP4", "c.txt", "movie.mkv.part", ".hidden.mkv", "sub/d.mkv", "sub/inner/e.webm",
                ".trash/x.mkv", "a.orig.mkv"):
        touch(lib / rel)
    return lib


def names(found, base: Path) -> list[str]:
    return [str(t.path.relative_to(base)) for t in found.files]


def test_folder_without_recursive_takes_direct_files_sorted(library):
    found = collect_targets([library], FILTER, recursive=False)
    assert names(found, library) == ["a.MP4", "b.mkv"]


def test_recursive_walks_subfolders_sorted_and_prunes_ignored(library):
    found = collect_targets([library], FILTER, recursive=True)
    assert names(found, library) == ["a.MP4", "b.mkv", "sub/d.mkv", "sub/inner/e.webm"]
    assert all(t.root == library for t in found.files)


def test_paths_keep_their_order_and_each_file_comes_once(library, tmp_path):
    os.link(library / "b.mkv", tmp_path / "hardlink.mkv")
    found = collect_targets(
        [library / "sub" / "d.mkv", library, library / "b.mkv", tmp_path / "lib" / "sub" / ".." / "b.mkv",
         tmp_path / "hardlink.mkv"],
        FILTER,
        recursive=False,
    )
    assert names(found, library) == ["sub/d.mkv", "a.MP4", "b.mkv"]


def test_named_files_go_through_the_filters_and_say_why(library):
    found = collect_targets(
        [library / "c.txt", library / "movie.mkv.part", library / "a.orig.mkv", library / "b.mkv"],
        FILTER,
        recursive=False,
    )
    assert names(found, library) == ["b.mkv"]
    why = {p.name: reason for p, reason in found.ignored}
    assert "extensions" in why["c.txt"]
    assert "ignore" in why["movie.mkv.part"]
    assert "backup" in why["a.orig.mkv"]


def test_named_symlink_is_followed_found_symlink_is_kept_for_the_pipeline(tmp_path):
    real = touch(tmp_path / "elsewhere" / "real.mkv")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "link.mkv").symlink_to(real)
    named = collect_targets([lib / "link.mkv"], FILTER, recursive=False)
    assert [t.path for t in named.files] == [real]
    assert real in named.roots
    walked = collect_targets([lib], FILTER, recursive=False)
    assert [t.path for t in walked.files] == [lib / "link.mkv"]  # the pipeline decides (symlink rules)


def test_symlinked_subfolders_are_not_followed(tmp_path):
    lib = tmp_path / "lib"
    touch(tmp_path / "other" / "o.mkv")
    lib.mkdir()
    (lib / "shortcut").symlink_to(tmp_path / "other")
    assert collect_targets([lib], FILTER, recursive=True).files == []


def test_files_under_a_watch_root_get_the_daemons_identity(tmp_path):
    inbox = tmp_path / "inbox"
    touch(inbox / "show" / "s01.mkv")
    outside = touch(tmp_path / "loose" / "x.mkv")
    found = collect_targets([inbox / "show", outside], FILTER, recursive=False, watch_roots=(inbox,))
    assert [(t.root, t.relpath) for t in found.files] == [(inbox, b"show/s01.mkv"), (outside.parent, b"x.mkv")]
    assert set(found.roots) == {inbox / "show", outside}


def test_unreadable_folder_is_reported(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    touch(lib / "ok.mkv")
    locked = lib / "locked"
    touch(locked / "hidden-from-us.mkv")
    if os.geteuid() == 0:
        # Root reads any folder: stand in for the kernel's EACCES (outside our control).
        real_scandir = os.scandir

        def scandir(path):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    locked.chmod(0)
    try:
        found = collect_targets([lib], FILTER, recursive=True)
    finally:
        locked.chmod(0o755)
    assert names(found, lib) == ["ok.mkv"]
    assert found.unreadable == [(locked, "Permission denied")]
