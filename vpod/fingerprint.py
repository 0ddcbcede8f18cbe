"""Content identity of a file, cheap enough to take for every event.

A fingerprint is the size plus a BLAKE2b digest of sampled content: the first, the
middle and the last MiB (the whole file when it is 3 MiB or less). It ignores what
``touch``, ``chmod``, ``chown``, hard links and ``cp -p`` change, and changes when a
download, an upgrade or vpod's own rewrite changes the bytes. Stat fields
(:class:`StatKey`) are only a fast path that lets a rescan skip hashing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

SAMPLE_BYTES = 1 << 20  # one MiB per sample
UNREAD_PREFIX = "unread:"
"""What a queue row holds instead of a fingerprint when a folder walk queued a new path
without reading it (:func:`unread`): the worker reads it before it probes the file."""


def unread(size: int) -> str:
    """The placeholder fingerprint of a file of ``size`` bytes whose content was not read
    yet (``"unread:SIZE"``). It never equals a real fingerprint (``"SIZE:HEX"``), so no
    result vouches for it and no enqueue rule takes it for known content."""
    return f"{UNREAD_PREFIX}{size}"


def unread_size(fingerprint: str) -> int:
    """The size in bytes an :func:`unread` placeholder names."""
    return int(fingerprint[len(UNREAD_PREFIX) :])


def is_unread(fingerprint: str | None) -> bool:
    """Whether ``fingerprint`` is :func:`unread`'s placeholder."""
    return fingerprint is not None and fingerprint.startswith(UNREAD_PREFIX)


@dataclass(frozen=True, slots=True)
class StatKey:
    """The stat fields that say "unchanged since last look": size (bytes), mtime (ns),
    inode, device and ctime (ns).

    ctime is what makes the key a proof: the kernel sets it to its own clock on every
    write, truncate, rename, link, ``chmod``, ``chown`` and ``utime`` of the inode, and no
    system call sets it to a chosen value (stat(2), "st_ctime"; utimensat(2) sets only
    atime and mtime), so a file rewritten with the same size and its mtime set back
    (``touch -r``) still shows a new ctime. mtime alone can be set back by any program;
    inode and device tell a file replaced by another (a rename over it, a copy) from
    the one recorded. ``ctime_ns`` is ``None`` in a key read from a row an older vpod
    wrote: such a key never proves a file unchanged (:mod:`vpod.unchanged`).

    With ``__slots__``: a catch-up scan makes one per file, and a frozen dataclass's
    ``__init__`` costs half again as much without them (BENCHMARKS.md, catch-up scan).
    """

    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int | None = None

    @classmethod
    def of(cls, st: os.stat_result) -> "StatKey":
        """Build from an ``os.stat_result`` (every field, ctime included)."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)


def fingerprint_fd(fd: int, size: int) -> str:
    """Fingerprint of the open file ``fd`` whose size is ``size`` bytes.

    Returns ``"SIZE:HEX"``. Reads at most 3 MiB with ``os.pread``, so the file offset
    is untouched.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=16)
    if size <= 3 * SAMPLE_BYTES:
        offsets = [0]
        length = size
    else:
        offsets = [0, (size - SAMPLE_BYTES) // 2, size - SAMPLE_BYTES]
        length = SAMPLE_BYTES
    for offset in offsets:
        done = 0
        while done < length:
            chunk = os.pread(fd, min(length - done, SAMPLE_BYTES), offset + done)
            if not chunk:
                break  # shrank while reading: the digest differs, so it is seen as a change
            digest.update(chunk)
            done += len(chunk)
    return f"{size}:{digest.hexdigest()}"


def fingerprint_path(path: str | os.PathLike[str]) -> tuple[str, StatKey]:
    """Fingerprint and stat of the file at ``path`` (not following a final symlink is the caller's job).

    Raises:
        OSError: the file is missing or unreadable.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        return fingerprint_fd(fd, st.st_size), StatKey.of(st)
    finally:
        os.close(fd)
