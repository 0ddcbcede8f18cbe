"""Which names are candidates: extensions, ignore globs on every component, vpod's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpod.config import WatchConfig
from vpod.watch.filters import PathFilter

ROOT = Path("/library")
FILTER = PathFilter.from_config(WatchConfig(paths=(ROOT,)))


@pytest.mark.parametrize(
    "rel",
    ["movie.mkv", "Movie.MKV", "show/s01/e01.mp4", "a.m4v", "a.mov", "a.avi", "a.webm", "a.ts", "name with spaces.mkv"],
)
def test_wanted(rel):
    assert FILTER.wants(ROOT / rel, ROOT)


@pytest.mark.parametrize(
    "rel",
    [
        "notes.txt", "movie.mkv.part", "movie.mkv.partial~", "movie.mkv.!qB", "movie.mkv.crdownload",
        "movie.mkv.tmp", ".movie.mkv.Ab12Cd", ".hidden.mkv", ".Trash-1000/movie.mkv", "movie.orig.mkv",
        ".vpod-tmp-0123abcd.mkv", "noextension", "mkv",
    ],
)
def test_not_wanted(rel):
    assert not FILTER.wants(ROOT / rel, ROOT)


def test_outside_the_root_is_not_wanted():
    assert not FILTER.wants(Path("/elsewhere/movie.mkv"), ROOT)


def test_custom_lists():
    custom = PathFilter.from_config(WatchConfig(paths=(ROOT,), extensions=("MKV",), ignore=("sample*",)))
    assert custom.wants(ROOT / "x.mkv", ROOT)
    assert not custom.wants(ROOT / "x.mp4", ROOT)
    assert not custom.wants(ROOT / "sample-x.mkv", ROOT)
    assert custom.wants(ROOT / ".hidden.mkv", ROOT)  # the default ignore list was replaced
    assert not custom.wants(ROOT / ".vpod-tmp-1.mkv", ROOT)  # vpod's own names never match


@pytest.mark.parametrize(
    "rel",
    ["movie.mkv", "Movie.MKV", "show/s01/e01.mp4", "notes.txt", "movie.mkv.part", ".hidden.mkv", "movie.orig.mkv",
     ".vpod-tmp-0123abcd.mkv", ".Trash-1000/movie.mkv", "show/.cache/e01.mkv"],
)
def test_the_name_alone_decides_below_wanted_folders(rel):
    """What the scanner relies on: wants == every folder wanted and wants_name."""
    path = ROOT / rel
    folders_ok = all(FILTER.wants_folder(parent, ROOT) for parent in path.parents if parent != ROOT and ROOT in parent.parents)
    assert FILTER.wants(path, ROOT) == (folders_ok and FILTER.wants_name(path.name))
