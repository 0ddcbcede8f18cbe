"""Free disk space: check it before writing, and hold it while writing.

vpod writes big files beside the ones it processes (a remux's new copy, a backup copy)
and lets ``mkvpropedit`` append moved headers to a file it edits in place. None of that
starts unless the filesystem has room for it *plus a margin* left for other programs:

* a remux: the source's size + 5 % (a remux that removes tracks writes less than the
  source; a container change into Matroska can write a little more) + 64 MiB;
* a backup copy (``backup = true`` before an in-place edit): the file's size + 64 MiB;
* an in-place edit: what ``mkvpropedit`` may append (see :mod:`vpod.media.edit`) + 1 MiB.

Free space is ``statvfs``'s ``f_bavail × f_frsize``: what an unprivileged process may
still use (statvfs(3)), so vpod never eats the blocks the filesystem keeps for root.
Writes this process has started and not finished are subtracted (:class:`SpaceLedger`),
so two workers never count the same free bytes twice. What does not fit fails with
:class:`InsufficientSpace` (reason ``insufficient_space``, not permanent), before anything
is written. A filesystem that does not report its free space (some FUSE filesystems
report a size of 0) is not checked.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from vpod.errors import MediaError
from vpod.outcomes import Reason

MiB = 1 << 20
REMUX_MARGIN_PERCENT = 5
WRITE_MARGIN_BYTES = 64 * MiB  # left free for other programs after a remux or a backup copy
EDIT_MARGIN_BYTES = 1 * MiB  # after an in-place edit, which writes kilobytes

_FALLOC_FL_KEEP_SIZE = 0x01  # linux/falloc.h
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL, errno.ENODEV}


class InsufficientSpace(MediaError):
    """A write would not fit in the free space plus its margin; nothing was written.

    Not permanent: the daemon tries the file again when there may be room (see
    :class:`vpod.jobs.JobRunner`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=Reason.INSUFFICIENT_SPACE, permanent=False)


def format_bytes(count: int) -> str:
    """``count`` for people, in binary units: ``"1.5 GiB"``, ``"512 bytes"`` below 1 KiB."""
    if count < 1024:
        return f"{count} bytes"
    value, unit = float(count), "bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged process may still write on ``folder``'s filesystem
    (``f_bavail × f_frsize``, statvfs(3)); ``None`` when the filesystem does not tell:
    ``statvfs`` fails, or reports no size at all (``f_blocks == 0``, as some FUSE
    filesystems do)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize if st.f_blocks else None


def remux_need(size: int) -> int:
    """Bytes a remux of a ``size``-byte file may write: ``size`` + 5 %, rounded up."""
    return size + -(-size * REMUX_MARGIN_PERCENT // 100)


class Claim:
    """Space promised to one write in progress on the filesystem ``device``.

    ``need`` bytes are promised; what the files in ``growing`` already hold is no longer
    outstanding (it is in use, so ``statvfs`` counts it already).
    """

    __slots__ = ("device", "need", "growing")

    def __init__(self, device: int, need: int) -> None:
        self.device = device
        self.need = need
        self.growing: list[Path] = []

    def track(self, path: Path) -> None:
        """Count what ``path`` (the file being written) holds against the promise."""
        self.growing.append(path)

    def outstanding(self) -> int:
        """Bytes still to be written, at most ``need``."""
        written = 0
        for path in self.growing:
            try:
                written += os.stat(path, follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
        return max(self.need - written, 0)


class SpaceLedger:
    """The writes in progress in this process, per filesystem; share one between threads.

    :meth:`claim` checks that a write fits in the free space minus what writes already
    started here will still take, plus a margin, and records it until it ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: list[Claim] = []

    @contextmanager
    def claim(self, subject: Path, folder: Path, need: int, margin: int, what: str) -> Iterator[Claim]:
        """Promise ``need`` bytes in ``folder`` for the duration of the ``with`` block.

        Args:
            subject: the file the write is for (named first in the error).
            folder: where the bytes go.
            need: bytes the write may take.
            margin: bytes that must stay free besides (not promised; checked only).
            what: the write, for the error: "the remux (the source's 1.0 GiB + 5 %)".

        A filesystem that does not report its free space (:func:`free_bytes`) is
        not checked: the write is tried, and fails as it would without vpod's check.

        Raises:
            InsufficientSpace: ``need + margin`` exceeds the free bytes minus those promised
                to other writes in progress on that filesystem.
            OSError: ``folder`` cannot be examined.
        """
        with self._lock:
            device = os.stat(folder).st_dev
            free = free_bytes(folder)
            promised = sum(c.outstanding() for c in self._claims if c.device == device)
            if free is not None and free - promised < need + margin:
                others = f", {format_bytes(promised)} of it promised to writes vpod has under way" if promised else ""
                raise InsufficientSpace(
                    f"{subject}: not enough free space for {what}: it needs {need + margin} bytes "
                    f"({format_bytes(need)} + {format_bytes(margin)} kept free for other programs), and the "
                    f"filesystem of {folder} has {free} bytes ({format_bytes(free)}) free{others}; nothing was "
                    "written, the file is left as it was until there is room"
                )
            claim = Claim(device, need)
            self._claims.append(claim)
        try:
            yield claim
        finally:
            with self._lock:
                self._claims.remove(claim)


@functools.lru_cache(maxsize=1)
def _fallocate() -> Any:
    """glibc's ``fallocate64``, or ``None`` where the C library has none."""
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "fallocate64", None) or getattr(libc, "fallocate", None)
    if function is None:
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    function.restype = ctypes.c_int
    return function


def reserve_after_end(fd: int, offset: int, length: int) -> bool:
    """Allocate ``length`` bytes of blocks for the file ``fd`` from ``offset`` (its end)
    without changing its size (``fallocate(2)`` with ``FALLOC_FL_KEEP_SIZE``), so that
    a tool appending to it later cannot run out of space. :func:`release_reserved`
    gives back what was not used.

    Returns False where the filesystem or C library cannot do it (NFS, many FUSE
    filesystems): then only the ``statvfs`` check protects the write.

    Raises:
        OSError: no room (``ENOSPC``; ``EDQUOT``: a disk quota, which ``statvfs`` does
            not show), or another error.
    """
    function = _fallocate()
    if function is None or length <= 0:
        return False
    if function(fd, _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code))


def release_reserved(fd: int) -> None:
    """Free the blocks :func:`reserve_after_end` allocated past the end of ``fd`` and the
    file did not use: truncating a file to its own size drops its blocks past the end
    (ext4, XFS, Btrfs, tmpfs).

    Raises:
        OSError: the truncate failed.
    """
    os.ftruncate(fd, os.fstat(fd).st_size)
