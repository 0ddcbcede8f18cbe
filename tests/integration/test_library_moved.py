"""A database made by the release before named libraries (schema 5) is migrated on the
first start, and a library whose folder moved is not processed again (issue 12 item 3).

The old database is made by the old release's own code: its ``vpod process``, taken
from git (``git archive`` of the commit before this change) and run as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import run_vpod, write_config

REPO = Path(__file__).resolve().parents[2]
RELEASE_BEFORE = "f06d8ee"  # the last commit with schema 5: (root, relpath) as a file's identity


def old_release(tmp_path: Path) -> Path:
    """The old release's ``vpod`` package, extracted into ``tmp_path``; skips when this
    checkout has no git history with that commit (a source tarball, a shallow clone)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the old release cannot be extracted")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", RELEASE_BEFORE, "vpod"], capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {RELEASE_BEFORE} is not in this checkout: {archive.stderr.decode().strip()}")
    target = tmp_path / "old-release"
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def test_old_database_is_migrated_and_a_moved_library_is_not_processed_again(
    tmp_path, env, daemon_factory, jpn_eng_mkv
):
    old_folder = tmp_path / "disk1" / "movies"
    old_folder.mkdir(parents=True)
    film = old_folder / "film.mkv"
    shutil.copy(jpn_eng_mkv, film)
    db = tmp_path / "vpod.db"
    old_config = write_config(
        tmp_path / "old.toml", {"watch": {"paths": [str(old_folder)]}, "database": {"path": str(db)}}
    )
    old_env = {**env, "PYTHONPATH": str(old_release(tmp_path))}
    made = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(old_config), "--json", str(old_folder)],
        env=old_env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["success_count"] == 1  # the old release changed the file
    with sqlite3.connect(db) as conn:  # made by the old release: schema 5
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5

    # The library moves to another disk (here: another folder of one filesystem, so
    # the file keeps its inode) and the config follows it.
    new_folder = tmp_path / "disk2" / "movies"
    new_folder.parent.mkdir()
    os.rename(old_folder, new_folder)
    before = (new_folder / "film.mkv").stat()

    daemon = daemon_factory({"watch": {"paths": [str(new_folder)], "settle_seconds": 0.2}})
    [scan] = daemon.wait_for("scan_completed", root=str(new_folder))
    # Known by (library, path). Its row, from the old release, has no ctime (schema 9), so
    # its stat proves nothing: the file is read once and found unchanged, never queued.
    assert scan["candidates"] == 1
    [moved] = daemon.named("library_moved")
    assert (moved["library"], moved["root"], moved["previous_root"]) == ("movies", str(new_folder), str(old_folder))
    assert daemon.named("daemon_started")[0]["libraries"] == {"movies": str(new_folder)}

    status = run_vpod(["status", "--config", str(daemon.config), "--json"], env=env)
    report = json.loads(status.stdout)
    assert report["counts"]["done"] == 1 and report["queue_depth"] == 0  # one file, one row
    [library] = report["libraries"]
    assert re.fullmatch(r"[0-9a-f]{32}", library.pop("uid"))  # migration 8 gave the old library its identity
    assert library == {"name": "movies", "path": str(new_folder), "files": 1, "watched": True}
    text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
    assert f"libraries: movies ({new_folder})" in text

    # Renamed by the config, live: the folder's files stay its files.
    write_config(daemon.config, {
        "watch": {"libraries": {"films": str(new_folder)}, "settle_seconds": 0.2},
        "database": {"path": str(db)}, "logging": {"format": "json", "level": "debug"},
    })  # fmt: skip
    daemon.signal(signal.SIGHUP)
    [renamed] = daemon.wait_for("library_renamed")
    assert (renamed["library"], renamed["previous_name"]) == ("films", "movies")
    report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    assert [(lib["name"], lib["files"]) for lib in report["libraries"]] == [("films", 1)]
    assert daemon.stop() == 0
    assert not daemon.named("file_queued")
    assert [e["outcome"] for e in daemon.named("file_not_queued")] == ["unchanged"]
    after = (new_folder / "film.mkv").stat()
    assert (after.st_mtime_ns, after.st_ino, after.st_size) == (before.st_mtime_ns, before.st_ino, before.st_size)
