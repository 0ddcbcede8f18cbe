"""Walking folders: the catch-up scan at start, folders created or moved in, and a root
whose events were lost (the inotify queue overflowed).

Both feed the same :class:`Stabilizer` as live events, so a file found by a walk is
queued under the same stability test; files go over in batches of up to
:data:`HANDOFF_BATCH`. Where the root is on a filesystem of the local kernel
(``trust_ctime``), each file's ``st_ctime`` tells the stabilizer when it last changed,
so a file quiet for the settle time already is not made to wait it again: the walk's
thread hands it to the intake itself. A file whose size, mtime, inode, device and
ctime prove it untouched since the database recorded it (:func:`vpod.unchanged.untouched`)
is skipped without being read (the stat fast path); anything else is fingerprinted by
the intake, which still recognizes unchanged content.

A root-wide walk (the catch-up, a rescan after lost events) lists, filters, ``lstat``-s
and asks writer leases in a child process (:mod:`vpod.watch.walker`) on the second CPU,
while this process decides per folder and writes the database; if the child fails, the
walk goes on here (``scan_walker_failed``).

A rescan after lost events is coalesced: while one of a root waits to start, more
requests for that root add nothing; once it has started, one more may wait (events
lost during the walk may concern folders it has passed already).

Several nodes on one library: a catch-up walk of a library holds its scan lock
(:meth:`vpod.db.store.Store.scan_lock`), so one node at a time walks it; a node that
finds the lock taken skips its walk (``scan_skipped``: the other node's walk queues the
same files, and the store's upsert would make one job of each anyway).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import structlog

from vpod.db.store import EnqueueOutcome, Store, StoreError, WalkedFolder
from vpod.fingerprint import StatKey
from vpod.watch.filters import PathFilter
from vpod.watch.intake import BulkFolder, Leftover
from vpod.unchanged import untouched
from vpod.watch.stabilizer import Stabilizer
from vpod.watch.walk_process import ChildWalk, WalkedStat, WalkerFailed, walked_name
from vpod.watch.walker import VERDICT_FREE, list_folder
from vpod.watch.write_behind import WriteBehind


WriteBehindHook = Callable[[WriteBehind, Callable[[dict[Any, EnqueueOutcome]], None]], ContextManager[None]]
""":meth:`vpod.watch.intake.Intake.behind`'s shape."""
BulkHook = Callable[[Path, Sequence[BulkFolder], Leftover, Callable[[int], None]], None]
""":meth:`vpod.watch.intake.Intake.folders_walked`'s shape."""
HANDOFF_BATCH = 1000  # files handed to the stabilizer at once: one /proc scan, one transaction
BULK_BATCH = 5000
"""Files of new folders queued in one statement and transaction (:meth:`Scanner._bulk_over`):
each transaction and statement is a few hand-offs of the GIL, which the writer thread
waits for while the worker's thread runs Python (BENCHMARKS.md, catch-up scan)."""
PROGRESS_SECONDS = 5.0  # a walk still running logs scan_progress this often


@dataclass
class WalkTally:
    """What one walk found: media files ``seen``, ``candidates`` handed to the stabilizer
    (not recorded unchanged), and ``queued``: new jobs among those the walk handed to the
    intake itself (files still settling are queued later, by the stabilizer's thread).
    ``walker_cpu_seconds``: the CPU of a child walker that completed the walk, else ``None``.
    ``next_report``: monotonic seconds of the next ``scan_progress`` line."""

    seen: int = 0
    candidates: int = 0
    queued: int = 0
    next_report: float = 0.0
    walker_cpu_seconds: float | None = None  # a child walker's CPU (user + system seconds)
    # Files of bulk folders the store handed back that the database records unchanged:
    # counted as candidates when handed over, taken off at the end (written by the writer thread).
    recorded_back: int = 0


