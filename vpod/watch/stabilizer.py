"""The Stabilizer: a file is ready once it has stopped changing for ``settle_seconds``.

"Changing" is known three ways: filesystem events (created, modified, closed after
write, moved in) reported through :meth:`Stabilizer.notify`; the file's size and
mtime, taken with ``lstat`` by the stabilizer's own thread; and a process that still
holds the file open for writing (:mod:`vpod.watch.writers`). A file is ready when
``settle_seconds`` have passed since its last change, its size and mtime equal an
observation taken after that change, and no visible process has it open for writing.
The stat comparison catches writers whose events are missed (network filesystems,
mmap). Nothing here busy-polls: the thread sleeps on a condition variable until the
next file is due or a new event arrives.

A file found by a folder walk had its last change when its inode last changed:
``st_ctime``, which every write, rename, ``chmod`` and ``utime`` sets to the kernel's
clock and no system call can set back (stat(2), inode(7)). The walk hands over each
file with its ``lstat`` (:meth:`Stabilizer.notify_walked`): one quiet for
``settle_seconds`` already, with no event pending, is ready at once, without waiting
the settle time again, a second look, or a hop to the stabilizer's thread. Only walks
of folders on the local kernel's filesystems trust ctime: a network filesystem's
ctime comes from another host's clock.

Files that settle together go to ``on_ready`` as one batch (one ``/proc`` scan, and
the intake writes them in one transaction); files a walk found, and no event has touched
since, go to ``on_walked`` instead (the intake logs their ``file_queued`` at debug level:
a catch-up scan queues a whole library).
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vpod.watch.writers import writers_among

Observation = tuple[int, int, int, int]  # size (bytes), mtime (ns), inode, st_mode
Settled = list[tuple[Path, os.stat_result]]
MAX_BATCH = 1024  # files checked, scanned for writers and handed over at once


@dataclass
class _Pending:
    last_change: float  # monotonic seconds
    due: float
    obs: Observation | None = None
    obs_time: float = 0.0
    by_ctime: bool = False  # last_change came from a walk's st_ctime
    walked: bool = False  # found by a folder walk, and no event since
    done: bool = False  # its writer said it is complete (notify_done): events do not restart its settle time


class Stabilizer:
    """Tracks files in flux and hands each to ``on_ready`` once it is stable.

    Args:
        settle_seconds: quiet time (seconds) after the last change.
        on_ready: called from the stabilizer thread with a batch (at most
            :data:`MAX_BATCH`) of settled files, each with its last ``os.stat_result``;
            it may block (hashing, database) without delaying events. What it returns
            is ignored.
        stop: set to end :meth:`run`.
        on_gone: called with a path that vanished while pending (optional).
        writers: returns the given paths that a process still has open for writing
            (default: :func:`vpod.watch.writers.writers_among`); those wait longer.
        on_walked: like ``on_ready``, for settled files that a folder walk found
            (:meth:`notify_walked`) and no event touched since; its return value is
            :meth:`notify_walked`'s. Given, it checks their writers itself (the intake
            does, on the descriptor it fingerprints through) and hands back those still
            written to (:meth:`still_writing`). Default: ``on_ready``, after ``writers``.

    Memory is one small record per file currently in flux, whatever the backlog.
    """

    def __init__(
        self,
        settle_seconds: float,
        on_ready: Callable[[Settled], object],
        stop: threading.Event,
        on_gone: Callable[[Path], None] | None = None,
        writers: Callable[[list[Path]], set[Path]] = writers_among,
        on_walked: Callable[[Sequence[tuple[str | Path, os.stat_result]]], object] | None = None,
    ) -> None:
        self.settle_seconds = settle_seconds
        self._on_walked: Callable[[Any], object] = on_walked or on_ready
        self._walked_writers_checked = on_walked is not None
        self._writers = writers
        self._on_ready = on_ready
        self._on_gone = on_gone
        self._stop = stop
        self._cond = threading.Condition()
        self._pending: dict[Path, _Pending] = {}
        self._heap: list[tuple[float, int, Path]] = []
        self._seq = itertools.count()

    def notify(self, path: Path, changed_at: float | None = None) -> None:
        """Something happened to ``path``: (re)start its settle time. Never blocks on I/O.

        Args:
            path: the file.
            changed_at: when it last changed (epoch seconds, e.g. ``st_ctime`` seen by
                a folder walk); ``None`` means now (a filesystem event).
        """
        self.notify_many([(path, changed_at)])

    def notify_many(self, items: Iterable[tuple[Path, float | None]], *, walked: bool = False) -> None:
        """:meth:`notify` for several files under one lock and one wake-up. ``walked``: a
        folder walk found them (an event for one later makes it an event's file)."""
        now = time.monotonic()
        wall = time.time()
        added = False
        with self._cond:
            for path, changed_at in items:
                # A change time in the future (a clock set back) counts as now.
                last = now if changed_at is None else now - max(0.0, wall - changed_at)
                entry = self._pending.get(path)
                if entry is not None:
                    if not entry.done:  # a done file's own late events: its looks still catch a change
                        entry.last_change = max(entry.last_change, last)
                    entry.walked = entry.walked and walked
                    continue
                self._pending[path] = _Pending(
                    last_change=last, due=now, by_ctime=changed_at is not None, walked=walked
                )
                heapq.heappush(self._heap, (now, next(self._seq), path))
                added = True
            if added:
                self._cond.notify()

    def notify_walked(self, items: Sequence[tuple[str | Path, os.stat_result]], *, trust_ctime: bool) -> object:
        """Files a walk found (a name as text or a :class:`Path`: a walk gives text, no
        :class:`Path` per file), with their ``lstat``. One whose ctime is a settle time old,
        and which no event has put in flux, has settled already: it is handed over at once
        from the caller's thread (no second look, no hop to this thread; BENCHMARKS.md,
        catch-up scan) to ``on_walked``, whose answer is returned (``None`` when none was
        handed over). The rest wait like :meth:`notify_many`, and go to ``on_walked`` once
        settled unless an event touched them meanwhile. ``trust_ctime``: the ctimes come
        from this host's clock.
        """
        wall = time.time()
        settled: list[tuple[str | Path, os.stat_result]] = []
        waiting: list[tuple[Path, float | None]] = []
        with self._cond:
            # The names in flux as text (usually none, or the few files workers are changing): no Path per file to look.
            pending = {os.fspath(path) for path in self._pending} if self._pending else ()
            for path, st in items:
                if trust_ctime and wall - st.st_ctime >= self.settle_seconds and not (pending and os.fspath(path) in pending):
                    settled.append((path, st))
                else:
                    waiting.append((Path(path), st.st_ctime if trust_ctime else None))
        if waiting:
            self.notify_many(waiting, walked=True)
        if not settled:
            return None
        if self._walked_writers_checked:  # on_walked takes text as well
            return self._on_walked(settled) if not self._stop.is_set() else None
        return self._hand_over([(Path(path), st) for path, st in settled], walked=True)

    def notify_later(self, paths: Iterable[Path], delay_seconds: float) -> None:
        """Hand ``paths`` over again after ``delay_seconds`` (settled files the database
        could not take: :class:`vpod.watch.intake.Intake` backs off). Each is looked at
        then, and handed over once two looks agree; an event meanwhile restarts its
        settle time as usual, and a path already waiting keeps its own time."""
        now = time.monotonic()
        due = now + delay_seconds
        with self._cond:
            for path in paths:
                if path in self._pending:
                    continue
                # Quiet since a settle time before it is due: settled then, once a look confirms it.
                self._pending[path] = _Pending(last_change=due - self.settle_seconds, due=due)
                heapq.heappush(self._heap, (due, next(self._seq), path))
            self._cond.notify()

    def notify_done(self, paths: Iterable[Path]) -> None:
        """Their writer says these files are complete (a Sonarr/Radarr ``Download``
        webhook): each is looked at now, without the settle time. It is handed over once
        two looks a moment apart find the same size and mtime and no process has it open
        for writing (:mod:`vpod.watch.writers`); a file still written waits a settle
        time more, and a change the looks see restarts its settle time, as for any file.
        Events about it (the import's own, delivered late) no longer delay it; its
        looks still catch a change."""
        now = time.monotonic()
        with self._cond:
            for path in paths:
                entry = self._pending.get(path)
                if entry is None:
                    entry = self._pending[path] = _Pending(last_change=now - self.settle_seconds, due=now)
                entry.last_change = min(entry.last_change, now - self.settle_seconds)
                entry.due, entry.walked, entry.done = now, False, True
                entry.obs, entry.obs_time = None, 0.0  # looks from before the writer finished say nothing now
                heapq.heappush(self._heap, (now, next(self._seq), path))
            self._cond.notify()

    def forget(self, path: Path) -> None:
        """``path`` was deleted or moved away: stop tracking it (and anything below it)."""
        with self._cond:
            self._pending.pop(path, None)
            prefix = str(path) + os.sep
            for other in [p for p in self._pending if str(p).startswith(prefix)]:
                del self._pending[other]

    def in_flux(self, folder: str) -> bool:
        """Whether a file directly in ``folder`` (text) is waiting to settle (an event,
        a walk, a file handed back): a walk then takes that folder's files one by one
        (:meth:`notify_walked`) instead of queueing them in bulk."""
        with self._cond:
            if not self._pending:
                return False
            folder = folder.rstrip(os.sep) or os.sep
            return any(os.path.dirname(os.fspath(path)) == folder for path in self._pending)

    def pending_count(self) -> int:
        """How many files are waiting to settle."""
        with self._cond:
            return len(self._pending)

    def wake(self) -> None:
        """Wake the thread (used at shutdown after setting ``stop``)."""
        with self._cond:
            self._cond.notify_all()

    def run(self) -> None:
        """Thread body: check files as they come due until ``stop`` is set."""
        while not self._stop.is_set():
            checked = [item for item in map(self._check, self._next_due()) if item is not None]
            for walked in (False, True):
                settled = [(path, st) for path, st, by_walk in checked if by_walk is walked]
                if settled:
                    self._hand_over(settled, walked=walked)

    def _hand_over(self, settled: Settled, *, walked: bool = False) -> object:
        """Give settled files to ``on_ready`` (``on_walked`` for a walk's), except those a
        process still writes; returns the callback's answer (``None``: not called)."""
        if walked and self._walked_writers_checked:
            return self._on_walked(settled) if not self._stop.is_set() else None
        busy = self._writers([path for path, _ in settled])
        for path in busy:
            self._still_writing(path, walked)
        ready = [(path, st) for path, st in settled if path not in busy] if busy else settled
        if ready and not self._stop.is_set():
            return (self._on_walked if walked else self._on_ready)(ready)
        return None

    def still_writing(self, paths: Iterable[Path]) -> None:
        """Settled files a walk found that a process still has open for writing (found
        by ``on_walked``): each waits a settle time more, then is looked at again."""
        for path in paths:
            self._still_writing(path, True)

    def _still_writing(self, path: Path, walked: bool) -> None:
        now = time.monotonic()
        with self._cond:
            if path in self._pending:
                return  # a new event arrived meanwhile and re-added it
            entry = _Pending(last_change=now, due=now + self.settle_seconds, walked=walked)
            self._pending[path] = entry
            heapq.heappush(self._heap, (entry.due, next(self._seq), path))
            self._cond.notify()  # called from a walk's thread too (still_writing): the thread may sleep unbounded

    def _next_due(self) -> list[Path]:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    ready: list[Path] = []
                    while self._heap and self._heap[0][0] <= now and len(ready) < MAX_BATCH:
                        _, _, path = heapq.heappop(self._heap)
                        if path in self._pending:
                            ready.append(path)
                    return ready
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)
            return []

    def _check(self, path: Path) -> tuple[Path, os.stat_result, bool] | None:
        """Look at one due file; returns it with its stat, and whether a walk found it
        (:attr:`_Pending.walked`), when it has settled."""
        try:
            st = os.lstat(path)
        except OSError:  # gone, or its folder became unreadable: nothing to wait for
            with self._cond:
                gone = self._pending.pop(path, None) is not None
            if gone and self._on_gone:
                self._on_gone(path)
            return None
        now = time.monotonic()
        obs = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)
        with self._cond:
            entry = self._pending.get(path)
            if entry is None:
                return None
            settled = False
            if obs != entry.obs:
                # A change no event explained happened just now; one an event
                # explained happened at the event's time.
                if entry.obs is not None and entry.last_change <= entry.obs_time:
                    entry.last_change = now
                # A first look whose own ctime is a settle time old is an observation
                # taken after the last change: no second look needed.
                settled = (
                    entry.obs is None and entry.by_ctime and time.time() - st.st_ctime >= self.settle_seconds
                )
                entry.obs, entry.obs_time = obs, now
            elif entry.obs_time >= entry.last_change:
                settled = True
            else:
                entry.obs_time = now  # unchanged, and now observed after the last event
            ready_at = entry.last_change + self.settle_seconds
            if not (settled and now >= ready_at):
                entry.due = max(ready_at, now + 0.001)
                heapq.heappush(self._heap, (entry.due, next(self._seq), path))
                return None
            del self._pending[path]
        return path, st, entry.walked
