"""A library folder reached through another name (issue 14 fresh-user finding): a symlinked
path, a bind mount, another node's mount holding the library's marker. `vpod process`,
`vpod status PATH` and `vpod retry PATH` given such a path treat the file as the
library's row (one row, one claim), never as a new ad-hoc library. Real `vpod`
processes, real media, SQLite and a real PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from support.daemon import run_vpod, write_config
from vpod.library_paths import LibraryPaths
from vpod.watch.library_id import ID_MARKER_NAME, LibraryIdentity, write_identity

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def bind_mount(source: Path, target: Path) -> Iterator[bool]:
    """``mount --bind source target`` when this machine allows it (root, mount(8)); yields
    whether it is mounted, and unmounts after."""
    target.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield False
        return
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", str(target)], check=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> dict[str, object]:
    if request.param == "sqlite":
        return {"path": str(tmp_path / "vpod.db")}
    postgres = request.getfixturevalue("postgres")
    db = postgres.database(tmp_path)
    return {"url": db.url, "password_file": db.password_file, "path": str(db.path)}


def test_a_file_named_through_another_name_of_the_library_folder_is_the_librarys_row(
    tmp_path, env, database, jpn_eng_mkv
):
    movies = tmp_path / "lib" / "movies"
    movies.mkdir(parents=True)
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        shutil.copyfile(jpn_eng_mkv, movies / name)
    link = tmp_path / "linkC"
    link.symlink_to(tmp_path / "lib")
    config = write_config(tmp_path / "B.toml", {
        "watch": {"libraries": {"movies": str(movies)}}, "database": database, "logging": {"format": "json"},
    })
    with bind_mount(movies, tmp_path / "mntB" / "movies") as mounted:
        third = tmp_path / "mntB" / "movies" / "c.mkv" if mounted else movies / "c.mkv"
        named = [link / "movies" / "a.mkv", movies / "b.mkv", third]
        out = run_vpod(["process", "--json", "--config", str(config), *map(str, named)], env=env)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert sorted(Path(r["path"]) for r in report["results"]) == sorted(movies / n for n in ("a.mkv", "b.mkv", "c.mkv"))

        status = json.loads(run_vpod(["status", "--json", "--config", str(config)], env=env).stdout)
        assert [lib["name"] for lib in status["libraries"]] == ["movies"]
        assert status["libraries"][0]["files"] == 3

        for path in (link / "movies" / "a.mkv", third):
            text = run_vpod(["status", "--config", str(config), str(path)], env=env).stdout
            assert "not known to this database" not in text and ": done" in text, text
            retry = run_vpod(["retry", "--config", str(config), str(path)], env=env)
            assert "not failed" in retry.stderr and "no record" not in retry.stderr, retry.stderr


def test_a_folder_holding_the_librarys_marker_is_that_library(tmp_path):
    """Another mount of a share (another device number) is known by the marker of a library
    of this database; a marker of another database, or no marker, is not."""
    here, other_mount, foreign = tmp_path / "here", tmp_path / "other-mount", tmp_path / "foreign"
    for folder in (here, other_mount, foreign):
        (folder / "sub").mkdir(parents=True)
    write_identity(other_mount, LibraryIdentity("d" * 32, "u" * 32, "movies", "a", 0.0))
    write_identity(foreign, LibraryIdentity("e" * 32, "u" * 32, "movies", "a", 0.0))
    assert (other_mount / ID_MARKER_NAME).exists()
    paths = LibraryPaths([here], database_id="d" * 32, marked={"u" * 32: here})
    assert paths.locate(other_mount / "sub" / "x.mkv") == (here, here / "sub" / "x.mkv")
    assert paths.locate(foreign / "sub" / "x.mkv") is None
    assert paths.locate(tmp_path / "x.mkv") is None
    assert LibraryPaths([here]).locate(other_mount / "sub" / "x.mkv") is None  # markers only with a database
