"""Undo for an in-place header edit: the bytes ``mkvpropedit`` may change, saved before it
runs and written back when the edit fails.

What mkvpropedit may change (MKVToolNix's ``kax_analyzer_c``, src/common/kax_analyzer.cpp,
which performs every mkvpropedit write): it overwrites top-level elements other than
Clusters (an old element becomes a Void, a new one goes into a Void or is appended at
the end of the file, SeekHeads and Cues are rewritten), rewrites the Segment's size
field and the EBML Header, moves the header of the element after a one-byte gap (a
Cluster's too) by one byte, appends at the end of the file and truncates it. The data
inside Clusters is never written. So the ranges of :func:`ranges_to_save` (everything
but the Clusters' data) and the file's size put the whole file back byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from vpod.errors import MediaError
from vpod.media.ebml import CLUSTER_ID, MatroskaLayout
from vpod.outcomes import Reason

Range = tuple[int, int]  # (offset, length) in bytes
_CHUNK = 1 << 20


class UndoFailed(MediaError):
    """The saved bytes could not be written back, or read back differently."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=Reason.UNDO_FAILED, permanent=True)


def ranges_to_save(layout: MatroskaLayout) -> list[Range]:
    """The byte ranges of a walked file that an in-place edit may change: everything
    before the Segment's data (EBML Header, Segment header), every top-level element
    but a Cluster, each Cluster's header (ID and size), and whatever follows the
    Segment. Adjacent ranges are merged; in file order."""
    wanted: list[Range] = [(0, layout.segment.data_offset)]
    for child in layout.children:
        length = child.header_size if child.id == CLUSTER_ID else child.header_size + child.size
        wanted.append((child.offset, length))
    if layout.segment.end < layout.file_size:
        wanted.append((layout.segment.end, layout.file_size - layout.segment.end))
    merged: list[Range] = []
    for offset, length in wanted:
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((offset, length))
    return merged


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise OSError(f"read {len(data)} of {length} bytes at byte {offset}: the file is shorter than expected")
    return data


class EditUndo:
    """The saved bytes of one file, with its size and times.

    Args:
        path: the file (for messages).
        fd: a descriptor of it open for reading and writing; writes go through it, so
            they reach the same inode even if the name is replaced meanwhile.
        ranges: what is saved, in order.
        backing: where the saved bytes are, back to back in ``ranges`` order (memory or
            a temp file).
        st: the file's status when it was saved (size, atime, mtime).
    """

    def __init__(self, path: Path, fd: int, ranges: list[Range], backing: BinaryIO, st: os.stat_result) -> None:
        self.path = path
        self.fd = fd
        self.ranges = ranges
        self.backing = backing
        self.st = st

    @classmethod
    def save(cls, path: Path, fd: int, ranges: list[Range], backing: BinaryIO) -> "EditUndo":
        """Copy ``ranges`` of the file open on ``fd`` into ``backing`` (empty, writable).

        Raises:
            OSError: reading the file or writing the backing failed.
        """
        st = os.fstat(fd)
        for offset, length in ranges:
            for start in range(offset, offset + length, _CHUNK):
                backing.write(_pread_exact(fd, min(_CHUNK, offset + length - start), start))
        backing.flush()
        return cls(path, fd, ranges, backing, st)

    @property
    def saved_bytes(self) -> int:
        """Bytes saved (the sum of the ranges' lengths)."""
        return sum(length for _, length in self.ranges)

    def _chunks(self) -> "list[tuple[int, int]]":
        """(file offset, length) of every chunk of at most 1 MiB, in backing order."""
        return [
            (start, min(_CHUNK, offset + length - start))
            for offset, length in self.ranges
            for start in range(offset, offset + length, _CHUNK)
        ]

    def restore(self) -> None:
        """Put the file back as it was saved: write every range back, truncate to the
        saved size (which also frees blocks allocated past the end), flush to disk,
        read every range back and compare, and set the access and modification times
        back.

        Raises:
            UndoFailed: a write failed (a full disk, if the edit had truncated the file and
                its freed blocks were taken meanwhile) or what was read back differs;
                the message says the file may be damaged.
        """
        try:
            self.backing.seek(0)
            for start, length in self._chunks():
                _pwrite_all(self.fd, self.backing.read(length), start)
            os.ftruncate(self.fd, self.st.st_size)
            os.fsync(self.fd)
            self.backing.seek(0)
            for start, length in self._chunks():
                if _pread_exact(self.fd, length, start) != self.backing.read(length):
                    raise OSError(f"bytes {start} to {start + length} read back differently")
            size = os.fstat(self.fd).st_size
            if size != self.st.st_size:
                raise OSError(f"its size is {size} bytes, not {self.st.st_size}")
        except OSError as exc:
            raise UndoFailed(
                f"{self.path}: the failed edit could not be undone ({exc.strerror or exc}); the file may be damaged: "
                "check it with `mkvmerge -J` and restore it from a backup if needed"
            ) from None
        # The content is as before: its times should be too (a changed mtime would tell
        # backup tools and media servers that it changed). ctime cannot be set back.
        try:
            os.utime(self.fd, ns=(self.st.st_atime_ns, self.st.st_mtime_ns))
        except OSError:
            pass
