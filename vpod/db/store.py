"""The Store: all queue and result persistence behind one interface.

Workers, the watcher and the CLI talk to a :class:`Store`, never to SQL, and catch
only the backend-neutral :class:`StoreBusy` and :class:`StoreError` exported here
(defined under vpod's error root in :mod:`vpod.errors`, so the exit-status table can
name them without importing a backend). A
store is opened by :func:`vpod.db.factory.open_store` from ``[database]``; the first
backend is SQLite (:mod:`vpod.db.sqlite_store`), and a PostgreSQL one for several
nodes on one library can follow without touching its callers: it is proven by
passing the contract suite (tests/unit/test_store_contract.py).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, ContextManager, Iterable, NamedTuple, Protocol, Sequence

from vpod.db.owners import OwnerRecord
from vpod.db.records import (
    AttemptRecord, BatchRecord, Conforming, FileListing, FileRecord, HourStats, Library, LibraryChange, NodeRecord,
    QueueReport, RetryOutcome,
)
from vpod.errors import LeaseLost, StoreBusy, StoreError
from vpod.fingerprint import StatKey
from vpod.media.model import Track
from vpod.outcomes import Reason
from vpod.results import BatchResult, FileProcessingResult

# Listed so that importing StoreBusy/StoreError from here is an explicit re-export (mypy --strict).
__all__ = [
    "EnqueueEntry", "EnqueueOutcome", "Job", "LeaseLost", "Outcome", "Store", "StoreBusy", "StoreError",
]

LEASE_SECONDS = 60.0
"""Default lease of a claimed job (seconds, ``[database] lease_seconds``)."""


class EnqueueOutcome(enum.Enum):
    """What :meth:`Store.enqueue` did with a stable file."""

    QUEUED = "queued"  # new or changed content: a job now waits
    ALREADY_QUEUED = "already_queued"  # waiting or in progress already
    UNCHANGED = "unchanged"  # same content as vpod left (or found conforming) at this path
    SAME_CONTENT_DONE = "same_content_done"  # a new path, same content as vpod left elsewhere under this policy
    FAILED_UNCHANGED = "failed_unchanged"  # same content as a permanent failure or skip
    UNREAD = "unread"  # an entry without its content read (vpod.fingerprint.unread) names a file with a row: nothing written


class EnqueueEntry(NamedTuple):
    """A stable file to queue: its watch root, path below it (bytes), content
    fingerprint and stat key, and the :attr:`~vpod.policy.policy.Policy.digest` of the
    policy that would judge it now (``None``: the ``policy_digest`` given to
    :meth:`Store.enqueue_many`). A named tuple: a catch-up scan makes one per file
    (:class:`~vpod.fingerprint.StatKey` says why)."""

    root: Path
    relpath: bytes
    fingerprint: str
    stat: StatKey
    policy_digest: str | None = None


@dataclass(frozen=True)
class Job:
    """A queued file. ``relpath`` is relative to ``root``, as raw bytes."""

    id: int
    root: Path
    relpath: bytes
    fingerprint: str | None
    attempts: int
    pending_actions: tuple[str, ...] = ()
    """Actions an interrupted attempt was applying (their outcome is not recorded yet)."""
    library: str = ""
    """The name of the library ``root`` is the folder of (:mod:`vpod.libraries`)."""
    lease: str | None = None
    """The fencing token of this claim (32 hex digits), set by :meth:`Store.claim` and
    :meth:`Store.start`; ``None`` on a job not claimed yet. Writes about the job that
    name a token succeed only while the row still holds that token (compare-and-set)."""

    @property
    def path(self) -> Path:
        """Absolute path of the file."""
        return self.root / os.fsdecode(self.relpath)


@dataclass(frozen=True)
class Outcome:
    """Everything :meth:`Store.finish` records about a processed file.

    ``result_fingerprint`` and ``result_stat`` describe the file as vpod left it
    (``None`` when it failed or vanished); ``final_relpath`` is set when the file now
    lives under another name (container change to ``.mkv``); ``policy_digest``
    (:attr:`vpod.policy.policy.Policy.digest`) is the policy the file was judged under
    (``None``: unknown, the result then never vouches for a copy at another path);
    ``policy_name`` and ``policy_why`` say which policy that was and why it was chosen
    (:class:`vpod.policy.selection.Selection`; ``None``: not known, the file was not judged).

    A ``hardlinked`` skip (``[policy] hardlinks``) records what vpod left: the content
    after the header part it applied, or the content as it was. Such a row never vouches
    for a copy elsewhere (only ``done`` rows do), and its content counts as unchanged
    only under the policy digest it was judged by (:meth:`Store.enqueue`).
    """

    result: FileProcessingResult
    result_fingerprint: str | None = None
    result_stat: StatKey | None = None
    final_relpath: bytes | None = None
    tracks: Sequence[Track] = ()
    policy_digest: str | None = None
    policy_name: str | None = None
    policy_why: str | None = None


class WalkedFolder(NamedTuple):
    """One folder's files for :meth:`Store.enqueue_walked_new`: ``dir`` (the folder below
    the root, the Store's bytes; valid UTF-8), ``rows``, the JSON text of a list of
    ``[relpath, mode, inode, device, size, mtime_ns, ctime_ns, dir]`` (``relpath`` the
    file's UTF-8 path below the root, ``dir`` its folder's, as text; sizes in bytes,
    times in nanoseconds; :mod:`vpod.watch.walker`), and ``files``: how many."""

    dir: bytes
    rows: str
    files: int


class Store(Protocol):
    """Durable queue and results. Every method is thread-safe and commits before returning.

    Raises (every method):
        StoreBusy: another process held the lock beyond the busy timeout.
        StoreError: the store is unusable (never a driver's own exception).
    """

    @property
    def location(self) -> str:
        """Where the store lives, for people: a file path (SQLite) or a URL without
        its password."""

    def enqueue(
        self, root: Path, relpath: bytes, fingerprint: str, stat: StatKey, *, policy_digest: str | None = None
    ) -> EnqueueOutcome:
        """Queue a stable file unless the same content was already handled; content seen
        at another path counts only if it was judged under ``policy_digest`` (the policy
        in force for this path; ``None`` never matches); a file skipped as
        ``hardlinked`` counts as handled only under the policy digest it was judged by."""

    def enqueue_many(
        self, entries: Sequence[EnqueueEntry], *, policy_digest: str | None = None
    ) -> list[EnqueueOutcome]:
        """:meth:`enqueue` for several files in one transaction; outcomes in order. Each
        entry is judged under its own ``policy_digest``, else under this one.

        An entry whose content was not read (its fingerprint :func:`vpod.fingerprint.unread`:
        a folder walk's file) is queued only if its path has no row and no ``done``
        result of its size is recorded under its policy digest (an indexed look at sizes:
        most new files have none): a new path has no rule but "a result elsewhere vouches
        for this content", which the worker applies once it has read the file
        (:meth:`read_content`; for a result recorded meanwhile). Any other is ``UNREAD``:
        nothing is written, and the caller reads the file and asks again."""

    bulk_walk: bool
    """Whether :meth:`enqueue_walked_new` is implemented (SQLite). Where it is not
    (PostgreSQL), a walk takes every file through :meth:`enqueue_many`."""

    def enqueue_walked_new(
        self, root: Path, folders: Sequence[WalkedFolder], policy_digest: str | None
    ) -> list[list[str]]:
        """Queue, in one transaction, the files a walk found in folders under ``root`` as :meth:`enqueue_many` would queue entries with an
        :func:`~vpod.fingerprint.unread` fingerprint (a catch-up of new folders: no
        per-file work in Python; BENCHMARKS.md, catch-up scan): a file is written as
        ``queued`` only if its path has no row and no ``done`` result of its size is
        recorded under ``policy_digest``; any other is left as it is (a row of any state,
        this node's or another's). Returns, per folder in order, the names not queued:
        the caller takes each through :meth:`enqueue_many`'s rules.

        Raises:
            NotImplementedError: the backend has none (:attr:`bulk_walk` False).
        """

    def read_content(self, job: Job, fingerprint: str, stat: StatKey, policy_digest: str | None) -> bool:
        """The worker read ``job``'s content (it was queued :func:`~vpod.fingerprint.unread`);
        before any tool runs, the same-content rule of :meth:`enqueue` is applied to it.
        Returns True when a ``done`` file's result vouches for ``fingerprint`` under
        ``policy_digest`` (``None`` never matches): the row is then recorded ``done``
        (``same_content_done``, as :meth:`enqueue` records such a path), its claim ended,
        and no result row written. Else the row takes ``fingerprint`` and ``stat`` (so
        the history and an interrupted redo compare against real content) and False is
        returned.

        Raises:
            LeaseLost: ``job.lease`` is set and the row no longer holds it; nothing written.
        """

    def known_stats(self, root: Path, folder: bytes) -> dict[bytes, StatKey]:
        """Stat keys recorded for the files directly in ``folder`` (relative, bytes) of
        ``root`` that need no new look (done, waiting, in progress, or failed/skipped for
        good), ctime included (``None`` in a row an older vpod wrote: it proves nothing,
        :func:`vpod.unchanged.untouched`)."""

    def conforming_stats(self, root: Path, folder: bytes) -> dict[bytes, Conforming]:
        """For the files directly in ``folder`` (relative, bytes) of ``root`` that vpod
        left conforming (``done``, or skipped for good as ``not_smaller``: handled under
        that policy): the stat key recorded after its last change and the
        policy digest that judged them (:func:`vpod.unchanged.left_conforming`). Rows
        without a ctime or a digest (written by an older vpod) are left out."""

    def next_queued(self, limit: int, exclude: Iterable[int]) -> list[Job]:
        """Up to ``limit`` queued jobs due now, oldest first, skipping ids in ``exclude``."""

    def next_due_at(self) -> float | None:
        """When the earliest job waiting for a retry becomes due (epoch seconds), or
        ``None`` when none waits; jobs due now already are not counted."""

    def job_for_path(self, root: Path, relpath: bytes, fingerprint: str | None, stat: StatKey | None) -> Job | None:
        """Queue a file named explicitly (``vpod process``), whatever was recorded about it
        before: the row for (``root``, ``relpath``) becomes ``queued`` with fresh
        attempts. ``None`` when the row is ``processing`` (another worker or process has it)."""

    def abandon_dead_owners(self, kinds: Sequence[str] = ("process",)) -> list[Path]:
        """Mark rows left ``processing`` by an owner of one of ``kinds`` that is not alive
        (:meth:`owner_alive`) as ``failed`` (reason ``interrupted``, not permanent);
        returns their paths."""

    # -- owners: who has a file in progress (vpod.db.owners) -------------------------

    def register_owner(
        self, kind: str, *, heartbeat_seconds: float = ..., node: str | None = None,
        version: str | None = None, workers: int | None = None,
    ) -> OwnerRecord:
        """Record this process as an owner (``daemon`` or ``process``: host, pid and its
        start time, a new incarnation, a heartbeat; ``node``: the ``[node] name``, default
        the host name; ``version`` and ``workers`` for ``vpod status``); rows :meth:`claim`
        and :meth:`start` mark name it. A daemon's previous incarnations on the same node
        release their rows at once (queued again: a restarted node does not wait for
        its own old leases); the record's ``released`` counts them."""

    def heartbeat(self, **info: object) -> None:
        """Renew this process's owner heartbeat (every ``heartbeat_seconds``), recording
        this node's clock offset from the database clock (seconds) and ``info``
        (``workers``...) for :meth:`nodes`."""

    def end_owner(self) -> None:
        """This process's owner ends cleanly."""

    def owner_alive(self, owner_id: int) -> bool:
        """Whether owner ``owner_id`` is alive: not ended, heartbeat fresh and, on this
        host, its process still running (:func:`vpod.db.owners.is_alive`)."""

    # -- libraries: a file is (library, path below it) (vpod.libraries) --------------

    def bind_libraries(self, folders: dict[Path, str]) -> list[LibraryChange]:
        """Name this node's library folders (folder -> name): a known name moves to its
        folder, a known folder takes its new name; returns what changed."""

    def libraries(self) -> list[Library]:
        """Every library: name, folder on this node, number of files."""

    def start(self, job: Job, worker: str, batch_id: str, *, lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """Claim the named ``job`` (``vpod process``) for ``worker`` of this store's owner:
        ``processing``, attempts + 1, a fresh lease token and ``lease_until`` = the
        database clock + ``lease_seconds``. Returns the job with its :attr:`Job.lease`,
        or ``None`` when it is no longer ``queued``."""

    # -- claims and leases (several nodes; docs/architecture.md "Claims and leases") --

    def claim(
        self, worker: str, batch_id: str, *, libraries: Collection[str] | None = None,
        lease_seconds: float = LEASE_SECONDS, exclude: Collection[int] = (),
    ) -> Job | None:
        """Claim the oldest job due now for ``worker`` of this store's owner, in one
        statement: a ``queued`` row whose ``not_before`` has passed, or a ``processing``
        row whose lease ended (its owner died, froze or lost the database), of a library
        named in ``libraries`` (``None``: every library with a folder on this node).
        The row becomes ``processing`` with attempts + 1, this owner, a fresh lease token
        and ``lease_until`` = the database clock + ``lease_seconds``. PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``, so two nodes never claim one row. Job ids in
        ``exclude`` are passed over (files this node must leave to the others for a while:
        its tool hung on them, :class:`vpod.feeder.Feeder`). Returns the job
        (:attr:`Job.lease` set) or ``None`` when nothing is due."""

    def renew_leases(self, jobs: Sequence[Job], lease_seconds: float = LEASE_SECONDS) -> set[int]:
        """Extend the leases of ``jobs`` to the database clock + ``lease_seconds``, each
        only while its row still holds the job's token and is ``processing``; returns the
        ids renewed (a job missing from it lost its claim). Bounded by a short statement
        timeout: the caller measures its own deadline."""

    def confirm_lease(self, job: Job, lease_seconds: float = LEASE_SECONDS) -> bool:
        """The compare-and-set done just before a file is replaced or edited: True (and
        the lease extended by ``lease_seconds``) only while the row is ``processing``,
        holds ``job.lease`` and its lease has not ended by the database clock. A job
        without a lease (``None``) is always confirmed."""

    def scan_lock(self, library: str) -> ContextManager[bool]:
        """Hold the catch-up-scan lock of ``library`` for the ``with`` block: True when
        this node got it, False when another node scans it now (skip the scan; a
        duplicate scan is harmless anyway). PostgreSQL: an advisory lock; SQLite (one
        node): always True."""

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for another node's signal that work was queued
        (PostgreSQL ``LISTEN``/``NOTIFY``); True when signalled. SQLite, or no
        listener: returns False after at most ``timeout`` seconds without blocking
        longer than needed (the caller also polls)."""

    def nodes(self) -> list[NodeRecord]:
        """Every daemon owner seen recently (``vpod status``): node name, host, pid,
        version, workers, heartbeat age and clock offset as measured against the
        database clock, files in progress; this node first."""

    def note_progress(self, job: Job, percent: float, eta_seconds: float | None) -> None:
        """Record how far the remux of a file in progress is (``percent`` 0 to 100, the
        estimated seconds left or ``None``), for ``vpod status``; cleared by :meth:`start`."""

    def note_plan(self, job: Job, actions: Sequence[str]) -> None:
        """Record the actions about to be applied, before touching the file, so a crash
        between applying and :meth:`finish` still has the change accounted once."""

    def finish(self, job: Job, outcome: Outcome, batch_id: str | None) -> None:
        """Record a final outcome (done, failed or skipped) and its result row.

        Raises:
            LeaseLost: ``job.lease`` is set and the row no longer holds it (another
                node took the file); nothing is written.
        """

    def retry_later(
        self, job: Job, result: FileProcessingResult, delay_seconds: float, batch_id: str | None,
        *, counted: bool = True,
    ) -> None:
        """Put a job back in the queue after a transient failure, due in ``delay_seconds``.
        ``counted=False``: the attempt does not count against ``max_attempts``.

        Raises:
            LeaseLost: as :meth:`finish`.
        """

    def release(self, job: Job) -> None:
        """Give back a claimed job that was not worked on (shutdown, paused, self-fenced):
        ``queued`` again, the attempt given back, only while the row holds ``job.lease``."""

    def requeue_interrupted(self) -> int:
        """Return jobs a crashed daemon left in progress (their owner not alive, or none)
        to the queue; returns how many. A ``vpod process``'s rows are left alone."""

    def requeue_hardlinked(
        self, digest_of: Callable[[str, Path, bytes], str | None], reason: Reason = Reason.HARDLINKED
    ) -> list[Path]:
        """Queue again, with fresh attempts, the files skipped for good with ``reason``
        (``hardlinked``, or ``not_smaller``: both are done for the policy that judged them
        only) whose recorded policy digest differs from ``digest_of(library, folder,
        relpath)``, the digest of the policy that judges each now (a policy change
        re-judges them); returns their paths. ``digest_of`` is not called inside a
        transaction."""

    def record_batch(self, batch: BatchResult, source: str) -> None:
        """Store a closed batch with this node's name (the ``node`` of :meth:`register_owner`
        and :func:`~vpod.db.factory.open_store`; the host name by default): ``vpod status``
        says which node processed it (:attr:`~vpod.db.records.BatchRecord.node`)."""

    def register_temp(self, path: Path, job: Job | None = None) -> None:
        """Remember a temp file before creating it, so a crash cannot leave it behind;
        ``job``: the claim it belongs to (its lease decides when a sweeper may remove it)."""

    def forget_temp(self, path: Path) -> None:
        """The temp file is gone (renamed into place or removed)."""

    def pending_temps(self) -> list[Path]:
        """Temp files registered and not forgotten whose claim's lease is gone (left by
        a crash, on this node or another: paths on this node's folders)."""

    def queue_depth(self) -> int:
        """Number of queued jobs."""

    def file_record(self, path: Path) -> FileRecord | None:
        """What the store holds about the file at absolute ``path`` (matched against
        every (root, relpath) split of it, like :meth:`retry_paths`), or ``None``."""

    def database_id(self) -> str:
        """This store's random identity (32 hex digits), made once when it was created:
        library markers name it."""

    # -- daemon state and control (vpod status, resume, retry; /health) -------------

    def set_daemon_info(self, **values: object) -> None:
        """Write the daemon's own record (pid, state, ...); ``None`` deletes a key."""

    def daemon_info(self) -> dict[str, str]:
        """The daemon's record as written by :meth:`set_daemon_info` and the CLI."""

    def queue_report(self, *, batches: int = 5, failures: int = 10) -> QueueReport:
        """Counts by state, queue depth, files in progress, the last ``batches`` batches
        and ``failures`` failures (newest first), and up to ``failures`` queued files
        waiting for free space (:class:`~vpod.db.records.SpaceWait`: queued by
        :meth:`retry_later` with reason ``insufficient_space``; soonest retry first), read
        in one consistent snapshot."""

    def ping(self) -> int:
        """Prove the database answers; returns the queue depth."""

    def check_writable(self) -> None:
        """Prove this process may write the store (``vpod doctor``); writes nothing."""

    def retry_paths(self, paths: Iterable[Path]) -> dict[Path, RetryOutcome]:
        """Queue failed or skipped files again with fresh attempts."""

    def retry_all_failed(self) -> int:
        """Queue every failed file again; returns how many."""

    # -- the web API's reads (vpod.web.api; SQL shared in vpod.db.web_reads) ----------

    def recent_batches(self, limit: int) -> list[BatchRecord]:
        """The last ``limit`` batches, newest first, each with ``unchanged_count``."""

    def list_files(
        self, *, state: str | None = None, library: str | None = None, limit: int = 50, after: int = 0,
    ) -> list[FileListing]:
        """Up to ``limit`` files of id above ``after`` in id order (paging), only those in
        ``state`` / of the library named ``library`` when given."""

    def file_attempts(self, file_id: int, limit: int = 50) -> tuple[FileListing | None, list[AttemptRecord]]:
        """The file of id ``file_id`` (``None``: unknown) and its last ``limit`` attempts,
        newest first."""

    def hourly_history(self, since: float, until: float) -> list[HourStats]:
        """Outcomes per hour of the attempts started between ``since`` and ``until``
        (epoch seconds), oldest hour first, every hour listed."""

    def library_counts(self) -> dict[str, dict[str, int]]:
        """Files by state per library name: ``{name: {state: files}}``."""

    def file_path(self, file_id: int) -> Path | None:
        """The path on this node of the file of id ``file_id`` (``None``: unknown, or no
        folder of its library here)."""

    def close(self) -> None:
        """Release the store's connections; later writes raise :class:`StoreError`."""
