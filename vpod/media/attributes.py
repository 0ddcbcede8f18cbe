"""What a file written in place of its source keeps of it: owner, group, mode, ACL,
extended attributes and mtime.

A remux makes a new inode, which starts with vpod's user, vpod's (or the folder's
setgid) group, mode 0600 and no extended attributes. :func:`give_attributes` makes it
look like the source before it is renamed into place:

* ``user.*`` extended attributes (xattr(7), "User extended attributes") and the POSIX
  access ACL, which *is* the extended attribute ``system.posix_acl_access``
  (acl(5)); an ACL the new file inherited from its folder's default ACL but the source
  does not have is removed. ``security.*`` (SELinux labels, file capabilities) and
  ``trusted.*`` are left to the system;
* the permission bits, set after the ACL: ``chmod`` rewrites the ACL's mask entry
  from the group bits (acl(5), "ACL entries"), and the source's group bits are its mask;
* the source's access and modification times, when asked (``[policy] keep_mtime``);
* owner and group, last, through a descriptor opened while vpod still owns the file
  (so a process that may ``chown`` but not change others' files still can).

An owner or group vpod cannot give is never silently replaced by its own:
:func:`check_owner_can_be_kept` tries it on the empty temp file before any tool writes
it, and :func:`give_attributes` checks again, so the file is skipped with reason
``cannot_keep_owner`` and the source stays as it was.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from pathlib import Path
from typing import NamedTuple

from vpod.errors import MediaError
from vpod.outcomes import Reason
from vpod.safety import Skip

ACL_XATTR = "system.posix_acl_access"
KEPT_PREFIXES = ("user.",)


def kept_name(name: str) -> bool:
    """True for the extended attributes a new file takes from its source."""
    return name == ACL_XATTR or name.startswith(KEPT_PREFIXES)


class SourceAttributes(NamedTuple):
    """What the new file takes from its source.

    Attributes:
        path: the source (for messages).
        stat: its ``os.stat_result`` (owner, group, mode, times in ns).
        xattrs: kept extended attributes, name → value (see :func:`kept_name`).
    """

    path: Path
    stat: os.stat_result
    xattrs: dict[str, bytes]


def read_attributes(fd: int, path: Path) -> SourceAttributes:
    """The attributes of the open source ``fd`` (named ``path``), read now.

    Raises:
        OSError: ``fstat`` failed, or an extended attribute could not be read (not when
            the filesystem has none: ``ENOTSUP`` means an empty set).
    """
    st = os.fstat(fd)
    xattrs: dict[str, bytes] = {}
    for name in _names(fd):
        if kept_name(name):
            try:
                xattrs[name] = os.getxattr(fd, name)
            except OSError as exc:
                if exc.errno != errno.ENODATA:  # removed since it was listed
                    raise
    return SourceAttributes(path, st, xattrs)


def _names(target: int | Path) -> list[str]:
    try:
        return os.listxattr(target)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return []
        raise


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"gid {gid} ({grp.getgrgid(gid).gr_name})"
    except KeyError:
        return f"gid {gid}"


def _owner_skip(source: Path, st: os.stat_result, now: os.stat_result, why: str) -> Skip:
    """The ``cannot_keep_owner`` skip: which owner/group the new file would lose, why, the fix."""
    lost = []
    if now.st_uid != st.st_uid:
        lost.append(f"owner {_user(st.st_uid)}")
    if now.st_gid != st.st_gid:
        lost.append(f"group {_group(st.st_gid)}")
    return Skip(
        f"{source}: a remux writes a new file, and vpod (running as {_user(os.geteuid())}) cannot give it the "
        f"source's {' and '.join(lost)} ({why}): it would become {_user(now.st_uid)}, {_group(now.st_gid)}. "
        "Left as it was (vpod still edits such files when a change needs no remux: flags, languages or titles "
        "alone, in place, which keeps the owner). To let vpod remux it, run vpod "
        "as the file's owner (under systemd: User= and Group= in a drop-in), or as root, then `vpod retry PATH`",
        Reason.CANNOT_KEEP_OWNER,
    )


def _chown_to(fd: int, st: os.stat_result) -> os.stat_result:
    """``fchown`` the file to ``st``'s owner and group where they differ; returns its stat after.

    Raises:
        PermissionError: the process may not.
    """
    now = os.fstat(fd)
    uid = st.st_uid if now.st_uid != st.st_uid else -1
    gid = st.st_gid if now.st_gid != st.st_gid else -1
    if uid == -1 and gid == -1:
        return now  # nothing to do: no chown call, which a sandbox may forbid outright
    os.fchown(fd, uid, gid)
    return os.fstat(fd)


def check_owner_can_be_kept(temp: Path, st: os.stat_result, source: Path) -> None:
    """Before a remux writes ``temp`` (empty, just created beside ``source``): make sure
    vpod can give it the source's owner and group (``st``), by doing so and back.

    Raises:
        Skip: reason ``cannot_keep_owner``: the message names the owner or group that
            would be lost and how to let vpod keep it.
    """
    fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        before = os.fstat(fd)
        try:
            after = _chown_to(fd, st)
        except PermissionError as exc:
            raise _owner_skip(source, st, before, f"chown: {exc.strerror}") from None
        if (after.st_uid, after.st_gid) != (st.st_uid, st.st_gid):
            raise _owner_skip(source, st, after, "the filesystem ignored the chown")
        if (after.st_uid, after.st_gid) != (before.st_uid, before.st_gid):
            # Back to vpod, so the tools can write it; the real chown is the last step.
            os.fchown(fd, before.st_uid, before.st_gid)
    finally:
        os.close(fd)


def _copy_xattrs(fd: int, attrs: SourceAttributes) -> None:
    """Make the kept extended attributes of the open file ``fd`` those of the source. The
    ACL comes last: it can take away the owner's write permission (a source with mode
    0444), which setting ``user.*`` attributes needs (xattr(7))."""
    for name in _names(fd):
        if kept_name(name) and name not in attrs.xattrs:
            os.removexattr(fd, name)  # e.g. an ACL inherited from the folder's default ACL
    for name in sorted(attrs.xattrs, key=lambda n: n == ACL_XATTR):
        os.setxattr(fd, name, attrs.xattrs[name])


def give_attributes(temp: Path, attrs: SourceAttributes, *, keep_mtime: bool) -> None:
    """Give ``temp`` the source's extended attributes and ACL, mode, optionally its
    atime and mtime, then owner and group, and flush it to disk (in that order; see the
    module docstring).

    Raises:
        Skip: reason ``cannot_keep_owner`` (the owner or group could not be set).
        MediaError: reason ``attributes_not_kept``: an extended attribute or the ACL
            could not be set (the message names it and the OS error); reason
            ``disk_full`` when the filesystem had no room for it.
        OSError: ``chmod``, ``utime`` or ``fsync`` failed.
    """
    st = attrs.stat
    fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            _copy_xattrs(fd, attrs)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise MediaError(
                f"{attrs.path}: cannot give the remuxed copy the source's extended attributes "
                f"({', '.join(sorted(attrs.xattrs)) or 'none'}): {exc.strerror}; left as it was",
                reason=Reason.DISK_FULL if full else Reason.ATTRIBUTES_NOT_KEPT,
                permanent=not full,
            ) from None
        os.chmod(fd, stat.S_IMODE(st.st_mode))
        if keep_mtime:
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        before = os.fstat(fd)
        try:
            after = _chown_to(fd, st)
        except PermissionError as exc:
            raise _owner_skip(attrs.path, st, before, f"chown: {exc.strerror}") from None
        if (after.st_uid, after.st_gid) != (st.st_uid, st.st_gid):
            raise _owner_skip(attrs.path, st, after, "the filesystem ignored the chown")
        if stat.S_IMODE(after.st_mode) != stat.S_IMODE(st.st_mode):
            # chown clears set-user-ID and set-group-ID bits (chown(2)); root may set them again.
            os.chmod(fd, stat.S_IMODE(st.st_mode))
        os.fsync(fd)
    finally:
        os.close(fd)
