"""Watching: moved-in trees, temp names, network filesystems, folders that come and go (issue 5, items 5, 6, 9)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from support.daemon import DaemonProcess, daemon_env, write_config
from support.http import health
from support.media import default_audio_languages

pytestmark = pytest.mark.integration

SETTLE = 0.3


def config(inbox: Path, **watch: object) -> dict:
    return {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE, **watch}}


def test_moved_in_tree_yields_one_job_per_file(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    staging = tmp_path / "staging" / "Show"
    inbox.mkdir()
    files = [staging / "Season 1" / f"e{i}.mkv" for i in range(3)] + [staging / "Season 2" / "deep" / "e9.mkv"]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(jpn_eng_mkv, path)
    daemon = daemon_factory(config(inbox))
    subprocess.run(["mv", str(staging), str(inbox / "Show")], check=True)
    moved = [inbox / "Show" / p.relative_to(staging) for p in files]
    for path in moved:
        daemon.wait_for("file_processed", path=str(path))
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    for path in moved:
        assert len(daemon.named("file_queued", path=str(path))) == 1
        assert default_audio_languages(path) == ["eng"]


def test_tree_created_and_filled_at_once(tmp_path, daemon_factory, jpn_eng_mkv):
    """mkdir -p and write right away: files written before the new folders' watches exist are found."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    data = jpn_eng_mkv.read_bytes()
    paths = []
    for i in range(4):
        folder = inbox / f"a{i}" / "b" / "c"
        folder.mkdir(parents=True)
        for j in range(3):
            path = folder / f"f{j}.mkv"
            path.write_bytes(data)
            paths.append(path)
    for path in paths:
        daemon.wait_for("file_processed", path=str(path))
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    for path in paths:
        assert len(daemon.named("file_queued", path=str(path))) == 1


