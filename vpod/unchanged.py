"""Unchanged means untouched: when a file's stat alone proves vpod need not look at it.

A file is *untouched* since vpod recorded it when its size, mtime, inode, device and
ctime all equal what was recorded (:class:`~vpod.fingerprint.StatKey`). ctime is the
proof: the kernel sets it to its own clock on every write, truncate, rename, link,
``chmod``, ``chown`` and ``utime`` of the inode, and no system call sets it to a chosen
value (stat(2) "st_ctime"; utimensat(2) sets only atime and mtime). So a file rewritten
in place with other bytes of the same size and its mtime set back (``touch -r``) keeps
size, mtime, inode and device, but not its ctime. Inode and device tell a file replaced
by another (renamed over it, copied back) from the recorded one. A record without
ctime (written by a vpod before schema 9 / PostgreSQL schema 2) proves nothing. ctime
ticks with the kernel's coarse clock (a few ms); since Linux 6.13 ext4, XFS, btrfs and
tmpfs stamp a change that follows a ``stat`` with a finer, newer time (multigrain
timestamps, Documentation/filesystems/multigrain-ts.rst), so even a change right after
vpod's record shows; on older kernels one within the same tick could not.

For the proof to hold, the stat vpod records for a file it changed is taken after its
last change to it (the rename that puts a remux in place, the owner, mode and times
given back, an in-place edit): :mod:`vpod.pipeline` stats the file after all of them.

Two questions use the rule:

* :func:`untouched`: the daemon's walks (:mod:`vpod.watch.scanner`) skip a file recorded
  as needing no new look (done, waiting, in progress, failed or skipped for good) whose
  stat proves it untouched, without reading it;
* :func:`left_conforming`: ``vpod process`` skips, without running any tool, a file vpod
  left conforming (``done``, or kept as ``not_smaller``: its video encode was not smaller)
  under the policy that would judge it now, untouched since.
"""

from __future__ import annotations

import os
import stat

from vpod.db.records import Conforming
from vpod.fingerprint import StatKey


def untouched(st: os.stat_result, recorded: StatKey) -> bool:
    """Whether ``st`` (an ``lstat`` or ``fstat`` of the file now) proves the file untouched
    since ``recorded`` was taken: size (bytes), mtime (ns), inode, device and ctime (ns)
    all equal. A ``recorded`` key without ctime (an older vpod's row) never proves it."""
    return (
        recorded.ctime_ns is not None
        and st.st_ctime_ns == recorded.ctime_ns
        and st.st_mtime_ns == recorded.mtime_ns
        and st.st_size == recorded.size
        and st.st_ino == recorded.inode
        and st.st_dev == recorded.device
    )


def left_conforming(st: os.stat_result, recorded: Conforming | None, policy_digest: str | None) -> bool:
    """Whether ``st`` (an ``lstat`` of the file now) proves that the file is as vpod left it
    conforming under the policy now in force: a regular file, recorded ``done`` (or
    skipped for good as ``not_smaller``)
    (``recorded``, from :meth:`vpod.db.store.Store.conforming_stats`; ``None``: no such
    record) under ``policy_digest`` (:meth:`vpod.policy.selection.PolicySelector.digest`
    of the policy that would judge it now; ``None``, a bad folder policy file, never
    matches), and :func:`untouched` since."""
    return (
        recorded is not None
        and policy_digest is not None
        and recorded.policy_digest == policy_digest
        and stat.S_ISREG(st.st_mode)
        and untouched(st, recorded.stat)
    )
