"""Intake: a stable file becomes a durable job (or is recognized as already handled)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import structlog

from vpod.db.store import EnqueueEntry, EnqueueOutcome, Store, StoreBusy, StoreError, WalkedFolder
from vpod.fingerprint import StatKey, fingerprint_path, unread
from vpod.outcomes import Reason
from vpod.results import display_path
from vpod.watch import walker
from vpod.watch.walk_process import WalkedStat, walked_name
from vpod.watch.write_behind import WriteBehind
from vpod.watch.writers import lease_says, open_for_writing

Named = str | Path
"""A file's name as the intake gets it: a folder walk hands over text (no :class:`Path`
per file; BENCHMARKS.md, catch-up scan), events and the stabilizer :class:`Path`."""

WRITE_RETRY_BASE_SECONDS = 2.0
WRITE_RETRY_MAX_SECONDS = 300.0


class WriteBackoff:
    """When to try the database again after it refused a batch of files.

    The first retry waits :data:`WRITE_RETRY_BASE_SECONDS`; each further failure in a
    row doubles the wait, up to :data:`WRITE_RETRY_MAX_SECONDS`. A success ends the
    episode. Times are ``clock()`` seconds (monotonic). Not thread-safe on its own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures = 0  # in a row
        self.since: float | None = None  # clock time of the first failure of the episode
        self.next_try = 0.0  # clock time before which the database is not asked

    def failed(self, max_seconds: float = WRITE_RETRY_MAX_SECONDS) -> float:
        """Record a failure; returns the seconds to wait before the next try (doubling,
        at most ``max_seconds``)."""
        now = self.clock()
        if self.since is None:
            self.since = now
        delay = min(WRITE_RETRY_BASE_SECONDS * 2.0**self.failures, max_seconds)
        self.failures += 1
        self.next_try = now + delay
        return delay

    def waiting(self) -> float:
        """Seconds left before the next try (0 when the database may be asked now)."""
        return max(0.0, self.next_try - self.clock()) if self.failures else 0.0

    def succeeded(self) -> tuple[int, float] | None:
        """Record a success; returns (failures, seconds since the first) when it ends an
        episode of failures, else ``None``."""
        if not self.failures or self.since is None:
            return None
        episode = (self.failures, self.clock() - self.since)
        self.failures, self.since, self.next_try = 0, None, 0.0
        return episode


def root_of(path: Path, roots: tuple[Path, ...]) -> Path | None:
    """The innermost root that contains ``path``, or ``None``."""
    text = os.fspath(path)
    best = None
    for root in roots:
        prefix = os.fspath(root)
        inside = text == prefix or text.startswith(prefix.rstrip(os.sep) + os.sep)
        if inside and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return best


