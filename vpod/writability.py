"""Why vpod may not write a path, said so that the user knows what to fix.

``os.access`` only answers "no", and a refused write or rename only says ``EROFS``,
``EPERM`` or ``EACCES``; the causes behind them need different fixes:

* ``read_only_filesystem``: the filesystem is mounted read-only, or this mount of it is
  (a read-only bind mount; mount(8), options ``ro`` and ``bind``);
* ``systemd_sandbox``: the mount is read-only only inside the systemd service vpod runs
  in: ``ProtectSystem=strict`` makes the whole file system read-only except the
  service's ``ReadWritePaths=`` (systemd.exec(5), "Sandboxing"). systemd does that in a
  mount namespace of the service's own, so a read-only mount counts as the sandbox's only
  when vpod runs in a service and its mount namespace is not PID 1's (or PID 1's cannot
  be seen, as under ``ProtectProc=invisible``); a service without sandboxing sees the
  system's mounts, and a read-only bind mount there is just that;
* ``immutable``: the file or folder has the immutable (``chattr +i``) or append-only
  (``chattr +a``) attribute, which refuse changes, renames and removal even to root
  (chattr(1), attributes ``i`` and ``a``);
* ``not_writable``: plain permissions (mode bits, ACL), or a sticky folder (``+t``)
  where only a file's owner may rename or remove it (inode(7), "The file type and mode").

:func:`why_not_writable` looks before anything is written; :func:`refusal_for_error`
explains an ``OSError`` a write or rename raised anyway (the state changed meanwhile,
or a rule ``os.access`` cannot see). Both read ``/proc/self/mountinfo``
(proc_pid_mountinfo(5)) and ``/proc/self/cgroup`` (the systemd unit, cgroups(7)).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import struct
from pathlib import Path
from typing import NamedTuple

from vpod.outcomes import Reason

MOUNTINFO = Path("/proc/self/mountinfo")
CGROUP = Path("/proc/self/cgroup")

# linux/fs.h: FS_IOC_GETFLAGS is _IOR('f', 1, long); the kernel reads and writes an int.
# The encoding below is the generic one (x86, arm, riscv); elsewhere the ioctl fails and
# the attribute stays unknown.
_FS_IOC_GETFLAGS = (2 << 30) | (struct.calcsize("l") << 16) | (ord("f") << 8) | 1
_FS_IMMUTABLE_FL = 0x00000010
_FS_APPEND_FL = 0x00000020


class Mount(NamedTuple):
    """One line of ``/proc/self/mountinfo``: where, with which per-mount options, and
    the filesystem's own (superblock) options."""

    mount_point: str
    options: frozenset[str]
    fstype: str
    source: str
    super_options: frozenset[str]

    @property
    def read_only(self) -> bool:
        """This mount refuses writes."""
        return "ro" in self.options

    @property
    def filesystem_read_only(self) -> bool:
        """The filesystem itself is read-only (not only this mount of it)."""
        return "ro" in self.super_options


DAEMON_AGAIN = "run `vpod retry PATH`"
"""How a refusal's message tells a daemon's user to try the file again once the cause is
fixed: the daemon tries a failed file again only after ``vpod retry`` (or a change)."""

PROCESS_AGAIN = "run `vpod process PATH` again"
"""The same for ``vpod process``: it never queues a file for later, and its next run
tries a failed file again (``vpod retry`` is the daemon's command)."""


