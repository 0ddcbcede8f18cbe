"""Putting a verified file in place of its source, and keeping backups.

* :func:`put_in_place`: the new file takes the source's owner, group, permission bits,
  ACL, ``user.*`` extended attributes and (by default) mtime
  (:mod:`vpod.media.attributes`), is flushed to disk, and replaces the source
  atomically (``os.replace``), or, for a container change, appears under its new name
  without ever overwriting an existing file; the source is removed last.
* :func:`keep_backup`: ``NAME.orig.EXT`` beside the source holding its original bytes.
  A hard link is enough when the source is about to be replaced by a new file; an
  in-place edit needs a real copy, or the edit would change the backup too.
  An existing backup is never overwritten.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from vpod.errors import MediaError
from vpod.media.attributes import SourceAttributes, give_attributes
from vpod.outcomes import Reason
from vpod.tempfiles import TempRegistry, temp_beside


def backup_path(source: Path) -> Path:
    """``NAME.orig.EXT`` beside ``source`` (``Movie.mkv`` → ``Movie.orig.mkv``)."""
    return source.with_name(f"{source.stem}.orig{source.suffix}")


def copy_ownership_and_mode(st: os.stat_result, path: Path) -> None:
    """Give ``path`` the owner, group and permission bits recorded in ``st``.

    Owner and group are set where the process may (root; or the group alone, when
    the process belongs to it); otherwise the file keeps the process's. The mode is
    set last, because ``chown`` clears set-user-ID and set-group-ID bits (chown(2)).

    Raises:
        OSError: ``chmod`` failed.
    """
    for uid, gid in ((st.st_uid, st.st_gid), (-1, st.st_gid)):
        try:
            os.chown(path, uid, gid, follow_symlinks=False)
            break
        except PermissionError:
            continue
    os.chmod(path, stat.S_IMODE(st.st_mode), follow_symlinks=False)


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_no_clobber(existing: Path, new_name: Path) -> None:
    """Give ``existing`` the name ``new_name`` too, failing if that name is taken.

    Raises:
        FileExistsError: ``new_name`` exists.
        OSError: the filesystem refused.
    """
    try:
        os.link(existing, new_name, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links here (some FUSE and SMB mounts): check, then rename.
        if os.path.lexists(new_name):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(new_name)) from None
        os.rename(existing, new_name)


def keep_backup(source: Path, registry: TempRegistry, *, copy: bool) -> Path | None:
    """Keep the current bytes of ``source`` as ``NAME.orig.EXT``; returns its path, or
    ``None`` when a backup already exists (it is never overwritten).

    ``copy=False`` makes a hard link (the source is about to be replaced, so its
    inode keeps the original bytes); where the filesystem has no hard links, or with
    ``copy=True`` (an in-place edit follows), the bytes are copied through a temp file
    so a crash never leaves a partial backup.

    Raises:
        OSError: the copy failed (a full disk: "No space left on device").
    """
    target = backup_path(source)
    if os.path.lexists(target):
        return None
    if not copy:
        try:
            os.link(source, target, follow_symlinks=False)
            return target
        except FileExistsError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
    with temp_beside(source, registry, suffix=source.suffix) as temp:
        shutil.copyfile(source, temp)
        copy_ownership_and_mode(os.stat(source), temp)
        _fsync(temp)
        try:
            _link_no_clobber(temp, target)
        except FileExistsError:
            return None
    return target


def put_in_place(new: Path, source: Path, target: Path, attrs: SourceAttributes, *, keep_mtime: bool) -> None:
    """Make the verified file ``new`` (beside ``source``) the file at ``target``.

    ``target == source``: ``os.replace``, atomic. Otherwise (a container change) ``new``
    gets the name ``target`` without overwriting anything, then ``source`` is
    removed. ``new`` first takes the source's attributes ``attrs`` (owner, group, mode,
    ACL, ``user.*`` extended attributes; atime and mtime with ``keep_mtime``) and is
    flushed to disk, so a crash right after leaves a complete file.

    Raises:
        Skip: reason ``cannot_keep_owner`` (see :func:`vpod.media.attributes.give_attributes`).
        MediaError: reason ``target_exists`` when ``target`` is another existing file;
            ``attributes_not_kept`` or ``disk_full`` from copying extended attributes.
        OSError: a rename or link failed.
    """
    give_attributes(new, attrs, keep_mtime=keep_mtime)
    if target == source:
        os.replace(new, source)
    else:
        try:
            _link_no_clobber(new, target)
        except FileExistsError:
            raise MediaError(
                f"{source}: cannot write the new file as {target.name}: a file with that name appeared meanwhile",
                reason=Reason.TARGET_EXISTS,
            ) from None
        os.unlink(source)
    _fsync(source.parent, os.O_RDONLY | os.O_DIRECTORY)