class Intake:
    """Fingerprints stable files and enqueues them in the Store.

    Args:
        store: the durable queue.
        roots: returns the current watch roots (they change on reload).
        policy_digest: ``policy_digest(root, path)`` is the
            :attr:`~vpod.policy.policy.Policy.digest` of the policy that would judge the
            file now (:meth:`vpod.policy.selection.PolicySelector.digest`; it changes on
            reload), ``None`` when none can be chosen (a bad folder policy file).
        follow_symlinks: fingerprint symlink targets instead of the link itself.
        on_queued: called after jobs were queued (wakes the feeder), once per batch.
        retry: called with the paths the database could not take (locked, full) and
            the seconds to wait before they come back (:class:`WriteBackoff`).
        clock: monotonic seconds (tests pass a fake one).
        refusal: says why a file must be left alone (it lies below a folder another vpod
            claimed, :meth:`vpod.watch.ownership.LibraryClaims.refusal`): such a file is
            not queued (``file_not_queued`` with ``outcome = "claimed_elsewhere"``, debug).
        unverified: says why a file's library folder is not proven on this node
            (:meth:`vpod.watch.library_id.LibraryMounts.refusal`): such a file is not
            queued (``file_not_queued`` with ``outcome = "mount_unverified"``, debug); the
            folder is walked once it is verified.
        still_writing: where :meth:`files_walked` hands the files some process still has
            open for writing (:meth:`vpod.watch.stabilizer.Stabilizer.still_writing`);
            given, it asks the kernel itself, on the descriptor the fingerprint is read
            through (one open per file instead of two; BENCHMARKS.md, catch-up scan).
            ``None``: the caller checked (the stabilizer does for :meth:`files_ready`).
        by_name: ``by_name(root)`` says whether a file's own name can choose its policy
            under ``root`` (:meth:`vpod.policy.selection.PolicySelector.by_name`); where
            it cannot, ``policy_digest`` is asked once per folder of a batch. Default:
            once per file.
    """

    def __init__(
        self,
        store: Store,
        roots: Callable[[], tuple[Path, ...]],
        *,
        policy_digest: Callable[[Path, Path], str | None],
        follow_symlinks: bool,
        on_queued: Callable[[], None],
        retry: Callable[[Sequence[Path], float], None],
        clock: Callable[[], float] = time.monotonic,
        refusal: Callable[[Path], str | None] | None = None,
        unverified: Callable[[Path], str | None] = lambda path: None,
        still_writing: Callable[[Sequence[Path]], None] | None = None,
        by_name: Callable[[Path], bool] = lambda root: True,
    ) -> None:
        self.store = store
        self.by_name = by_name
        self.still_writing = still_writing
        self.unverified = unverified
        self.refusal = refusal
        self.roots = roots
        self.policy_digest = policy_digest
        self.follow_symlinks = follow_symlinks
        self.on_queued = on_queued
        self.retry = retry
        self.backoff = WriteBackoff(clock)
        self._backoff_lock = threading.Lock()  # the stabilizer's and the scanner's threads both hand files in
        self._walk = threading.local()  # .behind: a walk's WriteBehind and counter, on the walk's thread (behind())
        self.log = structlog.get_logger("vpod")

    def file_ready(self, path: Path, st: os.stat_result) -> EnqueueOutcome | None:
        """Handle one file the stabilizer found stable. Returns what the Store did."""
        return self.files_ready([(path, st)]).get(path)

    def files_walked(self, batch: Sequence[tuple[Named, os.stat_result]]) -> dict[Any, EnqueueOutcome]:
        """:meth:`files_ready` for files a folder walk found (a catch-up scan, a folder
        moved in, a rescan): the same, except that ``file_queued`` is logged at debug
        level; the walk reports them at info level in ``scan_progress`` and
        ``scan_completed`` (a catch-up queues a whole library at once). A walk hands its
        files over as text (``str``), the stabilizer as :class:`Path`; the answer is keyed
        by what was given. With ``still_writing`` given, a regular file is opened for its
        writer check only and queued unread where its path has no row
        (:meth:`_entry_unless_written`; its worker reads it). Within :meth:`behind` the
        database write happens on the walk's writer thread and the answer is ``{}``."""
        return self._take(batch, walked=True)

    def files_ready(self, batch: Sequence[tuple[Path, os.stat_result]]) -> dict[Path, EnqueueOutcome]:
        """Handle files the stabilizer found stable: fingerprint each, then enqueue them
        all in one database transaction. Returns what the Store did with each path
        (paths outside the roots, gone, or refused by a busy database are absent).

        A path that is not a regular file (a FIFO or folder named ``x.mkv``) and a symlink
        are queued too, so the pipeline records why it skips them; their content is
        never read here. When the database stays locked (``queue_busy``) or cannot be
        written (``queue_write_failed``: a full disk), every path of the batch is handed
        to ``retry`` with a wait that doubles with each failure in a row (2 s up to
        5 min, :class:`WriteBackoff`): one warning per failed try, naming how many files
        wait; files that settle meanwhile join the wait without asking the database or
        logging. The first success after failures logs ``queue_write_recovered``.

        Log events: ``file_queued`` (info; debug for :meth:`files_walked`); ``file_not_queued`` with ``outcome``: at info
        level for ``same_content_done`` (a new path whose content vpod already handled
        elsewhere under the policy that would judge it here: the user dropped it and
        deserves an answer), at
        debug level for the rest (``unchanged``: vpod's own rewrite, ``touch``, a rescan;
        ``already_queued``; ``failed_unchanged``), which happen routinely.
        """
        return self._take(batch, walked=False)

    def _take(self, batch: Sequence[tuple[Named, os.stat_result]], *, walked: bool) -> dict[Any, EnqueueOutcome]:
        roots = self.roots()
        entries: list[EnqueueEntry] = []
        paths: list[Named] = []
        sts: list[os.stat_result] = []  # each entry's lstat (a file not read is read from it on a second pass)
        # What depends on a file's folder alone is asked once per folder of the batch
        # (a walk hands over 1,000 files of a few folders): the refusals look at the
        # folders above a file only, its root is the innermost that holds its folder,
        # and its policy digest is its folder's unless its library has rules by name.
        folders: dict[str, _Folder] = {}
        check_writers = walked and self.still_writing is not None
        busy: list[Named] = []  # a process has it open for writing: back to the stabilizer
        unknown: list[tuple[Named, EnqueueEntry, os.stat_result]] = []  # no lease here: one /proc scan decides
        for path, st in batch:
            text = os.fspath(path)
            parent = text[: text.rfind(os.sep)]
            folder = folders.get(parent)
            if folder is None:
                folder = folders[parent] = self._folder_verdict(Path(path), roots)
            if folder.refused is not None:
                if folder.debug:
                    self.log.debug("file_not_queued", path=display_path(path), outcome=folder.refused)
                continue
            root = folder.root
            if root is None:
                continue  # outside the roots
            if folder.by_name:
                digest = self.policy_digest(root, Path(path))
            elif folder.digest is _UNASKED:
                digest = folder.digest = self.policy_digest(root, Path(path))
            else:
                digest = folder.digest
            writer: bool | None = False
            if check_writers:
                relpath = os.fsencode(text[folder.cut :])
                walked_st: Any = st  # a child walker's WalkedStat, or an os.stat_result
                if type(walked_st) is WalkedStat and walked_st.writer != walker.VERDICT_UNCHECKED:
                    entry, writer = self._entry_as_walked(text, walked_st, root, digest, relpath)
                else:
                    entry, writer = self._entry_unless_written(text, st, root, digest, relpath)
            else:
                entry = self._entry(text, st, root, digest)
            if writer:
                busy.append(path)
            elif entry is not None and writer is None:
                unknown.append((path, entry, st))
            elif entry is not None:
                entries.append(entry)
                paths.append(path)
                sts.append(st)
        if unknown:
            written = open_for_writing([Path(path) for path, _, _ in unknown])
            busy.extend(path for path, _, _ in unknown if Path(path) in written)
            for path, entry, st in unknown:
                if Path(path) not in written:
                    entries.append(entry)
                    paths.append(path)
                    sts.append(st)
        if busy and self.still_writing is not None:
            self.still_writing([Path(path) for path in busy])
        if not entries:
            return {}
        behind: _Behind | None = getattr(self._walk, "behind", None) if walked else None
        if behind is not None:
            behind[0].submit(lambda: behind[1](self._commit(paths, entries, sts, walked=True)))
            return {}
        return self._commit(paths, entries, sts, walked=walked)

    def folders_walked(
        self, root: Path, folders: Sequence[BulkFolder], leftover: Leftover, queued: Callable[[int], None]
    ) -> None:
        """Queue the files a walk of ``root`` found in new folders with no per-file work
        here (:meth:`Store.enqueue_walked_new`, where the store has it: ``bulk_walk``).

        Each of ``folders`` holds files the child walker vouched for (regular, quiet
        for the settle time, no writer: :mod:`vpod.watch.walker`) in a folder where no
        file is in flux (the caller checked). What depends on the folder is asked as
        :meth:`files_walked` asks it: a folder another vpod claimed, one not proven on
        this node, one whose innermost root is not ``root``, or whose library chooses
        policies by file name goes to ``leftover`` whole. The store queues a file only
        where its path has no row and no ``done`` result of its size is recorded under
        the folder's policy digest; the rest goes to ``leftover`` (the caller takes each
        through :meth:`files_walked`: the per-file rules), as does every file of a
        batch the database refused (the per-file path backs off, :class:`WriteBackoff`).

        ``leftover(folder, rows)`` gets a folder's path and its rows as the walker
        wrote them (:class:`~vpod.db.store.WalkedFolder`);
        ``queued(n)`` the number of new jobs of each batch. Within :meth:`behind` the
        database write, the ``file_queued`` lines (debug) and both callbacks happen on
        the walk's writer thread, else on the calling one.
        """
        roots = self.roots()
        by_digest: dict[str | None, list[BulkFolder]] = {}
        for folder in folders:
            named = Path(folder.path, folder.first)
            verdict = self._folder_verdict(named, roots)
            if verdict.refused is not None or verdict.root != root or verdict.by_name:
                leftover(folder.path, json.loads(folder.walked.rows))
                continue
            by_digest.setdefault(self.policy_digest(root, named), []).append(folder)
        if not by_digest:
            return
        behind: _Behind | None = getattr(self._walk, "behind", None)
        job = functools.partial(self._commit_folders, root, by_digest, leftover, queued)
        if behind is not None:
            behind[0].submit(job)
        else:
            job()

    def _commit_folders(
        self, root: Path, by_digest: dict[str | None, list[BulkFolder]], leftover: Leftover,
        queued: Callable[[int], None],
    ) -> None:
        """The database part of :meth:`folders_walked`."""
        log = self.log.bind()  # the configured logger (a lazy proxy cannot say whether debug is on)
        debug = _debug_enabled(log)
        new = 0
        for digest, folders in by_digest.items():
            with self._backoff_lock:
                wait = self.backoff.waiting()
            try:
                if wait > 0:  # the database failed moments ago: the per-file path joins the files waiting
                    raise StoreError("the database is backing off")
                left = self.store.enqueue_walked_new(root, [folder.walked for folder in folders], digest)
            except StoreError:
                for folder in folders:  # the per-file path asks again, logs and backs off
                    leftover(folder.path, json.loads(folder.walked.rows))
                continue
            with self._backoff_lock:
                episode = self.backoff.succeeded()
            if episode is not None:
                log.info(
                    "queue_write_recovered", files=sum(f.walked.files for f in folders), failed_tries=episode[0],
                    failed_for_seconds=round(episode[1], 3),
                )
            for folder, names in zip(folders, left):
                new += folder.walked.files - len(names)
                if not names and not debug:
                    continue
                rows = json.loads(folder.walked.rows)
                if names:
                    kept = set(names)
                    leftover(folder.path, [row for row in rows if walked_name(row) in kept])
                    rows = [row for row in rows if walked_name(row) not in kept]
                base = folder.path.rstrip(os.sep) + os.sep
                for row in rows if debug else ():
                    log.debug("file_queued", path=display_path(base + walked_name(row)))
        if new:
            queued(new)
            self.on_queued()

    @contextlib.contextmanager
    def behind(self, writer: WriteBehind, counted: Callable[[dict[Any, EnqueueOutcome]], None]) -> Iterator[None]:
        """For the block, :meth:`files_walked` called on this thread (a folder walk's)
        writes to the database on ``writer``'s thread while the walk goes on, and returns
        ``{}`` at once; ``counted`` gets what the Store did with each batch, from that
        thread. Files are still read (leases) and filtered on the calling thread, and
        ``file_queued``/``file_not_queued`` are logged as the batch is written. Other
        threads (the stabilizer's, for walked files that had to settle) write as before."""
        self._walk.behind = (writer, counted)
        try:
            yield
        finally:
            self._walk.behind = None

    def _commit(
        self, paths: list[Named], entries: list[EnqueueEntry], sts: list[os.stat_result], *, walked: bool
    ) -> dict[Any, EnqueueOutcome]:
        """Enqueue the files :meth:`_take` prepared (``paths``, their ``entries`` and
        ``lstat``), read those the Store asks for, and log each outcome."""
        outcomes = self._enqueue(paths, entries)
        if outcomes is None:
            return {}
        to_read = [i for i, outcome in enumerate(outcomes) if outcome is EnqueueOutcome.UNREAD]
        if to_read:
            # A walk's file not read (its content is read by the worker) whose path has a
            # row: the enqueue rules of a known path need its content.
            again: list[tuple[int, EnqueueEntry]] = []
            for i in to_read:
                entry = self._entry(os.fspath(paths[i]), sts[i], entries[i].root, entries[i].policy_digest)
                if entry is not None:  # else gone again: its deletion event says so
                    again.append((i, entry))
            answers = self._enqueue([paths[i] for i, _ in again], [entry for _, entry in again]) if again else None
            for (i, _), outcome in zip(again, answers or ()):
                outcomes[i] = outcome
            kept = [i for i in range(len(paths)) if outcomes[i] is not EnqueueOutcome.UNREAD]
            paths, outcomes = [paths[i] for i in kept], [outcomes[i] for i in kept]
        queued = False
        log = self.log.bind()  # one logger per batch, not one per line (a scan logs 100,000)
        # A walk's files: file_queued is a debug line, whose text is not even made unless asked for.
        debug = _debug_enabled(log)
        queued_line = log.info if not walked else log.debug if debug else None
        for path, outcome in zip(paths, outcomes):
            if outcome is EnqueueOutcome.QUEUED:
                if queued_line is not None:
                    queued_line("file_queued", path=display_path(path))
                queued = True
            elif outcome is EnqueueOutcome.SAME_CONTENT_DONE:
                log.info(
                    "file_not_queued",
                    path=display_path(path),
                    outcome=outcome.value,
                    hint="same content as a file vpod already handled under the current policy;"
                    " `vpod process --force PATH` forces a new look",
                )
            elif debug:  # unchanged, already queued: routine (a restart scan of files read again)
                log.debug("file_not_queued", path=display_path(path), outcome=outcome.value)
        if queued:
            self.on_queued()
        return dict(zip(paths, outcomes))

    def _enqueue(self, paths: list[Named], entries: list[EnqueueEntry]) -> list[EnqueueOutcome] | None:
        """:meth:`Store.enqueue_many` of ``entries`` (the files ``paths``), or ``None`` when
        the database refused them: they were handed to ``retry`` (:class:`WriteBackoff`)."""
        with self._backoff_lock:
            wait = self.backoff.waiting()
        if wait > 0:
            self.retry([Path(path) for path in paths], wait)  # the database failed moments ago: join the files already waiting
            return None
        try:
            outcomes = self.store.enqueue_many(entries)
        except StoreError as exc:
            # Locked by another process, or its disk is full: try again later, less often each time.
            with self._backoff_lock:
                delay = self.backoff.failed()
                attempt = self.backoff.failures
            self.log.warning(
                "queue_busy" if isinstance(exc, StoreBusy) else "queue_write_failed",
                path=display_path(paths[0]),
                files=len(paths),
                error=str(exc),
                attempt=attempt,
                retry_in_seconds=delay,
            )
            self.retry([Path(path) for path in paths], delay)
            return None
        with self._backoff_lock:
            episode = self.backoff.succeeded()
        if episode is not None:
            self.log.info(
                "queue_write_recovered", files=len(paths), failed_tries=episode[0],
                failed_for_seconds=round(episode[1], 3),
            )
        return outcomes

    def _folder_verdict(self, path: Path, roots: tuple[Path, ...]) -> "_Folder":
        """What holds for every file in the folder of ``path``: the ``file_not_queued``
        outcome that keeps its files out (``claimed_elsewhere``, ``mount_unverified``) or
        ``None``, its root, and whether its files' policy digests are asked per file."""
        if self.refusal is not None and self.refusal(path) is not None:
            return _Folder(Reason.CLAIMED_ELSEWHERE.value, None, debug=_debug_enabled(self.log))
        if self.unverified(path) is not None:
            return _Folder("mount_unverified", None, debug=_debug_enabled(self.log))
        root = root_of(path, roots)
        return _Folder(None, root, by_name=root is None or self.by_name(root))

    def _entry(self, path: str, st: os.stat_result, root: Path, digest: str | None) -> EnqueueEntry | None:
        """What the Store needs to queue ``path`` (under ``root``, judged by the policy
        ``digest``), or ``None`` (gone)."""
        relpath = _relpath(path, root)
        try:
            if stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and self.follow_symlinks and os.path.exists(path)):
                fingerprint, key = fingerprint_path(path)
            else:
                fingerprint, key = f"{_kind(st.st_mode)}:{st.st_size}:{st.st_mtime_ns}", StatKey.of(st)
        except FileNotFoundError:
            return None  # gone again; its deletion event says so
        except OSError as exc:
            # Unreadable (permissions): queue anyway so the failure is recorded with its reason.
            fingerprint, key = f"unreadable:{st.st_size}:{st.st_mtime_ns}:{exc.errno}", StatKey.of(st)
        return EnqueueEntry(root, relpath, fingerprint, key, digest)

    def _entry_unless_written(
        self, path: str, st: os.stat_result, root: Path, digest: str | None, relpath: bytes
    ) -> tuple[EnqueueEntry | None, bool | None]:
        """What the Store needs to queue a file a walk found, and whether some process has
        it open for writing (``None``: the kernel cannot say here,
        :func:`vpod.watch.writers.lease_says`). A regular file is opened only for the lease
        and queued unread (:func:`vpod.fingerprint.unread`, its stat the walk's ``lstat``):
        the worker reads its content before it probes it, and the Store answers ``UNREAD``
        for a path it knows, which :meth:`_take` then reads. Anything else, or a file that
        cannot be opened so, is read as :meth:`_entry` does and its writers are unknown.
        ``relpath``: ``path`` below ``root``, as the Store's bytes."""
        if stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                return None, False  # gone again; its deletion event says so
            except OSError:
                pass  # unreadable, or no longer a regular file: as before
            else:
                try:
                    writer = lease_says(fd)
                except OSError:
                    writer = None
                finally:
                    os.close(fd)
                if writer:
                    return None, True
                return EnqueueEntry(root, relpath, unread(st.st_size), StatKey.of(st), digest), writer
        return self._entry(path, st, root, digest), None


    def _entry_as_walked(
        self, path: str, st: WalkedStat, root: Path, digest: str | None, relpath: bytes
    ) -> tuple[EnqueueEntry | None, bool | None]:
        """:meth:`_entry_unless_written` for a file whose writers the child walker asked
        already (``st.writer``, :mod:`vpod.watch.walker`): the same answers, no second open."""
        verdict = st.writer
        if verdict == walker.VERDICT_BUSY:
            return None, True
        if verdict == walker.VERDICT_GONE:
            return None, False
        if verdict == walker.VERDICT_FREE or verdict == walker.VERDICT_NO_LEASE:
            entry = EnqueueEntry(root, relpath, unread(st.st_size), StatKey.of(st), digest)  # type: ignore[arg-type]
            return entry, False if verdict == walker.VERDICT_FREE else None
        return self._entry(path, st, root, digest), None  # type: ignore[arg-type]


