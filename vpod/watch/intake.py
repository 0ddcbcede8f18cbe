"""Intake: a stable file becomes a durable job (or is recognized as already handled)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import structlog

from vpod.db.store import EnqueueEntry, EnqueueOutcome, Store, StoreBusy, StoreError
from vpod.fingerprint import StatKey, fingerprint_path
from vpod.outcomes import Reason
from vpod.results import display_path

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
    ) -> None:
        self.store = store
        self.unverified = unverified
        self.refusal = refusal
        self.roots = roots
        self.policy_digest = policy_digest
        self.follow_symlinks = follow_symlinks
        self.on_queued = on_queued
        self.retry = retry
        self.backoff = WriteBackoff(clock)
        self._backoff_lock = threading.Lock()  # the stabilizer's and the scanner's threads both hand files in
        self.log = structlog.get_logger("vpod")

    def file_ready(self, path: Path, st: os.stat_result) -> EnqueueOutcome | None:
        """Handle one file the stabilizer found stable. Returns what the Store did."""
        return self.files_ready([(path, st)]).get(path)

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

        Log events: ``file_queued`` (info); ``file_not_queued`` with ``outcome``: at info
        level for ``same_content_done`` (a new path whose content vpod already handled
        elsewhere under the policy that would judge it here: the user dropped it and
        deserves an answer), at
        debug level for the rest (``unchanged``: vpod's own rewrite, ``touch``, a rescan;
        ``already_queued``; ``failed_unchanged``), which happen routinely.
        """
        roots = self.roots()
        entries: list[EnqueueEntry] = []
        paths: list[Path] = []
        for path, st in batch:
            if self.refusal is not None and self.refusal(path) is not None:
                self.log.debug("file_not_queued", path=display_path(path), outcome=Reason.CLAIMED_ELSEWHERE.value)
                continue
            if self.unverified(path) is not None:
                self.log.debug("file_not_queued", path=display_path(path), outcome="mount_unverified")
                continue
            entry = self._entry(path, st, roots)
            if entry is not None:
                entries.append(entry)
                paths.append(path)
        if not entries:
            return {}
        with self._backoff_lock:
            wait = self.backoff.waiting()
        if wait > 0:
            self.retry(paths, wait)  # the database failed moments ago: join the files already waiting
            return {}
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
            self.retry(paths, delay)
            return {}
        with self._backoff_lock:
            episode = self.backoff.succeeded()
        if episode is not None:
            self.log.info(
                "queue_write_recovered", files=len(paths), failed_tries=episode[0],
                failed_for_seconds=round(episode[1], 3),
            )
        queued = False
        log = self.log.bind()  # one logger per batch, not one per line (a scan logs 100,000)
        for path, outcome in zip(paths, outcomes):
            if outcome is EnqueueOutcome.QUEUED:
                log.info("file_queued", path=display_path(path))
                queued = True
            elif outcome is EnqueueOutcome.SAME_CONTENT_DONE:
                log.info(
                    "file_not_queued",
                    path=display_path(path),
                    outcome=outcome.value,
                    hint="same content as a file vpod already handled under the current policy;"
                    " `vpod process --force PATH` forces a new look",
                )
            else:
                log.debug("file_not_queued", path=display_path(path), outcome=outcome.value)
        if queued:
            self.on_queued()
        return dict(zip(paths, outcomes))

    def _entry(self, path: Path, st: os.stat_result, roots: tuple[Path, ...]) -> EnqueueEntry | None:
        """What the Store needs to queue ``path``, or ``None`` (outside the roots, or gone)."""
        root = root_of(path, roots)
        if root is None:
            return None
        relpath = os.fsencode(os.fspath(path)[len(os.fspath(root)) :].lstrip(os.sep))  # relative_to, by string
        try:
            if stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and self.follow_symlinks and path.exists()):
                fingerprint, key = fingerprint_path(path)
            else:
                fingerprint, key = f"{_kind(st.st_mode)}:{st.st_size}:{st.st_mtime_ns}", StatKey.of(st)
        except FileNotFoundError:
            return None  # gone again; its deletion event says so
        except OSError as exc:
            # Unreadable (permissions): queue anyway so the failure is recorded with its reason.
            fingerprint, key = f"unreadable:{st.st_size}:{st.st_mtime_ns}:{exc.errno}", StatKey.of(st)
        return EnqueueEntry(root, relpath, fingerprint, key, self.policy_digest(root, path))


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "special"
