"""Plain records the Store returns for reports: ``vpod status``, ``/health``, ``vpod retry``.

Each is a :class:`typing.NamedTuple`: immutable, compared and hashed by value, with
``_replace`` and ``_asdict``. Not frozen dataclasses: every ``vpod process`` imports this
module through the Store, and a NamedTuple is made in about a fifth of a frozen
dataclass's time (one generated method, not six: contrib/bench/findings.md "round 3,
start-up"). A record is also a tuple: compare records with records.
"""

# No `from __future__ import annotations`: a NamedTuple's field annotations are then
# objects, not strings typing.NamedTuple compiles one by one (about half its cost here).

import enum
from typing import NamedTuple

from vpod.fingerprint import StatKey


class InProgress(NamedTuple):
    """A file a worker is processing now; ``started_at`` in epoch seconds.

    ``progress_percent`` (0 to 100) and ``eta_seconds`` (left, as of the report) come
    from a running remux's tool, ``None`` before one reports (or for other work).
    """

    path: str
    worker: str | None
    batch_id: str | None
    started_at: float | None
    attempt: int
    progress_percent: float | None = None
    eta_seconds: float | None = None
    library: str | None = None
    owner_alive: bool | None = None
    """Whether the owner that started it is alive (:meth:`Store.owner_alive`); ``None``:
    a row with no owner record (a daemon before schema 6)."""


class Library(NamedTuple):
    """A library: its ``name``, its folder on this node (``None``: none now) and how
    many files the database knows in it."""

    name: str
    path: str | None
    files: int = 0
    uid: str | None = None
    """The library's identity (32 hex digits), made once; its marker file names it."""


CLOCK_SKEW_WARN_SECONDS = 2.0
"""A node whose clock is off from the database clock by more than this (seconds) is
warned about (``vpod status``, ``node_clock_skew``). Leases are timed by the database
clock and each node's own monotonic clock, so skew does not move a lease; it makes the
node's log times and the epoch times it writes disagree with the other nodes'."""


class NodeRecord(NamedTuple):
    """One daemon node as :meth:`vpod.db.store.Store.nodes` reports it.

    ``last_seen`` is its last heartbeat (epoch seconds, database clock),
    ``heartbeat_age_seconds`` how long ago that was; ``clock_offset_seconds`` is the
    node's clock minus the database clock at that heartbeat (``None``: not measured);
    ``doing`` the paths it has in progress; ``alive`` whether its heartbeat is fresh.
    """

    node: str
    host: str
    pid: int
    version: str | None
    workers: int | None
    started_at: float
    last_seen: float
    heartbeat_age_seconds: float
    clock_offset_seconds: float | None
    alive: bool
    doing: tuple[str, ...] = ()

    @property
    def clock_skewed(self) -> bool:
        """Its clock was off from the database clock by more than
        :data:`CLOCK_SKEW_WARN_SECONDS` at its last heartbeat."""
        return self.clock_offset_seconds is not None and abs(self.clock_offset_seconds) > CLOCK_SKEW_WARN_SECONDS


class LibraryChange(NamedTuple):
    """What :meth:`Store.bind_libraries` did to library ``name``: ``new``, ``moved``
    (``previous``: the folder before) or ``renamed`` (``previous``: the name before)."""

    name: str
    path: str
    change: str
    previous: str | None


class BatchRecord(NamedTuple):
    """One closed batch as stored (times in epoch seconds, duration in seconds)."""

    batch_id: str
    source: str
    started_at: float
    ended_at: float | None
    total_files: int
    success_count: int
    fail_count: int
    skipped_count: int
    total_duration_seconds: float
    stopped_early: bool
    node: str | None = None
    """The node that processed it (``[node] name``; ``None``: recorded before nodes were)."""
    unchanged_count: int = 0
    """Successes among its files that needed no change (``changes`` 0 in ``results``)."""


class FailureRecord(NamedTuple):
    """A file whose last outcome was a failure; ``failed_at`` in epoch seconds."""

    path: str
    reason: str | None
    error: str | None
    failed_at: float
    attempts: int
    policy: str | None = None
    """The name of the policy that judged it (``None``: not known)."""
    file_id: int | None = None
    """The file's row id (``GET /api/files/{id}/events``)."""


