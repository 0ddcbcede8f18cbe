"""Which files some process still holds open for writing: from ``/proc``, or asked of the kernel.

A writer that pauses longer than ``settle_seconds`` (a stalled download, a network
copy waiting on the network) looks settled by size and mtime alone. When it still
holds the file open with write access, the file is not complete: the stabilizer
waits. ``/proc/PID/fd/N`` links to the open file and ``/proc/PID/fdinfo/N`` has its
open flags in octal (proc(5)). Only processes vpod may inspect are seen (its own
user's, unless it runs with more rights), so this is a safety net on top of the
settle time, not a replacement.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
from pathlib import Path

_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)
# Sent to the lease holder if a writer opens the file while the lease is held (for
# microseconds); SIGWINCH's default action is to ignore it (signal(7)), SIGIO's would end vpod.
_LEASE_BREAK_SIGNAL = signal.SIGWINCH


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


def lease_says(fd: int) -> bool | None:
    """The kernel's answer for the open file ``fd``: True when some process has it open
    for writing, False when none has, ``None`` when no lease can be taken here.

    A read lease is taken and released at once: Linux refuses it (``EAGAIN``) while any
    open file description of the inode, of any process and any user, has write access
    (F_SETLEASE(2const), Linux man-pages; ``check_conflicting_open`` in the kernel's
    fs/locks.c). No lease for a file of another user while vpod lacks ``CAP_LEASE``,
    on a network filesystem, or with ``fs.leases-enable = 0``.
    """
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, _LEASE_BREAK_SIGNAL)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except (OSError, AttributeError) as exc:  # AttributeError: no leases on this platform
        if isinstance(exc, OSError) and exc.errno == errno.EAGAIN:
            return True
        return None
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


def has_writer(fd: int, path: Path) -> bool:
    """Whether any process has the file open for writing; ``fd`` is vpod's own read-only
    descriptor of it and ``path`` its name.

    Asked of the kernel first (:func:`lease_says`, microseconds), where the ``/proc``
    scan reads every descriptor of every process (3 ms on a quiet host, BENCHMARKS.md);
    :func:`open_for_writing` answers where no lease can be taken.
    """
    answer = lease_says(fd)
    return bool(open_for_writing([path])) if answer is None else answer


def writers_among(paths: list[Path]) -> set[Path]:
    """The subset of ``paths`` some process has open for writing: the kernel is asked
    for each regular file (opened read-only for a moment), one ``/proc`` scan answers
    for the rest. What the stabilizer asks before it calls a file settled."""
    busy: set[Path] = set()
    unknown: list[Path] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            unknown.append(path)  # unreadable, a symlink, gone: /proc may still know
            continue
        try:
            answer = lease_says(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        finally:
            os.close(fd)
        if answer is None:
            unknown.append(path)
        elif answer:
            busy.add(path)
    return busy | (open_for_writing(unknown) if unknown else set())