_Behind = tuple[WriteBehind, Callable[[dict[Any, EnqueueOutcome]], None]]


class BulkFolder(NamedTuple):
    """A folder of new files for :meth:`Intake.folders_walked`: its ``path`` (text),
    the ``first`` file's name (what its policy digest is asked with), and the
    :class:`~vpod.db.store.WalkedFolder` the store takes."""

    path: str
    first: str
    walked: WalkedFolder


Leftover = Callable[[str, list[list[Any]]], None]
"""``leftover(folder, rows)``: files of a walked folder for the per-file rules
(:meth:`Intake.folders_walked`)."""

_UNASKED = "\0unasked"  # no digest asked yet (None is an answer: no policy can be chosen)


class _Folder:
    """What :meth:`Intake._take` knows of one folder of a batch: ``refused`` (the
    ``file_not_queued`` outcome of all its files, or ``None``), ``root``, whether its
    files' policy digests depend on their names (``by_name``), and the folder's digest
    once asked."""

    __slots__ = ("refused", "root", "by_name", "digest", "debug", "cut")

    def __init__(self, refused: str | None, root: Path | None, *, by_name: bool = True, debug: bool = False) -> None:
        self.debug = debug  # refused: whether each file's file_not_queued (debug) is written
        self.refused = refused
        self.root = root
        # Where a file's path below ``root`` starts in its text (no Path or fspath per file).
        self.cut = len(os.fspath(root).rstrip(os.sep)) + 1 if root is not None else 0
        self.by_name = by_name
        self.digest: str | None = _UNASKED


def _relpath(path: str, root: Path) -> bytes:
    """``path`` relative to ``root`` (which holds it), as the Store's bytes: by string, no
    :class:`Path` per file."""
    return os.fsencode(path[len(os.fspath(root)) :].lstrip(os.sep))


def _debug_enabled(log: object) -> bool:
    """Whether ``log`` writes debug lines (structlog's filtering loggers say; any other does)."""
    enabled = getattr(log, "is_enabled_for", None)
    return True if enabled is None else bool(enabled(logging.DEBUG))


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "special"