class WriteRefusal(NamedTuple):
    """Why a path cannot be written.

    Attributes:
        reason: ``read_only_filesystem``, ``systemd_sandbox``, ``immutable`` or
            ``not_writable``: the short tag of logs, the database and metrics.
        cause: what is wrong, naming the path ("the folder /srv/x is on a read-only mount ...").
        fix: what to do about it.
        daemon_fix: another way out that only the daemon's user has, said after ``fix``
            in the daemon's words (``or stop watching it``); left out of what ``vpod
            process`` says, which watches nothing.
    """

    reason: Reason
    cause: str
    fix: str
    daemon_fix: str = ""

    def sentence(self) -> str:
        """``cause; fix`` (what ``vpod doctor`` prints, of the daemon's watched folders)."""
        return f"{self.cause}; {self.fix}{self._daemon_fix(DAEMON_AGAIN)}"

    def message(self, path: Path, again: str = DAEMON_AGAIN) -> str:
        """The error recorded for the file ``path``: it leads, then cause, fix, and how to
        go on (``again``: :data:`DAEMON_AGAIN` or :data:`PROCESS_AGAIN`; only the
        daemon's message offers :attr:`daemon_fix`)."""
        return f"{path}: {self.cause}; {self.fix}{self._daemon_fix(again)}, then {again}"

    def _daemon_fix(self, again: str) -> str:
        return f" {self.daemon_fix}" if self.daemon_fix and again == DAEMON_AGAIN else ""


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts listed in ``text`` (the format of proc_pid_mountinfo(5): fields, then
    ``-``, then filesystem type, source and superblock options), in their order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            mounts.append(
                Mount(
                    mount_point=_unescape(fields[4]),
                    options=frozenset(fields[5].split(",")),
                    fstype=fields[dash + 1],
                    source=_unescape(fields[dash + 2]),
                    super_options=frozenset(fields[dash + 3].split(",")) if len(fields) > dash + 3 else frozenset(),
                )
            )
        except (ValueError, IndexError):
            continue
    return mounts


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount ``path`` (absolute, symlinks resolved) lies on: the longest mount point
    that is ``path`` or one of its parents; of mounts stacked on one point, the last."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def systemd_service(cgroup_text: str) -> str | None:
    """The systemd service (``NAME.service``) whose control group holds this process,
    from ``/proc/self/cgroup`` (``0::/system.slice/vpod.service``; with cgroup v1 the
    ``name=systemd`` line), or ``None`` outside any service (a login shell is in a
    ``session-N.scope``)."""
    for line in cgroup_text.splitlines():
        hierarchy = line.split(":", 2)
        if len(hierarchy) != 3 or hierarchy[1] not in ("", "name=systemd"):
            continue
        for part in reversed(hierarchy[2].split("/")):
            if part.endswith(".service"):
                return part
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return ""


