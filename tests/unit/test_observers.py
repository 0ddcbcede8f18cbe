"""Observer choice: network filesystems (from /proc/self/mountinfo) are polled."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpod.watch.observers import choose_observer, filesystem_type, is_network_filesystem

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
