"""Which files some process still holds open for writing, read from ``/proc``.

A writer that pauses longer than ``settle_seconds`` (a stalled download, a network
copy waiting on the network) looks settled by size and mtime alone. When it still
holds the file open with write access, the file is not complete: the stabilizer
waits. ``/proc/PID/fd/N`` links to the open file and ``/proc/PID/fdinfo/N`` has its
open flags in octal (proc(5)). Only processes vpod may inspect are seen (its own
user's, unless it runs with more rights), so this is a safety net on top of the
settle time, not a replacement.
"""

from __future__ import annotations

import os
from pathlib import Path

_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def _write_flags(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE in _WRITE_MODES
    except (OSError, ValueError, IndexError):
        pass
    return False


def open_for_writing(paths: list[Path], proc: str = "/proc") -> set[Path]:
    """The subset of ``paths`` that some visible process has open for writing.

    One pass over ``/proc`` for any number of paths (a few milliseconds on a typical
    host). Returns an empty set where ``/proc`` is unavailable.
    """
    if not paths:
        return set()
    wanted = {os.fspath(p): p for p in paths}
    found: set[Path] = set()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to see
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            path = wanted.get(target)
            if path is not None and path not in found and _write_flags(pid, fd):
                found.add(path)
    return found
