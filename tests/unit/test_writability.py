"""Reading /proc/self/mountinfo and /proc/self/cgroup for vpod.writability (formats of
proc_pid_mountinfo(5) and cgroups(7))."""

from __future__ import annotations

from vpod.writability import mount_of, parse_mountinfo, systemd_service

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
40 27 8:2 / /srv/my\\040media ro,relatime shared:7 master:3 - ext4 /dev/sdb1 rw
41 40 8:2 /sub /srv/my\\040media/sub rw,relatime - ext4 /dev/sdb1 rw
42 27 8:3 / /srv/my\\040media ro - xfs /dev/sdc1 ro
"""


def test_mountinfo_fields_escapes_and_optional_fields():
    mounts = parse_mountinfo(MOUNTINFO + "garbage line\n")
    assert len(mounts) == 5
    media = mounts[2]
    assert media.mount_point == "/srv/my media"
    assert media.read_only and not media.filesystem_read_only
    assert (media.fstype, media.source) == ("ext4", "/dev/sdb1")


def test_the_mount_of_a_path_is_the_deepest_and_the_last_stacked():
    mounts = parse_mountinfo(MOUNTINFO)
    assert mount_of("/srv/my media/sub/film.mkv", mounts).mount_point == "/srv/my media/sub"
    stacked = mount_of("/srv/my media/film.mkv", mounts)
    assert (stacked.fstype, stacked.filesystem_read_only) == ("xfs", True)  # mounted over the ext4 one
    assert mount_of("/srv/my mediax/film.mkv", mounts).mount_point == "/"  # a prefix is not a parent


def test_the_systemd_service_comes_from_the_systemd_hierarchy():
    assert systemd_service("0::/system.slice/vpod.service\n") == "vpod.service"
    assert systemd_service("12:name=systemd:/system.slice/sonarr.service/helper\n0::/\n") == "sonarr.service"
    assert systemd_service("0::/user.slice/user-1000.slice/session-3.scope\n") is None
    assert systemd_service("4:memory:/system.slice/other.service\n0::/\n") is None  # not the systemd hierarchy
    assert systemd_service("") is None