def _inode_flags(path: Path) -> int | None:
    """The inode attribute flags of ``path`` (what lsattr(1) shows), or ``None`` when the
    filesystem or this architecture cannot tell."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        buffer = bytearray(8)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buffer)
        return int(struct.unpack_from("=I", buffer)[0])
    except OSError:
        return None
    finally:
        os.close(fd)


def own_mount_namespace() -> bool:
    """True unless this process shares PID 1's mount namespace (namespaces(7),
    ``/proc/PID/ns/mnt``); also True when PID 1's cannot be read (a hidden /proc, or no
    permission to look), since a sandbox is then the likelier case."""
    try:
        return os.readlink("/proc/self/ns/mnt") != os.readlink("/proc/1/ns/mnt")
    except OSError:
        return True


def _read_only_refusal(
    path: Path, what: str, suggest: Path, mountinfo: str, cgroup: str, private_mounts: bool
) -> WriteRefusal | None:
    try:
        if not os.statvfs(path).f_flag & os.ST_RDONLY:
            return None
    except OSError:
        return None
    mount = mount_of(os.path.realpath(path), parse_mountinfo(mountinfo))
    where = f"mounted read-only at {mount.mount_point}" if mount else "mounted read-only"
    if mount is not None and mount.filesystem_read_only:
        return WriteRefusal(
            Reason.READ_ONLY_FILESYSTEM,
            f"{what} is on a read-only filesystem ({mount.fstype} {mount.source}, {where})",
            f"remount it read-write (mount -o remount,rw {mount.mount_point})",
            "or stop watching it",
        )
    unit = systemd_service(cgroup)
    if unit is not None and private_mounts:
        return sandbox_refusal(what, unit, suggest)
    point = mount.mount_point if mount else str(path)
    return WriteRefusal(
        Reason.READ_ONLY_FILESYSTEM,
        f"{what} is on a read-only mount ({where}; the filesystem itself is writable, so this mount "
        "was made read-only, e.g. a read-only bind mount or a container volume)",
        f"make the mount writable (mount -o remount,rw,bind {point})",
        "or stop watching it",
    )


def sandbox_refusal(what: str, unit: str, suggest: Path) -> WriteRefusal:
    """``what`` lies outside the ``ReadWritePaths=`` of the systemd service ``unit``, whose
    ``ProtectSystem=strict`` makes it read-only for vpod; ``suggest`` is the folder to add."""
    return WriteRefusal(
        Reason.SYSTEMD_SANDBOX,
        f"{what} is read-only for vpod: it runs in the systemd service {unit}, whose sandbox "
        f"(ProtectSystem=strict) makes every path outside the unit's ReadWritePaths= read-only",
        f"add the folder with `systemctl edit {unit}` ([Service] ReadWritePaths={suggest}) and "
        f"`systemctl restart {unit}`",
    )


def _attribute_refusal(path: Path, what: str) -> WriteRefusal | None:
    flags = _inode_flags(path)
    if flags is None:
        return None
    if flags & _FS_IMMUTABLE_FL:
        return WriteRefusal(
            Reason.IMMUTABLE,
            f"{what} has the immutable attribute (lsattr shows 'i'): nobody, not even root, may change, "
            "rename or remove it",
            f"if it should change, remove the attribute (chattr -i {path})",
        )
    if flags & _FS_APPEND_FL:
        return WriteRefusal(
            Reason.IMMUTABLE,
            f"{what} has the append-only attribute (lsattr shows 'a'): it may only grow, "
            "never be rewritten, renamed or removed",
            f"if it should change, remove the attribute (chattr -a {path})",
        )
    return None


def _permission_refusal(what: str) -> WriteRefusal:
    return WriteRefusal(
        Reason.NOT_WRITABLE,
        f"{what} is not writable by the user vpod runs as (uid {os.geteuid()})",
        "give it write access (for example group vpod with g+w)",
    )


def why_not_writable(
    path: Path,
    what: str,
    *,
    suggest: Path | None = None,
    mountinfo: str | None = None,
    cgroup: str | None = None,
    private_mounts: bool | None = None,
) -> WriteRefusal | None:
    """Why vpod may not write ``path`` (a file, or a folder to create and rename files in),
    or ``None`` when it may.

    Args:
        path: the file or folder.
        what: how messages name it ("the file", "the folder /srv/x").
        suggest: the folder to name in a ``ReadWritePaths=`` hint (a watch root);
            default ``path``'s folder.
        mountinfo, cgroup: the texts of ``/proc/self/mountinfo`` and
            ``/proc/self/cgroup`` (read when not given).
        private_mounts: whether vpod has a mount namespace of its own
            (:func:`own_mount_namespace` when not given).

    Checks, in order: a read-only mount (``statvfs`` ``ST_RDONLY``), the immutable or
    append-only attribute, then ``os.access`` (write, and search for a folder).
    """
    folder = path.is_dir()
    suggest = suggest or (path if folder else path.parent)
    refusal = _read_only_refusal(
        path,
        what,
        suggest,
        _read(MOUNTINFO) if mountinfo is None else mountinfo,
        _read(CGROUP) if cgroup is None else cgroup,
        own_mount_namespace() if private_mounts is None else private_mounts,
    )
    if refusal is None:
        refusal = _attribute_refusal(path, what)
    if refusal is None and not os.access(path, os.W_OK | (os.X_OK if folder else 0)):
        refusal = _permission_refusal(what)
    return refusal


def refusal_for_error(exc: OSError, file: Path, *, suggest: Path | None = None) -> WriteRefusal | None:
    """Explain ``exc``, raised while vpod changed, replaced, renamed or removed ``file``
    (or created a file beside it), or ``None`` when it is not a refused write.

    ``EROFS``, ``EPERM`` and ``EACCES`` are looked into: the file and its folder are
    checked as by :func:`why_not_writable`; an ``EPERM`` in a sticky folder on a file
    owned by another user is the sticky rule.
    """
    if exc.errno not in (errno.EROFS, errno.EPERM, errno.EACCES):
        return None
    for path, what in ((file, "the file"), (file.parent, f"its folder {file.parent}")):
        refusal = why_not_writable(path, what, suggest=suggest or file.parent)
        if refusal is not None:
            return refusal
    if exc.errno == errno.EPERM:
        try:
            folder, st = os.stat(file.parent), os.stat(file, follow_symlinks=False)
        except OSError:
            return None
        if folder.st_mode & stat.S_ISVTX and os.geteuid() not in (0, st.st_uid, folder.st_uid):
            return WriteRefusal(
                Reason.NOT_WRITABLE,
                f"its folder {file.parent} is sticky (mode +t) and the file belongs to uid {st.st_uid}: only "
                "its owner, the folder's owner or root may replace it",
                "run vpod as that user, or clear the sticky bit (chmod -t) if it is not needed",
            )
    return None
