"""The daemon's end of a walk run in a child process (:mod:`vpod.watch.walker`).

The child walks, filters names, ``lstat``-s and asks each settled regular file's writer
lease on one CPU while the daemon decides per folder and writes the database on the
other (BENCHMARKS.md, catch-up scan, round 4).
"""

from __future__ import annotations

import marshal
import subprocess
import sys
import threading
from typing import IO, Any, Generator

from vpod.watch import walker
from vpod.watch.filters import TEMP_PREFIX, PathFilter


class WalkerFailed(Exception):
    """The child walker could not start, or ended before its walk was complete (killed,
    crashed, a broken frame); the message says how (its exit status, its last error line)."""


class WalkedStat:
    """The ``lstat`` fields of a file the child walked, in :class:`os.stat_result`'s
    names (what the scanner, the stabilizer and the intake read: ``st_mode``,
    ``st_ino``, ``st_dev``, ``st_size`` in bytes, ``st_mtime_ns``, ``st_ctime_ns`` and
    ``st_ctime`` in seconds), and ``writer``: the child's verdict on its writers
    (``walker.VERDICT_*``)."""

    __slots__ = ("st_mode", "st_ino", "st_dev", "st_size", "st_mtime_ns", "st_ctime_ns", "st_ctime", "writer")

    def __init__(self, mode: int, ino: int, dev: int, size: int, mtime_ns: int, ctime_ns: int, writer: int) -> None:
        self.st_mode = mode
        self.st_ino = ino
        self.st_dev = dev
        self.st_size = size
        self.st_mtime_ns = mtime_ns
        self.st_ctime_ns = ctime_ns
        self.st_ctime = ctime_ns / 1e9
        self.writer = writer


class ChildWalk:
    """One walk of ``folder`` (under ``root``) in a child process; iterate it for its records.

    Args:
        root, folder: the walk's root and the folder it walks (text paths).
        path_filter: the name rules the child applies.
        recursive: descend into subfolders.
        lease_age: seconds; a regular file whose ctime is at least that old gets its
            writer lease asked in the child (``None``: none does).
        stop: :meth:`records` ends (and the child is killed) once it is set.
        python: the interpreter that runs the child (the daemon's own, ``sys.executable``).
        bulk: the child hands each folder's files that may be queued in one statement
            as one JSON text (the fifth field of a folder's record, :mod:`vpod.watch.walker`).

    The child is ``python -I -S walker.py``: no site packages, no environment, stdlib only.
    """

    PIPE_BYTES = 1 << 20  # the pipe's buffer (F_SETPIPE_SZ): the child walks ahead by about 1 MiB of records

    def __init__(
        self, root: str, folder: str, path_filter: PathFilter, *, recursive: bool, lease_age: float | None,
        stop: threading.Event, python: str = sys.executable, bulk: bool = False,
    ) -> None:
        self.python = python
        self.stop = stop
        self.settings = {
            "root": root, "folder": folder, "recursive": recursive, "ignore": path_filter.ignore.pattern,
            "temp_prefix": TEMP_PREFIX, "extensions": sorted(path_filter.extensions), "lease_age": lease_age,
            "bulk": bulk,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.cpu_seconds: float | None = None  # the child's user + system CPU, once its walk is complete

    def records(self) -> Generator[tuple[Any, ...], None, None]:
        """Start the child and yield its records (``("d", ...)`` and ``("e", ...)``, see
        :mod:`vpod.watch.walker`) as they come; returns after its ``("end", ...)``
        (its CPU then in :attr:`cpu_seconds`), or at
        once when ``stop`` is set (the child is killed).

        Raises:
            WalkerFailed: the child could not start or ended early.
        """
        try:
            self.proc = subprocess.Popen(
                [self.python, "-I", "-S", walker.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, close_fds=True,
            )
        except OSError as exc:
            raise WalkerFailed(f"cannot start {self.python}: {exc}") from exc
        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            _grow_pipe(self.proc.stdout)
            try:
                self.proc.stdin.write(marshal.dumps(self.settings))
                self.proc.stdin.close()
            except OSError:
                pass  # it died already: the read below says so
            out = self.proc.stdout
            while not self.stop.is_set():
                head = out.read(4)
                blob = out.read(int.from_bytes(head, "little")) if len(head) == 4 else b""
                try:
                    frame = marshal.loads(blob) if blob else None
                except (EOFError, ValueError, TypeError) as exc:
                    raise self._failed(f"a broken frame ({exc})") from exc
                if frame is None:
                    raise self._failed("its output ended before the walk did")
                for record in frame:
                    if self.stop.is_set():
                        return
                    if record[0] == "end":
                        self.cpu_seconds = float(record[1])
                        return
                    yield record
        finally:
            self.close()

    def _failed(self, what: str) -> WalkerFailed:
        assert self.proc is not None
        try:
            self.proc.kill()
        except OSError:
            pass
        status = self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace").strip().splitlines() if self.proc.stderr else []
        return WalkerFailed(f"{what}: exit status {status}" + (f", {err[-1]}" if err else ""))

    def close(self) -> None:
        """Kill the child if it still runs and reap it (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _grow_pipe(stream: IO[bytes]) -> None:
    """Ask for a bigger pipe buffer (Linux ``F_SETPIPE_SZ``, fcntl(2)); a refusal leaves the default 64 KiB."""
    import fcntl

    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:
        return
    try:
        fcntl.fcntl(stream.fileno(), setpipe, ChildWalk.PIPE_BYTES)
    except OSError:
        pass


def walked_name(row: list[Any]) -> str:
    """The file name of a bulk row of the child walker (``[relpath, ..., rel_folder]``:
    :class:`~vpod.db.store.WalkedFolder`)."""
    relpath, folder = row[0], row[7]
    return str(relpath[len(folder) + 1 :] if folder else relpath)
