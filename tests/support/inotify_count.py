"""Count what happens to each file of one folder, from the kernel's point of view (inotify).

A remux ends with ``os.replace(temp, file)``: an ``IN_MOVED_FROM`` naming the temp file
and an ``IN_MOVED_TO`` naming the file, paired by their cookie (inotify(7)); pairs
whose source is one of vpod's temp names (:data:`vpod.watch.filters.TEMP_PREFIX`) are
vpod's replacements, told apart from a user's ``mv`` or rsync's rename of its own temp. A header-only edit (``mkvpropedit``) writes the file in place: one
``IN_CLOSE_WRITE`` naming it. inotify watches an inode, so writes made through any
path to the folder (another bind mount, a symlink) are seen. Nothing here trusts
vpod's logs or database: it is the independent witness of "exactly one replacement
per changed file".

Stdlib only: ``inotify_init1``/``inotify_add_watch`` through ctypes, one reader thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from vpod.watch.filters import TEMP_PREFIX

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event, inotify(7))


class FolderEvents:
    """Counts, per file name in ``folder`` (not its subfolders), from construction on:
    :attr:`replaced` (a vpod temp file renamed onto it), :attr:`moved_in` (any rename
    onto it) and :attr:`written` (``IN_CLOSE_WRITE``: written in place, or created).

    Raises:
        OSError: inotify is not available (from the constructor).
    """

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        wd = libc.inotify_add_watch(self._fd, os.fsencode(folder), IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE)
        if wd < 0:
            os.close(self._fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
        self.folder = folder
        self.moved_in: Counter[str] = Counter()
        self.replaced: Counter[str] = Counter()
        self._from: dict[int, str] = {}
        self.written: Counter[str] = Counter()
        self.overflowed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="inotify-count", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                continue
            offset = 0
            with self._lock:
                while offset + _HEADER.size <= len(data):
                    _, mask, cookie, length = _HEADER.unpack_from(data, offset)
                    raw = data[offset + _HEADER.size: offset + _HEADER.size + length]
                    offset += _HEADER.size + length
                    name = os.fsdecode(raw.rstrip(b"\0"))
                    if mask & IN_Q_OVERFLOW:
                        self.overflowed = True
                    if mask & IN_MOVED_FROM:
                        self._from[cookie] = name
                    if mask & IN_MOVED_TO:
                        self.moved_in[name] += 1
                        if self._from.pop(cookie, "").startswith(TEMP_PREFIX):
                            self.replaced[name] += 1
                    if mask & IN_CLOSE_WRITE:
                        self.written[name] += 1

    def replacements(self) -> Counter[str]:
        """vpod's replacements (temp renamed onto the name) per name, so far."""
        with self._lock:
            return Counter(self.replaced)

    def writes(self) -> Counter[str]:
        """In-place writes (``IN_CLOSE_WRITE``) per name, so far."""
        with self._lock:
            return Counter(self.written)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self._fd)

    def __enter__(self) -> "FolderEvents":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