class Scanner:
    """A thread that walks folders on request, never following symlinked folders.

    Args:
        store: source of the recorded stat keys (fast path).
        path_filter: extension and ignore rules.
        stabilizer: receives the candidate files.
        stop: ends the thread and any walk in progress.
        recursive: descend into subfolders.
        trust_ctime: whether the ctimes of files under a root come from this host's
            clock (the root is watched with inotify, not polled as a network share).
        library_of: the library name of a root (``None``: no library; its catch-up
            walk then takes no scan lock).
        write_behind: :meth:`vpod.watch.intake.Intake.behind`: given, each walk writes
            its batches to the database on a second thread while it reads the next
            (:class:`~vpod.watch.write_behind.WriteBehind`); ``None``: on its own thread.
        child_walk: the Python interpreter (the daemon's, ``sys.executable``) with which a root-wide walk (``catch_up``, ``events_lost``) lists folders,
            filters names, ``lstat``-s and asks writer leases in a child process
            (:class:`~vpod.watch.walk_process.ChildWalk`) while this process decides and
            writes (``None``: every walk in this process); a child that fails is reported (``scan_walker_failed``, warning) and
            the walk goes on in this process from where the child stopped.
        bulk: :meth:`vpod.watch.intake.Intake.folders_walked`, given where the store has a
            bulk path (``Store.bulk_walk``): the files a child walk vouched for (see
            :mod:`vpod.watch.walker`) in folders where no file is in flux are queued by
            it, :data:`BULK_BATCH` at a time, with no per-file work in this process;
            those it does not write (a row exists, a ``done`` result has their size) come
            back, and go through the stat fast path and the stabilizer as any walked
            file. ``None``: every file goes to the stabilizer.
    """

    def __init__(
        self,
        store: Store,
        path_filter: PathFilter,
        stabilizer: Stabilizer,
        stop: threading.Event,
        *,
        recursive: bool,
        trust_ctime: Callable[[Path], bool] = lambda root: False,
        library_of: Callable[[Path], str | None] = lambda root: None,
        write_behind: WriteBehindHook | None = None,
        child_walk: str | None = None,
        bulk: BulkHook | None = None,
    ) -> None:
        self.bulk = bulk
        self.child_walk = child_walk
        self.write_behind = write_behind
        self.library_of = library_of
        self.store = store
        self.filter = path_filter
        self.stabilizer = stabilizer
        self.stop = stop
        self.recursive = recursive
        self.trust_ctime = trust_ctime
        self._requests: queue.Queue[tuple[Path, Path, str | None] | None] = queue.Queue()
        self._rescans_waiting: set[Path] = set()
        self._lock = threading.Lock()
        self.log = structlog.get_logger("vpod")

    def request(self, root: Path, folder: Path, *, catch_up: bool = False) -> None:
        """Ask for ``folder`` (under ``root``) to be walked. Never blocks.

        ``catch_up``: a whole root walked for files that arrived unseen (at start, or a
        root watched again). ``scan_completed`` is logged when the walk ends, with ``why``
        ``catch_up`` or ``folder`` (a folder created or moved in: only when it held media
        files, so an empty folder just made logs nothing).
        """
        self._requests.put((root, folder, "catch_up" if catch_up else None))

    def rescan(self, root: Path) -> bool:
        """Ask for ``root`` to be walked because its events were lost; never blocks.

        Returns False when a rescan of ``root`` is already waiting to start: it will
        see whatever this request would have (the requests are coalesced).
        """
        with self._lock:
            if root in self._rescans_waiting:
                return False
            self._rescans_waiting.add(root)
        self._requests.put((root, root, "events_lost"))
        return True

    def wake(self) -> None:
        """Unblock the thread after ``stop`` was set."""
        self._requests.put(None)

    def run(self) -> None:
        """Thread body: serve walk requests until ``stop`` is set."""
        while not self.stop.is_set():
            item = self._requests.get()
            if item is None:
                continue
            root, folder, why = item
            if why == "events_lost":
                with self._lock:
                    self._rescans_waiting.discard(root)  # from now on, a new loss needs a new walk
            if why == "catch_up":
                self._catch_up(root, folder)
                continue
            tally = self.tally(root, folder, why=why or "folder")
            if why is not None or tally.seen:  # a folder just made, still empty: no line
                self._completed(root, folder, why or "folder", tally)

    def _catch_up(self, root: Path, folder: Path) -> None:
        """A catch-up walk under its library's scan lock; skipped (``scan_skipped``) while
        another node holds it. A database that cannot be asked does not stop the walk:
        a duplicate walk is harmless."""
        library = self.library_of(root)
        with contextlib.ExitStack() as held:
            try:
                mine = held.enter_context(self.store.scan_lock(library)) if library is not None else True
            except StoreError as exc:
                self.log.warning("scan_lock_failed", root=str(root), library=library, error=str(exc))
                mine = True
            if not mine:
                self.log.info(
                    "scan_skipped", root=str(root), library=library, why="catch_up",
                    reason="another node is walking this library now; its walk queues the same files",
                )
                return
            tally = self.tally(root, folder, why="catch_up")
        self._completed(root, folder, "catch_up", tally)

    def _completed(self, root: Path, folder: Path, why: str, tally: WalkTally) -> None:
        extra = {} if tally.walker_cpu_seconds is None else {"walker_cpu_seconds": round(tally.walker_cpu_seconds, 3)}
        self.log.info(
            "scan_completed", root=str(root), folder=str(folder), library=self.library_of(root), files_seen=tally.seen,
            candidates=tally.candidates, queued=tally.queued, why=why, **extra,
        )

    def walk(self, root: Path, folder: Path, *, why: str | None = None) -> tuple[int, int]:
        """Walk ``folder``; returns (media files seen, files handed to the stabilizer).

        ``why``: the walk's reason, named in its ``scan_progress`` lines. See :meth:`tally`.
        """
        tally = self.tally(root, folder, why=why)
        return tally.seen, tally.candidates

    def tally(self, root: Path, folder: Path, *, why: str | None = None) -> WalkTally:
        """Walk ``folder`` (under ``root``); returns what it found and queued.

        Names are filtered before anything is stat-ed: below a folder that passed
        :meth:`PathFilter.wants_folder`, a name alone decides (:meth:`PathFilter.wants_name`).
        The walk works on ``str`` paths (no :class:`Path` per entry); candidates go to the
        stabilizer in batches of up to :data:`HANDOFF_BATCH` (:meth:`Stabilizer.notify_walked`),
        which hands those quiet for the settle time to the intake from this thread; with
        ``write_behind``, the intake writes each batch to the database on a second thread
        while this one reads the next, and the walk returns once all are written.

        Every :data:`PROGRESS_SECONDS` a walk still running logs ``scan_progress`` (info):
        ``root``, ``folder`` (the one walked), ``library``, ``files_seen``, ``queued`` (new jobs
        so far) and ``why``.
        """
        tally = WalkTally(next_report=time.monotonic() + PROGRESS_SECONDS)
        if folder != root and not self.filter.wants_folder(folder, root):
            return tally
        if self.write_behind is None:
            self._any_walk(root, folder, why, tally)
            tally.candidates -= tally.recorded_back
            return tally
        writer = WriteBehind()

        def counted(outcomes: dict[Any, EnqueueOutcome]) -> None:
            tally.queued += sum(1 for outcome in outcomes.values() if outcome is EnqueueOutcome.QUEUED)

        try:
            with self.write_behind(writer, counted):
                self._any_walk(root, folder, why, tally)
        finally:
            writer.close()  # every batch written (and counted) before the walk reports
        tally.candidates -= tally.recorded_back
        return tally

    def _any_walk(self, root: Path, folder: Path, why: str | None, tally: WalkTally) -> None:
        """The walk of :meth:`tally`: in a child process for a root-wide walk with
        ``child_walk``, else (or for what a failed child left) in this one."""
        if self.child_walk is None or why not in ("catch_up", "events_lost"):
            self._walk(root, folder, why, tally)
            return
        done: set[str] = set()
        try:
            self._walk_child(root, folder, why, tally, done)
        except WalkerFailed as exc:
            self.log.warning(
                "scan_walker_failed", root=str(root), folder=str(folder), error=str(exc), folders_done=len(done),
                reason="the walk goes on in the daemon's process",
            )
            self._walk(root, folder, why, tally, done=done)

    def _walk_child(self, root: Path, folder: Path, why: str | None, tally: WalkTally, done: set[str]) -> None:
        """:meth:`_walk` with the listing, name filters, ``lstat`` and writer leases in a
        :class:`ChildWalk`; each folder handed over is added to ``done``."""
        use_ctime = self.trust_ctime(root)
        assert self.child_walk is not None
        walk = ChildWalk(
            os.fspath(root), os.fspath(folder), self.filter, recursive=self.recursive,
            lease_age=self.stabilizer.settle_seconds if use_ctime else None, stop=self.stop, python=self.child_walk,
            bulk=self.bulk is not None and use_ctime,
        )
        found: list[tuple[str, Any]] = []
        bulk: list[BulkFolder] = []
        records = walk.records()
        try:
            self._take_records(records, root, folder, why, tally, use_ctime, found, bulk, done)
        except WalkerFailed:
            # The files of the folders done: handed over before the walk goes on here.
            self._bulk_over(root, bulk, use_ctime, tally)
            if found:
                self._hand_over(found, use_ctime, tally)
            raise
        finally:
            records.close()  # kills the child when the walk stops early
        tally.walker_cpu_seconds = walk.cpu_seconds
        self._bulk_over(root, bulk, use_ctime, tally)
        if found:
            self._hand_over(found, use_ctime, tally)

    def _take_records(
        self, records: Any, root: Path, folder: Path, why: str | None, tally: WalkTally, use_ctime: bool,
        found: list[tuple[str, Any]], bulk: list[BulkFolder], done: set[str],
    ) -> None:
        """The per-folder part of :meth:`_walk_child`: skip what is recorded unchanged,
        hand ``found`` over by :data:`HANDOFF_BATCH` and ``bulk`` by :data:`BULK_BATCH`
        (both emptied in place), report progress."""
        in_bulk = sum(folder.walked.files for folder in bulk)  # files waiting in ``bulk``
        for record in records:
            if record[0] == "e":
                self.log.warning("scan_folder_unreadable", folder=record[1], error=record[2])
                continue
            current, rel_folder, files = record[1], record[2], record[3]
            rows = record[4] if len(record) > 4 else None  # None, or (count, first name, JSON): vpod.watch.walker
            if rows is not None and self.stabilizer.in_flux(current):  # each file by the rules
                files, rows = files + _expanded(json.loads(rows[2])), None
            if rows is not None:
                # No known_stats here: files with a row come back from the store (leftover).
                tally.seen += rows[0]
                bulk.append(BulkFolder(current, rows[1], WalkedFolder(rel_folder, rows[2], rows[0])))
                in_bulk += rows[0]
            if files:
                tally.seen += len(files)
                found.extend(self._unrecorded(root, current, rel_folder, files))
            if in_bulk >= BULK_BATCH:
                self._bulk_over(root, bulk, use_ctime, tally)
                in_bulk = 0
            if len(found) >= HANDOFF_BATCH:
                self._hand_over(list(found), use_ctime, tally)
                found.clear()
            done.add(current)
            if time.monotonic() >= tally.next_report:
                self._report(root, folder, why, tally)

    def _unrecorded(
        self, root: Path, current: str, rel_folder: bytes, files: list[tuple[Any, ...]]
    ) -> list[tuple[str, WalkedStat]]:
        """The child's ``files`` of the folder ``current`` (``rel_folder`` below ``root``)
        that the database does not record unchanged (the stat fast path)."""
        known = self.store.known_stats(root, rel_folder)
        prefix = rel_folder + b"/" if rel_folder else b""
        base = current if current.endswith(os.sep) else current + os.sep
        found = []
        for name, *fields in files:
            st = WalkedStat(*fields)
            if known:  # a folder vpod has seen before: skip what is recorded unchanged
                recorded = known.get(prefix + os.fsencode(name))
                if recorded is not None and untouched(st, recorded):  # type: ignore[arg-type]
                    continue
            found.append((base + name, st))
        return found

    def _bulk_over(self, root: Path, bulk: list[BulkFolder], use_ctime: bool, tally: WalkTally) -> None:
        """Give the new folders in ``bulk`` to :attr:`bulk` (emptied in place); the files
        it hands back (a row exists, or the rules need their content) go to the
        stabilizer unless recorded unchanged (:meth:`_hand_back`)."""
        if not bulk or self.bulk is None:
            return
        folders = list(bulk)
        bulk.clear()
        tally.candidates += sum(folder.walked.files for folder in folders)
        rel_of = {folder.path: folder.walked.dir for folder in folders}

        def leftover(folder: str, rows: list[list[Any]]) -> None:
            found = self._unrecorded(root, folder, rel_of[folder], _expanded(rows))
            tally.recorded_back += len(rows) - len(found)  # recorded unchanged: not candidates after all
            if found:
                self._hand_back(found, use_ctime, tally)

        def queued(count: int) -> None:
            tally.queued += count

        self.bulk(root, folders, leftover, queued)

    def _walk(
        self, root: Path, folder: Path, why: str | None, tally: WalkTally, *, done: frozenset[str] | set[str] = frozenset()
    ) -> None:
        """The walk of :meth:`tally`, counting into ``tally``; the files of the folders in
        ``done`` (handed over already) are not looked at again, their subfolders are."""
        use_ctime = self.trust_ctime(root)
        root_text = os.fspath(root)
        # PathFilter.wants_name, its ignore check made once per entry (first: it also keeps folders out).
        is_ignored, has_media, is_backup = (
            self.filter.is_ignored_name, self.filter.has_media_extension, self.filter.is_backup_name
        )
        found: list[tuple[str, os.stat_result]] = []  # text: no Path per file
        stack = [os.fspath(folder)]
        while stack and not self.stop.is_set():
            current = stack.pop()
            try:
                entries, rel_folder = list_folder(current, root_text)
            except OSError as exc:
                self.log.warning("scan_folder_unreadable", folder=current, error=str(exc))
                continue
            if rel_folder is None:
                continue
            prefix = rel_folder + b"/" if rel_folder else b""
            known: dict[bytes, StatKey] | None = None
            again = current in done
            for entry in entries:
                name = entry.name
                if is_ignored(name):
                    continue  # neither a file to take nor a folder to enter
                try:
                    is_folder = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_folder and self.recursive:
                    stack.append(entry.path)
                # A folder named x.mkv goes on like a file, to be recorded as skipped.
                if again or not has_media(name) or is_backup(name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                tally.seen += 1
                if known is None:
                    known = self.store.known_stats(root, rel_folder)
                if known:  # a folder vpod has seen before: skip what is recorded unchanged
                    recorded = known.get(prefix + os.fsencode(name))
                    if recorded is not None and untouched(st, recorded):
                        continue
                found.append((entry.path, st))
            if len(found) >= HANDOFF_BATCH:
                self._hand_over(found, use_ctime, tally)
                found = []
            if time.monotonic() >= tally.next_report:
                self._report(root, folder, why, tally)
        if found:
            self._hand_over(found, use_ctime, tally)

    def _hand_over(self, found: list[tuple[str, os.stat_result]], use_ctime: bool, tally: WalkTally) -> None:
        """Give walked files to the stabilizer; count the new jobs of those it handed on at once."""
        tally.candidates += len(found)
        self._hand_back(found, use_ctime, tally)

    def _hand_back(self, found: list[tuple[str, Any]], use_ctime: bool, tally: WalkTally) -> None:
        """:meth:`_hand_over` of files counted as candidates already (a bulk folder's
        files that need the per-file rules)."""
        outcomes = self.stabilizer.notify_walked(found, trust_ctime=use_ctime)
        if isinstance(outcomes, dict) and outcomes:  # {} within write-behind: counted on the writer's thread
            tally.queued += sum(1 for outcome in outcomes.values() if outcome is EnqueueOutcome.QUEUED)

    def _report(self, root: Path, folder: Path, why: str | None, tally: WalkTally) -> None:
        tally.next_report = time.monotonic() + PROGRESS_SECONDS
        self.log.info(
            "scan_progress", root=str(root), folder=str(folder), library=self.library_of(root), files_seen=tally.seen,
            queued=tally.queued, why=why,
        )


def _expanded(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """A folder's bulk rows (:mod:`vpod.watch.walker`: files with no writer) as the
    child's per-file tuples (name, stat fields, verdict)."""
    return [(walked_name(row), *row[1:7], VERDICT_FREE) for row in rows]