class SpaceWait(NamedTuple):
    """A queued file waiting for free space: its last try found too little
    (``insufficient_space``; ``error`` names the bytes needed and free), and the daemon
    tries again at ``retry_at`` (epoch seconds) without counting an attempt."""

    path: str
    error: str | None
    retry_at: float


class QueueReport(NamedTuple):
    """What the database says about the queue and recent work.

    ``counts`` maps every file state (queued, processing, done, failed, skipped) to a
    number of files; ``queue_depth`` counts queued files, due now or later, of which
    ``waiting_for_space`` lists those that wait for free space (soonest retry first).
    """

    counts: dict[str, int]
    queue_depth: int
    in_progress: list[InProgress]
    last_batches: list[BatchRecord]
    last_failures: list[FailureRecord]
    waiting_for_space: list[SpaceWait]


class RetryOutcome(enum.Enum):
    """What ``vpod retry PATH`` did with one path."""

    REQUEUED = "requeued"  # was failed or skipped; queued again with fresh attempts
    NOT_FAILED = "not_failed"  # known, but queued, in progress or done: nothing to retry
    UNKNOWN = "unknown"  # vpod has no record of this path


class FileRecord(NamedTuple):
    """What the Store holds about one file (:meth:`vpod.db.store.Store.file_record`).

    ``state`` is ``queued``, ``processing``, ``done``, ``failed`` or ``skipped``;
    ``reason`` and ``error`` are the last failure's tag and message (``None`` after a
    success or a requeue); ``permanent`` says the failure waits for new content;
    ``attempts`` counts started attempts since the file was last queued afresh;
    ``worker`` names the owner of a row in progress; ``fingerprint`` is the content
    queued, ``result_fingerprint`` the content vpod left (or found conforming) and
    ``policy_digest`` the policy that judged it, ``policy_name`` and ``policy_why``
    which policy that was and why (:class:`vpod.policy.selection.Selection`); ``stat``
    is the last stat key recorded (``None`` when none was).
    """

    path: str
    state: str
    reason: str | None
    error: str | None
    permanent: bool
    attempts: int
    worker: str | None
    fingerprint: str | None
    result_fingerprint: str | None
    policy_digest: str | None
    stat: StatKey | None
    policy_name: str | None = None
    policy_why: str | None = None


class Conforming(NamedTuple):
    """What the Store recorded of a file vpod left conforming (``done``), or left as
    handled under its policy though it still plans a video transcode (skipped for good as
    ``not_smaller``: the encode was not smaller, ``keep_if_larger``; or as ``hdr_not_kept``
    / ``interlaced_not_kept``: it could not keep the picture, :data:`vpod.outcomes.VIDEO_DECLINED`):

    Attributes:
        stat: its stat key, ctime included, taken after vpod's last change to it (the
            rename of a remux, the attributes given back, an in-place edit), or when it
            was found conforming or vouched for by a twin.
        policy_digest: :attr:`~vpod.policy.policy.Policy.digest` of the policy that judged it.
        policy_name: that policy's name (``None``: not recorded).
        reason: ``None`` for a ``done`` row; the reason (``"not_smaller"`` ...) for one skipped as such.
    """

    stat: StatKey
    policy_digest: str
    policy_name: str | None = None
    reason: str | None = None


class FileListing(NamedTuple):
    """One ``files`` row as the web API lists it (``GET /api/files``); ``updated_at`` in
    epoch seconds; ``error`` is the tool's message of its last failure or skip."""

    id: int
    path: str
    library: str
    state: str
    reason: str | None
    error: str | None
    attempts: int
    updated_at: float
    policy: str | None


class AttemptRecord(NamedTuple):
    """One recorded attempt of a file (a ``results`` row), newest first in
    :meth:`~vpod.db.store.Store.file_attempts`. ``status``: ``done``, ``failed`` or
    ``skipped``; ``started_at`` epoch seconds, ``duration_seconds`` seconds."""

    batch_id: str | None
    status: str
    changes: int
    actions: tuple[str, ...]
    reason: str | None
    error: str | None
    started_at: float | None
    duration_seconds: float | None


class HourStats(NamedTuple):
    """Outcomes of the attempts that started in one hour (``hour``: its start, epoch
    seconds, a multiple of 3600). ``done``: successes that changed the file;
    ``unchanged``: successes that needed no change; ``mean_seconds``: mean duration of
    all of them (``None``: none)."""

    hour: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    unchanged: int = 0
    mean_seconds: float | None = None
