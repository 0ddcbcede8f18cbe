"""Observer choice: network filesystems (from /proc/self/mountinfo) are polled; which events inotify reports."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from vpod.watch.observers import (
    InotifyObserver,
    WatchManager,
    choose_observer,
    filesystem_type,
    is_network_filesystem,
    link_target,
)

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /mnt/nas rw,relatime shared:20 - nfs4 nas:/export rw,vers=4.2
41 22 0:36 / /mnt/smb rw,relatime shared:21 - cifs //server/share rw
42 22 0:37 / /mnt/ssh rw,nosuid,nodev - fuse.sshfs user@host:/ rw
43 22 0:38 / /mnt/with\\040space rw - nfs host:/x rw
"""


@pytest.fixture
def mountinfo(tmp_path) -> str:
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    return str(path)


@pytest.mark.parametrize(
    "path, fstype",
    [
        ("/home/user/inbox", "ext4"),
        ("/mnt/nas", "nfs4"),
        ("/mnt/nas/movies/inbox", "nfs4"),
        ("/mnt/nasty", "ext4"),  # a prefix of the name is not a parent folder
        ("/mnt/smb/x", "cifs"),
        ("/mnt/ssh/x", "fuse.sshfs"),
        ("/mnt/with space/x", "nfs"),
    ],
)
def test_filesystem_type(mountinfo, path, fstype):
    assert filesystem_type(Path(path), mountinfo) == fstype


@pytest.mark.parametrize(
    "fstype, network",
    [("ext4", False), ("xfs", False), ("zfs", False), ("nfs", True), ("nfs4", True), ("cifs", True),
     ("smb3", True), ("fuse.sshfs", True), ("fuse.bindfs", True), ("fuseblk", True), (None, False)],
)
def test_network(fstype, network):
    assert is_network_filesystem(fstype) is network


def test_configured_observer_wins():
    assert choose_observer(Path("/"), "polling") == ("polling", "configured")
    assert choose_observer(Path("/"), "inotify") == ("inotify", "configured")


def test_missing_mountinfo():
    assert filesystem_type(Path("/"), "/nonexistent/mountinfo") is None


class _Recorder(FileSystemEventHandler):
    """Records every event watchdog delivers, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.changed = threading.Condition()

    def on_any_event(self, event: FileSystemEvent) -> None:
        with self.changed:
            self.events.append((event.event_type, os.fsdecode(event.src_path)))
            self.changed.notify_all()

    def wait_for(self, kind: str, path: Path, timeout: float = 30) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: (kind, str(path)) in self.events, timeout), self.events


@pytest.mark.skipif(InotifyObserver is None, reason="inotify is Linux-only")
def test_inotify_watch_reports_writes_not_reads(tmp_path):
    """Reading a watched file (vpod's own fingerprints and probes, a media server) wakes nothing."""
    existing = tmp_path / "old.mkv"
    existing.write_bytes(b"x" * 100)
    recorder = _Recorder()
    manager = WatchManager(lambda root: recorder, observer="inotify", poll_interval_seconds=1, recursive=True)
    assert manager.watch(tmp_path)
    try:
        (tmp_path / "new.mkv").write_bytes(b"y")
        recorder.wait_for("closed", tmp_path / "new.mkv")
        existing.read_bytes()  # IN_OPEN + IN_CLOSE_NOWRITE, unless the mask leaves them out
        (tmp_path / "sub").mkdir()  # a marker: inotify reports events in order
        recorder.wait_for("created", tmp_path / "sub")
    finally:
        manager.stop_all()
    kinds = {kind for kind, _ in recorder.events}
    assert kinds.isdisjoint({"opened", "closed_no_write"}), recorder.events
    assert not [e for e in recorder.events if e[1] == str(existing)], recorder.events


@pytest.mark.skipif(InotifyObserver is None, reason="inotify is Linux-only")
@pytest.mark.parametrize("change", ["renamed away", "renamed away and re-created", "replaced by a rename", "parent renamed"])
def test_displaced_inotify_root(tmp_path, change):
    """watchdog reports none of these (no IN_MOVE_SELF); displaced() finds each one."""
    parent = tmp_path / "parent"
    root = parent / "inbox"
    root.mkdir(parents=True)
    manager = WatchManager(lambda root: _Recorder(), observer="inotify", poll_interval_seconds=1, recursive=True)
    assert manager.watch(root)
    try:
        assert manager.displaced() == []
        if change == "parent renamed":
            parent.rename(tmp_path / "elsewhere")
            parent.mkdir()
            root.mkdir()
        else:
            root.rename(parent / "away")
            if change == "renamed away and re-created":
                root.mkdir()
            elif change == "replaced by a rename":
                (parent / "new").mkdir()
                (parent / "new").rename(root)
        assert manager.displaced() == [root]
    finally:
        manager.stop_all()


def test_polling_roots_are_not_checked(tmp_path):
    """The polling observer re-reads the path itself (and a hung mount must not block the caller)."""
    manager = WatchManager(lambda root: _Recorder(), observer="polling", poll_interval_seconds=30, recursive=True)
    assert manager.watch(tmp_path)
    try:
        tmp_path.rename(tmp_path.with_name(tmp_path.name + "-away"))
        assert manager.displaced() == []
    finally:
        manager.stop_all()


def test_link_target_follows_a_chain_of_links_without_looking_at_the_folder(tmp_path):
    folder = tmp_path / "real"
    (tmp_path / "b").symlink_to("real")  # relative
    (tmp_path / "a").symlink_to(tmp_path / "b")
    assert link_target(tmp_path / "a") == folder  # the folder need not even exist
    folder.mkdir()
    assert link_target(folder) is None
    assert link_target(tmp_path / "missing") is None


def test_a_polled_symlinked_root_is_displaced_when_its_link_is_repointed(tmp_path):
    one, two, link = tmp_path / "one", tmp_path / "two", tmp_path / "inbox"
    one.mkdir()
    two.mkdir()
    link.symlink_to(one)
    manager = WatchManager(lambda root: FileSystemEventHandler(), observer="polling", poll_interval_seconds=0.1, recursive=True)
    assert manager.watch(link)
    try:
        assert manager.target(link) == one and manager.displaced() == []
        tmp = tmp_path / "inbox.new"
        tmp.symlink_to(two)
        os.replace(tmp, link)
        assert manager.displaced() == [link]
        assert manager.repoint(link) is True
        assert manager.target(link) == two and manager.displaced() == []
    finally:
        manager.stop_all()