@pytest.mark.parametrize("temp_name", ["movie.mkv.part", "movie.mkv.partial~", "movie.mkv.!qB", "movie.mkv.crdownload"])
def test_download_temp_name_then_rename(tmp_path, daemon_factory, jpn_eng_mkv, temp_name):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    data = jpn_eng_mkv.read_bytes()
    with open(inbox / temp_name, "wb") as handle:
        for i in range(0, len(data), 2048):
            handle.write(data[i : i + 2048])
            handle.flush()
            time.sleep(0.05)
    time.sleep(SETTLE * 3)  # the finished temp file sits there longer than the settle time
    os.rename(inbox / temp_name, inbox / "movie.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "movie.mkv"))
    time.sleep(SETTLE * 3)
    assert daemon.stop() == 0
    assert [e["path"] for e in daemon.named("file_queued")] == [str(inbox / "movie.mkv")]


def test_vpod_own_names_are_never_queued(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    shutil.copyfile(jpn_eng_mkv, inbox / "movie.orig.mkv")  # a backup vpod wrote
    shutil.copyfile(jpn_eng_mkv, inbox / ".vpod-tmp-0123456789abcdef.mkv")  # a temp file
    shutil.copyfile(jpn_eng_mkv, inbox / "marker.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "marker.mkv"))
    time.sleep(SETTLE * 3)
    assert daemon.stop() == 0
    assert [e["path"] for e in daemon.named("file_queued")] == [str(inbox / "marker.mkv")]


def test_polling_observer_when_configured(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox, observer="polling", poll_interval_seconds=0.3))
    started = daemon.named("watch_started")[0]
    assert started["observer"] == "polling" and started["why"] == "configured"
    shutil.copyfile(jpn_eng_mkv, inbox / "polled.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "polled.mkv"))
    assert daemon.stop() == 0


@pytest.fixture
def fuse_mount(tmp_path):
    """A real FUSE filesystem (bindfs) over a backing folder, like an sshfs or network mount."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or shutil.which("bindfs") is None:
        pytest.skip("needs root, /dev/fuse and bindfs")
    backing = tmp_path / "backing"
    mount = tmp_path / "mnt"
    backing.mkdir()
    mount.mkdir()
    if subprocess.run(["bindfs", str(backing), str(mount)], capture_output=True).returncode != 0:
        pytest.skip("bindfs could not mount here")
    yield backing, mount
    subprocess.run(["fusermount", "-u", str(mount)], capture_output=True)
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_fuse_mount_gets_the_polling_observer(tmp_path, daemon_factory, jpn_eng_mkv, fuse_mount):
    """Writes that bypass the local kernel's view of the mount (another host, here the
    backing folder) are invisible to inotify; under observer = "auto" vpod polls."""
    backing, mount = fuse_mount
    daemon = daemon_factory(config(mount, poll_interval_seconds=0.3))
    started = daemon.named("watch_started")[0]
    assert started["observer"] == "polling"
    assert "fuse" in started["why"] and "network filesystem" in started["why"]
    shutil.copyfile(jpn_eng_mkv, backing / "from-elsewhere.mkv")
    daemon.wait_for("file_processed", path=str(mount / "from-elsewhere.mkv"))
    assert default_audio_languages(backing / "from-elsewhere.mkv") == ["eng"]
    assert daemon.stop() == 0


def test_watched_folder_deleted_then_recreated(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    shutil.rmtree(inbox)
    daemon.wait_for("watch_path_deleted", root=str(inbox))
    inbox.mkdir()
    daemon.wait_for("watch_path_restored", root=str(inbox), timeout=30)
    shutil.copyfile(jpn_eng_mkv, inbox / "after.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "after.mkv"))
    assert daemon.stop() == 0


def files_in_database(db: Path) -> set[tuple[str, str]]:
    """(root, relpath) of every file the daemon ever queued."""
    with sqlite3.connect(db) as conn:
        return {(root, os.fsdecode(relpath)) for root, relpath in conn.execute("SELECT root, relpath FROM files")}


@pytest.mark.parametrize("observer", ["inotify", "polling"])
def test_watched_folder_moved_away_then_recreated(tmp_path, daemon_factory, jpn_eng_mkv, observer):
    """mv ROOT ROOT-away; mkdir ROOT: the new folder is watched, the moved one (an inotify
    watch follows it, under the old name) no longer is; /health names the path meanwhile."""
    inbox, away = tmp_path / "inbox", tmp_path / "inbox-away"
    inbox.mkdir()
    daemon = daemon_factory(
        {**config(inbox, observer=observer, poll_interval_seconds=0.3), "http": {"listen": "127.0.0.1:0"}}
    )
    port = daemon.wait_for("http_listening")[0]["port"]
    shutil.copyfile(jpn_eng_mkv, inbox / "before.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "before.mkv"))
    assert health(port)[1]["unwatched_paths"] == []

    inbox.rename(away)
    deleted = daemon.wait_for("watch_path_deleted", root=str(inbox), timeout=30)[0]
    if observer == "inotify":  # the polling observer only sees the path gone
        assert deleted["moved"] is True
    code, body = health(port)
    assert code == 200 and body["unwatched_paths"] == [str(inbox)]

    inbox.mkdir()
    daemon.wait_for("watch_path_restored", root=str(inbox), timeout=30)
    assert health(port)[1]["unwatched_paths"] == []
    shutil.copyfile(jpn_eng_mkv, away / "stray.mkv")  # first: settled by the time after.mkv is done
    shutil.copyfile(jpn_eng_mkv, inbox / "after.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "after.mkv"))
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    assert files_in_database(tmp_path / "vpod.db") == {(str(inbox), "before.mkv"), (str(inbox), "after.mkv")}
    assert default_audio_languages(away / "stray.mkv") == ["jpn"]  # untouched


@pytest.mark.parametrize("first", ["root moved away", "root emptied"])
def test_watched_folder_replaced_by_a_rename(tmp_path, daemon_factory, jpn_eng_mkv, first):
    """mv -T READY ROOT (rename(2) also replaces an empty folder): the files already in READY
    are found by the catch-up walk of the restored root, and new ones are seen. A running
    vpod keeps its library marker in the root, so "empty" means that was removed too."""
    inbox, old, ready = tmp_path / "inbox", tmp_path / "inbox-old", tmp_path / "ready"
    inbox.mkdir()
    ready.mkdir()
    shutil.copyfile(jpn_eng_mkv, ready / "waiting.mkv")
    daemon = daemon_factory(config(inbox))
    if first == "root moved away":
        inbox.rename(old)
    else:
        (inbox / ".vpod-library").unlink()
    ready.rename(inbox)
    daemon.wait_for("watch_path_deleted", root=str(inbox), timeout=30)
    daemon.wait_for("watch_path_restored", root=str(inbox), timeout=30)
    daemon.wait_for("file_processed", path=str(inbox / "waiting.mkv"))
    if old.exists():
        shutil.copyfile(jpn_eng_mkv, old / "stray.mkv")
    shutil.copyfile(jpn_eng_mkv, inbox / "later.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "later.mkv"))
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    assert files_in_database(tmp_path / "vpod.db") == {(str(inbox), "waiting.mkv"), (str(inbox), "later.mkv")}


def test_missing_watch_folder_is_watched_once_it_appears(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "not-yet"
    daemon = daemon_factory(config(inbox))
    assert daemon.named("watch_path_missing", root=str(inbox))
    inbox.mkdir()
    shutil.copyfile(jpn_eng_mkv, inbox / "first.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "first.mkv"), timeout=30)
    assert daemon.stop() == 0


LOWER_INOTIFY_LIMIT = "echo 5 > /proc/sys/user/max_inotify_watches"


def test_inotify_watch_limit_falls_back_to_polling(tmp_path, jpn_eng_mkv):
    """In a user namespace of its own, the daemon gets an inotify budget of 5 watches
    for a tree of 20 folders: it says so, naming the sysctl, and polls instead."""
    # The same set-up, tried first: it needs unprivileged user namespaces and a writable
    # /proc/sys (a container mounts it read-only).
    probe = subprocess.run(["unshare", "-U", "-r", "sh", "-c", LOWER_INOTIFY_LIMIT], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(
            "cannot lower the inotify limit in a user namespace (no unprivileged user namespaces, or /proc/sys "
            f"is read-only as in a container): {probe.stderr.strip()}"
        )
    inbox = tmp_path / "inbox"
    for i in range(20):
        (inbox / f"d{i:02d}").mkdir(parents=True)
    config_path = write_config(
        tmp_path / "config.toml",
        {
            **config(inbox, poll_interval_seconds=0.3),
            "database": {"path": str(tmp_path / "vpod.db")},
            "logging": {"format": "json", "level": "debug"},
        },
    )
    home = tmp_path / "home"
    home.mkdir()
    daemon = DaemonProcess(
        config_path,
        env=daemon_env(home),
        log_path=tmp_path / "daemon.log",
        prefix=("unshare", "-U", "-r", "sh", "-c", LOWER_INOTIFY_LIMIT + ' && exec "$@"', "sh"),
    )
    try:
        daemon.wait_started()
        limit = daemon.wait_for("inotify_limit_reached")[0]
        assert "fs.inotify.max_user_watches" in limit["hint"]
        assert daemon.named("watch_started")[0]["observer"] == "polling"
        shutil.copyfile(jpn_eng_mkv, inbox / "d19" / "deep.mkv")
        daemon.wait_for("file_processed", path=str(inbox / "d19" / "deep.mkv"))
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def _slow_tool(tmp_path: Path, name: str, seconds: float) -> Path:
    folder = tmp_path / "slowbin"
    folder.mkdir(exist_ok=True)
    real = shutil.which(name)
    script = folder / name
    script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return folder


def test_vanished_and_renamed_while_queued(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    slow = _slow_tool(tmp_path, "mkvpropedit", 2.0)
    daemon = daemon_factory(
        {**config(inbox), "processing": {"workers": 1}},
        extra_env={"PATH": f"{slow}:{os.environ['PATH']}"},
    )
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        shutil.copyfile(jpn_eng_mkv, inbox / name)
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        daemon.wait_for("file_queued", path=str(inbox / name))
    (inbox / "b.mkv").unlink()
    os.rename(inbox / "c.mkv", inbox / "c-renamed.mkv")

    skipped = daemon.wait_for("file_skipped", path=str(inbox / "b.mkv"), timeout=60)[0]
    assert skipped["reason"] == "vanished"
    daemon.wait_for("file_processed", path=str(inbox / "c-renamed.mkv"), timeout=60)
    daemon.wait_for("file_processed", path=str(inbox / "a.mkv"), timeout=60)
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    assert len(daemon.named("file_skipped", path=str(inbox / "b.mkv"))) == 1  # no retry storm
    assert not daemon.named("file_retry")
    assert default_audio_languages(inbox / "c-renamed.mkv") == ["eng"]


def test_watch_path_that_is_a_file_is_reported(tmp_path, daemon_factory):
    not_a_folder = tmp_path / "inbox"
    not_a_folder.write_text("oops")
    daemon = daemon_factory(config(not_a_folder))
    assert daemon.named("watch_path_not_a_folder", root=str(not_a_folder))
    assert not daemon.named("watch_path_missing")
    assert daemon.stop() == 0
