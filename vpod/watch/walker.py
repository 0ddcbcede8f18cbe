"""The walk of a catch-up scan, as a small child process (run as a script, stdlib only).

A catch-up scan's directory walk, name filters, ``lstat`` and writer lease take about
as much CPU as its database writes (BENCHMARKS.md, catch-up scan); in one process both
share the GIL. This program does the walk's part on the second CPU while the daemon
(:mod:`vpod.watch.walk_process`) does the per-folder decisions and the inserts.

Protocol (both ends are the same Python, so :mod:`marshal` is the format): the parent
writes one ``marshal`` dict to stdin (:func:`main` names its keys) and closes it. The
child writes frames to stdout, each a 4-byte little-endian length and a ``marshal``
blob of a list of records:

- ``("d", folder, rel_folder, files)``: a folder listed; ``folder`` its path (``str``,
  undecodable bytes as surrogate escapes, so any name round-trips with
  :func:`os.fsencode`), ``rel_folder`` its path below the root (``bytes``), ``files``
  a list of ``(name, mode, ino, dev, size, mtime_ns, ctime_ns, verdict)`` for each
  wanted media name (``verdict``: one of the ``VERDICT_*`` codes below);
  With the setting ``bulk``, the record has a fifth field: ``None``, or
  ``(count, first_name, rows)`` for the folder's files that may be queued in one
  statement (:meth:`vpod.db.store.Store.enqueue_walked_new`): regular, a settle time
  quiet (``lease_age``), no writer (the lease taken: ``VERDICT_FREE``), a UTF-8 name
  below a UTF-8 folder, an inode below 2**63. ``rows`` is the JSON text (C-speed
  :func:`json.dumps`) of ``[relpath, mode, ino, dev, size, mtime_ns, ctime_ns, rel_folder]``
  lists (``relpath``: the file's path below the root, ``rel_folder`` its folder's, both
  text: SQLite takes them as they are); those files are not in ``files``;
- ``("e", folder, error)``: a folder that could not be listed;
- ``("end", cpu_seconds)``: the walk is complete (the last frame); the child's own
  user + system CPU seconds (:func:`os.times`).

The parent ends the child by killing it; a parent that dies ends it by ``EPIPE``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import marshal
import os
import re
import signal
import stat
import sys
import time

VERDICT_UNCHECKED = -1  # no lease asked (its ctime is recent: the stabilizer asks when it settles)
VERDICT_FREE = 0  # a regular file no process has open for writing (the kernel says)
VERDICT_BUSY = 1  # a regular file some process has open for writing
VERDICT_NO_LEASE = 2  # a regular file opened, but no lease can be taken here (the kernel cannot say)
VERDICT_GONE = 3  # deleted between the listing and the open
VERDICT_NOT_OPENED = 4  # a regular file that could not be opened read-only (permissions)
VERDICT_NOT_REGULAR = 5  # a symlink, folder, FIFO, device... named like a media file

FRAME_FILES = 512
FRAME_SECONDS = 0.1
"""A frame is sent at the end of a folder once it holds :data:`FRAME_FILES` files or
folders, or :data:`FRAME_SECONDS` after the last one (so the daemon, which checks its
``stop`` at each record, is never long without one)."""


def main() -> int:
    """Read the walk's settings from stdin, walk, write frames to stdout; exit status 0.

    Settings (a ``marshal`` dict): ``root`` and ``folder`` (``str``), ``recursive``
    (bool), ``ignore`` (the regular expression of :class:`vpod.watch.filters.PathFilter`,
    ``str``), ``temp_prefix`` (``str``), ``extensions`` (lower case, no dot),
    ``lease_age`` (seconds: a regular file whose ctime is at least that old is opened
    for its writer lease; ``None``: none is), ``bulk`` (optional bool: records carry
    their folder's bulk rows, see the module's docstring; only where this process's
    file names are UTF-8, :func:`sys.getfilesystemencoding`).
    """
    # A lease break (a writer opening the file in the microseconds the lease is held)
    # signals SIGIO, whose default action ends a process (signal(7)); here it is ignored,
    # so the lease needs no F_SETSIG, and close(2) releases it (no F_UNLCK): one fcntl
    # per file instead of three (vpod.watch.writers.lease_says asks the same question).
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    settings = marshal.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    ignore = re.compile(settings["ignore"])
    temp_prefix: str = settings["temp_prefix"]
    extensions = frozenset(settings["extensions"])
    recursive: bool = settings["recursive"]
    lease_age: float | None = settings["lease_age"]
    root_text: str = settings["root"]
    bulk: bool = bool(settings.get("bulk")) and sys.getfilesystemencoding() == "utf-8" and lease_age is not None
    dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    records: list[tuple[object, ...]] = []
    pending = 0
    sent_at = time.monotonic()
    stack = [settings["folder"]]
    while stack:
        current = stack.pop()
        try:
            entries, rel_folder = list_folder(current, root_text)
        except OSError as exc:
            records.append(("e", current, str(exc)))
            continue
        if rel_folder is None:
            continue
        leased_before = time.time() - lease_age if lease_age is not None else None
        files = []
        rows: list[list[object]] | None = [] if bulk and _utf8(rel_folder) else None
        rel_text = rel_folder.decode() if rows is not None else ""
        prefix = rel_text + "/" if rel_text else ""
        first = ""
        # The rules of PathFilter.wants_name, the ignore check first (it also keeps folders out).
        for entry in entries:
            name = entry.name
            if name.startswith(temp_prefix) or ignore.match(name):
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_folder and recursive:
                stack.append(entry.path)
            stem, dot, ext = name.rpartition(".")
            if not dot or ext.lower() not in extensions or stem.endswith(".orig"):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            verdict = VERDICT_UNCHECKED
            if not stat.S_ISREG(st.st_mode):
                verdict = VERDICT_NOT_REGULAR
            elif leased_before is not None and st.st_ctime <= leased_before:
                verdict = _lease(entry.path, flags)
                if verdict == VERDICT_FREE and rows is not None and st.st_ino < _INT64 and _utf8(name):
                    rows.append([
                        prefix + name, st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                        rel_text,
                    ])
                    first = first or name
                    continue
            files.append((name, st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns, verdict))
        if not bulk:
            records.append(("d", current, rel_folder, files))
        else:
            records.append(("d", current, rel_folder, files, (len(rows), first, dumps(rows)) if rows else None))
        pending += len(files) + len(rows or ()) + 1
        if pending >= FRAME_FILES or time.monotonic() - sent_at >= FRAME_SECONDS:
            _send(out, records)
            records, pending, sent_at = [], 0, time.monotonic()
    times = os.times()
    records.append(("end", times.user + times.system))
    _send(out, records)
    return 0


def list_folder(current: str, root: str) -> tuple[list[os.DirEntry[str]], bytes | None]:
    """The entries of the folder ``current`` and its path below ``root`` as bytes
    (``b""`` for ``root`` itself; ``None`` when it is not below ``root``: a walk takes
    nothing from it). Shared by this child and the daemon's own walk
    (:meth:`vpod.watch.scanner.Scanner._walk`).

    Raises:
        OSError: the folder cannot be listed.
    """
    with os.scandir(current) as listing:
        entries = list(listing)
    if current == root:
        return entries, b""
    inside = root.rstrip(os.sep) + os.sep
    return entries, os.fsencode(current[len(inside) :]) if current.startswith(inside) else None


def _lease(path: str, flags: int) -> int:
    """The verdict on the regular file ``path``, as the intake's own check reads it
    (:meth:`vpod.watch.intake.Intake._entry_unless_written`; the kernel's rule is in
    :func:`vpod.watch.writers.lease_says`: Linux refuses a read lease, ``EAGAIN``, while
    any process has the file open for writing, F_SETLEASE(2const)). The lease is
    released by ``close``."""
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return VERDICT_GONE
    except OSError:
        return VERDICT_NOT_OPENED
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return VERDICT_BUSY if exc.errno == errno.EAGAIN else VERDICT_NO_LEASE
    finally:
        os.close(fd)
    return VERDICT_FREE


_INT64 = 1 << 63  # an inode at or above it does not fit SQLite's INTEGER


def _utf8(name: str | bytes) -> bool:
    """Whether ``name`` (a surrogate-escaped ``str``, or bytes) is valid UTF-8 on disk:
    JSON and SQLite text carry it unchanged."""
    if name.isascii():
        return True
    try:
        name.encode() if isinstance(name, str) else name.decode()
    except UnicodeError:
        return False
    return True


def _send(out: object, records: list[tuple[object, ...]]) -> None:
    blob = marshal.dumps(records)
    out.write(len(blob).to_bytes(4, "little") + blob)  # type: ignore[attr-defined]
    out.flush()  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
