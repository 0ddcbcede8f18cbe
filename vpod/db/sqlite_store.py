"""The :class:`~vpod.db.store.Store` on SQLite, through a :class:`DaemonConnectionPool`."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from vpod.db.pool import DaemonConnectionPool
from vpod.db.records import BatchRecord, FailureRecord, FileRecord, InProgress, QueueReport, RetryOutcome, SpaceWait
from vpod.db.schema import migrate
from vpod.db.store import EnqueueEntry, EnqueueOutcome, Job, Outcome, StoreError
from vpod.fingerprint import StatKey
from vpod.outcomes import Reason, Status
from vpod.results import BatchResult, FileProcessingResult, display_path, utf8_text


def _folder(relpath: bytes) -> bytes:
    head, _, _ = relpath.rpartition(b"/")
    return head


def _stat_columns(stat: StatKey | None) -> tuple[Any, ...]:
    if stat is None:
        return (None, None, None, None)
    return (stat.size, stat.mtime_ns, stat.inode, stat.device)


_LOOKUP_CHUNK = 500  # bound variables per IN (...) lookup; SQLite allows 32,766 since 3.32


def _chunks(items: Sequence[Any], size: int = _LOOKUP_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_rows(conn: sqlite3.Connection, entries: Sequence[EnqueueEntry]) -> dict[tuple[str, bytes], sqlite3.Row]:
    """The current rows of the entries' files, by ``(root, relpath)``."""
    found: dict[tuple[str, bytes], sqlite3.Row] = {}
    by_root: dict[str, list[bytes]] = {}
    for entry in entries:
        by_root.setdefault(str(entry.root), []).append(entry.relpath)
    for root, relpaths in by_root.items():
        for chunk in _chunks(relpaths):
            for row in conn.execute(
                "SELECT id, relpath, state, fingerprint, result_fingerprint, permanent, pending_actions FROM files"
                f" WHERE root = ? AND relpath IN ({','.join('?' * len(chunk))})",
                (root, *chunk),
            ):
                found[(root, bytes(row["relpath"]))] = row
    return found


def _vouched_contents(
    conn: sqlite3.Connection, entries: Sequence[EnqueueEntry], policy_digest: str | None
) -> set[str]:
    """The entries' fingerprints that some file's result holds under ``policy_digest``.

    A twin vouches for content only if it was judged under the policy in force: after a
    policy change the same bytes may need work. ``None``, and rows from before schema v3
    (NULL digest), never vouch.
    """
    if policy_digest is None:
        return set()
    fingerprints = sorted({entry.fingerprint for entry in entries})
    vouched: set[str] = set()
    for chunk in _chunks(fingerprints):
        vouched.update(
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT result_fingerprint FROM files WHERE policy_digest = ?"
                f" AND result_fingerprint IN ({','.join('?' * len(chunk))})",
                (policy_digest, *chunk),
            )
        )
    return vouched


class SqliteStore:
    """SQLite implementation of the Store protocol (see :mod:`vpod.db.store`).

    Args:
        pool: the connection pool; the schema is migrated on construction.
    """

    def __init__(self, pool: DaemonConnectionPool) -> None:
        self.pool = pool
        migrate(pool)

    @property
    def location(self) -> str:
        """The database file's path."""
        return str(self.pool.path)

    def close(self) -> None:
        """Close the pool's write connection; later writes raise :class:`StoreError`."""
        self.pool.close()

    # -- queue ---------------------------------------------------------------------

    def enqueue(
        self, root: Path, relpath: bytes, fingerprint: str, stat: StatKey, *, policy_digest: str | None = None
    ) -> EnqueueOutcome:
        """Queue a stable file unless the same content was already handled.

        The rules, in order: a file waiting or in progress stays so (its stat is
        refreshed); content equal to what vpod left at this path is not processed again
        (``UNCHANGED``: vpod's own rewrite, ``touch``); content equal to what vpod left
        at another path (a hard link, a copy) is not processed again if it was judged
        under ``policy_digest``, the :attr:`~vpod.policy.policy.Policy.digest` in force
        (``SAME_CONTENT_DONE``; ``None`` never matches, nor do rows recorded before
        schema v3); content equal to a permanent failure or skip waits for a change;
        anything else is queued with fresh attempts.
        """
        return self.enqueue_many([EnqueueEntry(root, relpath, fingerprint, stat)], policy_digest=policy_digest)[0]

    def enqueue_many(
        self, entries: Sequence[EnqueueEntry], *, policy_digest: str | None = None
    ) -> list[EnqueueOutcome]:
        """:meth:`enqueue` for each entry, all in one transaction; outcomes in order.

        One transaction instead of one per file: the catch-up scan of 100,000 files
        spent most of its time committing (BENCHMARKS.md).
        """
        now = time.time()
        with self.pool.transaction() as conn:
            # Two lookups per batch instead of two per file (a catch-up scan enqueues
            # 100,000 files; BENCHMARKS.md): the rows already there, and which of the
            # batch's contents a result under this policy vouches for.
            rows = _existing_rows(conn, entries)
            twins = _vouched_contents(conn, entries, policy_digest)
            outcomes = []
            done: set[tuple[str, bytes]] = set()
            for entry in entries:
                key = (str(entry.root), entry.relpath)
                # A file named twice in one batch: the second sees what the first did.
                row = _existing_rows(conn, [entry]).get(key) if key in done else rows.get(key)
                done.add(key)
                outcomes.append(self._enqueue(conn, entry, row, entry.fingerprint in twins, policy_digest, now))
            return outcomes

    def _enqueue(
        self,
        conn: sqlite3.Connection,
        entry: EnqueueEntry,
        row: sqlite3.Row | None,
        twin: bool,
        policy_digest: str | None,
        now: float,
    ) -> EnqueueOutcome:
        """One file's :meth:`enqueue` rules inside the caller's transaction; ``row`` is its
        current row, ``twin`` whether a result elsewhere vouches for its content."""
        key = (str(entry.root), entry.relpath)
        relpath, fingerprint, stat = entry.relpath, entry.fingerprint, entry.stat
        if row is not None and row["state"] in ("queued", "processing"):
            if row["state"] == "queued" and row["fingerprint"] != fingerprint and not row["pending_actions"]:
                # With a plan pending, the queued fingerprint must stay the pre-change one:
                # it is how the redo tells that the interrupted attempt changed the file.
                conn.execute(
                    "UPDATE files SET fingerprint = ?, size = ?, mtime_ns = ?, inode = ?, device = ?,"
                    " updated_at = ? WHERE id = ?",
                    (fingerprint, *_stat_columns(stat), now, row["id"]),
                )
            return EnqueueOutcome.ALREADY_QUEUED
        if row is not None and row["result_fingerprint"] == fingerprint:
            self._refresh_stat(conn, row["id"], stat, now)
            return EnqueueOutcome.UNCHANGED
        if (
            row is not None
            and row["state"] in ("failed", "skipped")
            and row["permanent"]
            and row["fingerprint"] == fingerprint
        ):
            self._refresh_stat(conn, row["id"], stat, now)
            return EnqueueOutcome.FAILED_UNCHANGED
        state, outcome = ("done", EnqueueOutcome.SAME_CONTENT_DONE) if twin else ("queued", EnqueueOutcome.QUEUED)
        conn.execute(
            "INSERT INTO files (root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint,"
            " result_fingerprint, policy_digest, attempts, permanent, not_before, reason, last_error,"
            " queued_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, NULL, NULL, ?, ?)"
            " ON CONFLICT (root, relpath) DO UPDATE SET state = excluded.state, size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " policy_digest = excluded.policy_digest,"
            " attempts = 0, permanent = 0, not_before = 0, reason = NULL, last_error = NULL,"
            " queued_at = excluded.queued_at, updated_at = excluded.updated_at",
            (
                *key, _folder(relpath), state, *_stat_columns(stat), fingerprint,
                fingerprint if twin else None, policy_digest if twin else None, now, now,
            ),
        )
        return outcome

    @staticmethod
    def _refresh_stat(conn: sqlite3.Connection, file_id: int, stat: StatKey, now: float) -> None:
        conn.execute(
            "UPDATE files SET size = ?, mtime_ns = ?, inode = ?, device = ?, updated_at = ? WHERE id = ?",
            (*_stat_columns(stat), now, file_id),
        )

    def known_stats(self, root: Path, folder: bytes) -> dict[bytes, StatKey]:
        """Stat keys of files directly in ``folder`` of ``root`` that need no new look:
        done, waiting, in progress, or failed/skipped for a reason only a change can fix."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT relpath, size, mtime_ns, inode, device FROM files WHERE root = ? AND dir = ?"
                " AND size IS NOT NULL AND (state IN ('done', 'queued', 'processing') OR permanent = 1)",
                (str(root), folder),
            ).fetchall()
        return {r["relpath"]: StatKey(r["size"], r["mtime_ns"], r["inode"], r["device"]) for r in rows}

    def next_queued(self, limit: int, exclude: Iterable[int]) -> list[Job]:
        """Up to ``limit`` queued jobs due now, oldest first, skipping ids in ``exclude``."""
        skip = set(exclude)
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT id, root, relpath, fingerprint, attempts, pending_actions FROM files"
                " WHERE state = 'queued' AND not_before <= ? ORDER BY not_before, id LIMIT ?",
                (time.time(), limit + len(skip)),
            ).fetchall()
        jobs = [
            Job(
                r["id"], Path(r["root"]), r["relpath"], r["fingerprint"], r["attempts"],
                tuple(json.loads(r["pending_actions"])) if r["pending_actions"] else (),
            )
            for r in rows
            if r["id"] not in skip
        ]
        return jobs[:limit]

    def next_due_at(self) -> float | None:
        """When the earliest job waiting for a retry becomes due (epoch seconds), or
        ``None`` when none waits. Jobs due already are not counted: the feeder has them
        (in memory) or is told about them."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT MIN(not_before) FROM files WHERE state = 'queued' AND not_before > ?", (time.time(),)
            ).fetchone()
        earliest: float | None = row[0]
        return earliest

    def job_for_path(self, root: Path, relpath: bytes, fingerprint: str | None, stat: StatKey | None) -> Job | None:
        """Queue a file named explicitly (``vpod process``); ``None`` while it is ``processing``.

        Unlike :meth:`enqueue` this never skips known content: the user asked for this
        file now. Attempts, errors and the retry time are reset; what vpod left at this
        path before (``result_fingerprint``) is kept until :meth:`finish` replaces it.
        """
        now = time.time()
        with self.pool.transaction() as conn:
            row = conn.execute(
                "INSERT INTO files (root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint,"
                " attempts, permanent, not_before, queued_at, updated_at)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)"
                " ON CONFLICT (root, relpath) DO UPDATE SET state = 'queued',"
                " size = COALESCE(excluded.size, size), mtime_ns = COALESCE(excluded.mtime_ns, mtime_ns),"
                " inode = COALESCE(excluded.inode, inode), device = COALESCE(excluded.device, device),"
                # While an interrupted plan is pending, the queued fingerprint must stay the
                # pre-change one so the redo can tell the change already happened.
                " fingerprint = CASE WHEN files.pending_actions IS NULL THEN excluded.fingerprint"
                " ELSE files.fingerprint END, attempts = 0, permanent = 0, not_before = 0,"
                " reason = NULL, last_error = NULL, worker = NULL, queued_at = excluded.queued_at,"
                " updated_at = excluded.updated_at"
                " WHERE files.state != 'processing'"
                " RETURNING id, attempts, fingerprint, pending_actions",
                (str(root), relpath, _folder(relpath), *_stat_columns(stat), fingerprint, now, now),
            ).fetchone()
        if row is None:
            return None
        pending = tuple(json.loads(row["pending_actions"])) if row["pending_actions"] else ()
        return Job(row["id"], root, relpath, row["fingerprint"], row["attempts"], pending)

    def abandon_dead_owners(self, owner_alive: Callable[[str], bool]) -> list[Path]:
        """Mark rows left ``processing`` by a dead owner as ``failed`` (reason
        ``interrupted``, not permanent, so the next run or rescan takes them again);
        returns their paths."""
        now = time.time()
        # A read first: the daemon asks every few seconds, and nearly always nobody died.
        with self.pool.read() as conn:
            owners = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT worker FROM files WHERE state = 'processing' AND worker IS NOT NULL"
                )
            ]
        dead = [w for w in owners if not owner_alive(w)]
        if not dead:
            return []
        with self.pool.transaction() as conn:
            paths: list[Path] = []
            for worker in dead:
                rows = conn.execute(
                    "SELECT root, relpath FROM files WHERE state = 'processing' AND worker = ?", (worker,)
                ).fetchall()
                paths += [Path(r["root"]) / os.fsdecode(bytes(r["relpath"])) for r in rows]
                conn.execute(
                    "UPDATE files SET state = ?, permanent = 0, reason = ?,"
                    " last_error = ?, worker = NULL, updated_at = ? WHERE state = 'processing' AND worker = ?",
                    (Status.FAILED, Reason.INTERRUPTED, f"{worker} ended while processing this file", now, worker),
                )
            return paths

    def start(self, job: Job, worker: str, batch_id: str) -> bool:
        """Mark a job in progress; False when it is no longer queued."""
        with self.pool.transaction() as conn:
            cursor = conn.execute(
                "UPDATE files SET state = 'processing', worker = ?, batch_id = ?, started_at = ?,"
                " attempts = attempts + 1, updated_at = ?,"
                " progress_percent = NULL, eta_seconds = NULL, progress_at = NULL WHERE id = ? AND state = 'queued'",
                (worker, batch_id, time.time(), time.time(), job.id),
            )
            return cursor.rowcount == 1

    def note_progress(self, job: Job, percent: float, eta_seconds: float | None) -> None:
        """Record how far a remux of a file in progress is (cleared by :meth:`start`)."""
        with self.pool.transaction() as conn:
            conn.execute(
                "UPDATE files SET progress_percent = ?, eta_seconds = ?, progress_at = ?"
                " WHERE id = ? AND state = 'processing'",
                (percent, eta_seconds, time.time(), job.id),
            )

    def note_plan(self, job: Job, actions: Sequence[str]) -> None:
        """Record the actions about to be applied (cleared by :meth:`finish`)."""
        with self.pool.transaction() as conn:
            conn.execute(
                "UPDATE files SET pending_actions = ?, updated_at = ? WHERE id = ?",
                (json.dumps(list(actions)), time.time(), job.id),
            )

    def finish(self, job: Job, outcome: Outcome, batch_id: str | None) -> None:
        """Record a final outcome: ``done``, ``failed`` or ``skipped``, plus a result row.

        ``outcome.policy_digest`` is kept with ``result_fingerprint`` (NULL without one):
        the pair is what :meth:`enqueue` matches a copy at another path against.

        Texts (error, reason, track codec/language/title) are stored as valid UTF-8
        (:func:`~vpod.results.utf8_text`): an error naming a non-UTF-8 file must not
        fail the write and leave the file ``processing``.
        """
        result = outcome.result
        state = result.status
        digest = outcome.policy_digest if outcome.result_fingerprint is not None else None
        now = time.time()
        with self.pool.transaction() as conn:
            self._insert_result(conn, job, result, batch_id, outcome.result_fingerprint)
            stat_cols = _stat_columns(outcome.result_stat)
            conn.execute(
                "UPDATE files SET state = ?, result_fingerprint = ?, policy_digest = ?, permanent = ?,"
                " reason = ?, last_error = ?, worker = NULL, pending_actions = NULL, updated_at = ?,"
                " size = COALESCE(?, size), mtime_ns = COALESCE(?, mtime_ns),"
                " inode = COALESCE(?, inode), device = COALESCE(?, device) WHERE id = ?",
                (
                    state, outcome.result_fingerprint, digest, int(result.permanent), utf8_text(result.reason),
                    utf8_text(result.error), now, *stat_cols, job.id,
                ),
            )
            file_id = job.id
            if outcome.final_relpath is not None and outcome.final_relpath != job.relpath:
                file_id = self._upsert_done(conn, job.root, outcome.final_relpath, outcome, now)
            if outcome.tracks:
                conn.execute("DELETE FROM tracks WHERE file_id = ?", (file_id,))
                conn.executemany(
                    "INSERT INTO tracks (file_id, idx, type, codec, language, title, is_default,"
                    " is_forced, channels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (file_id, t.index, t.type, utf8_text(t.codec), utf8_text(t.language),
                         utf8_text(t.title), int(t.default), int(t.forced), t.channels)
                        for t in outcome.tracks
                    ],
                )

    def _upsert_done(self, conn: sqlite3.Connection, root: Path, relpath: bytes, outcome: Outcome, now: float) -> int:
        row = conn.execute(
            "INSERT INTO files (root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint,"
            " result_fingerprint, policy_digest, updated_at) VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (root, relpath) DO UPDATE SET state = 'done', size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " policy_digest = excluded.policy_digest,"
            " reason = NULL, last_error = NULL, updated_at = excluded.updated_at RETURNING id",
            (
                str(root), relpath, _folder(relpath), *_stat_columns(outcome.result_stat),
                outcome.result_fingerprint, outcome.result_fingerprint, outcome.policy_digest, now,
            ),
        ).fetchone()
        file_id: int = row[0]
        return file_id

    def retry_later(
        self, job: Job, result: FileProcessingResult, delay_seconds: float, batch_id: str | None,
        *, counted: bool = True,
    ) -> None:
        """Put a job back in the queue after a transient failure, due in ``delay_seconds``;
        ``counted=False`` gives the attempt back (waiting for free space)."""
        with self.pool.transaction() as conn:
            self._insert_result(conn, job, result, batch_id, None)
            conn.execute(
                # pending_actions stays: the failure may have come after the change (the
                # redo then counts it); if it came before, the content is unchanged and
                # the redo plans and counts the change itself.
                "UPDATE files SET state = 'queued', not_before = ?, reason = ?, last_error = ?,"
                " attempts = CASE WHEN ? THEN attempts ELSE MAX(attempts - 1, 0) END,"
                " worker = NULL, updated_at = ? WHERE id = ?",
                (time.time() + delay_seconds, utf8_text(result.reason), utf8_text(result.error), counted,
                 time.time(), job.id),
            )  # fmt: skip

    def release(self, job: Job) -> None:
        """Return a job that was started but not worked on (shutdown) to the queue."""
        with self.pool.transaction() as conn:
            conn.execute(
                "UPDATE files SET state = 'queued', attempts = MAX(attempts - 1, 0), worker = NULL,"
                " updated_at = ? WHERE id = ? AND state = 'processing'",
                (time.time(), job.id),
            )

    @staticmethod
    def _insert_result(
        conn: sqlite3.Connection,
        job: Job,
        result: FileProcessingResult,
        batch_id: str | None,
        fingerprint_after: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO results (batch_id, file_id, path, success, skipped, changes, actions, reason,"
            " error, started_at, duration_seconds, fingerprint_before, fingerprint_after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                batch_id, job.id, os.fsencode(result.path), int(result.success), int(result.skipped),
                result.changes, json.dumps(list(result.actions)), utf8_text(result.reason), utf8_text(result.error),
                result.started_at, result.duration_seconds, job.fingerprint, fingerprint_after,
            ),
        )

    def requeue_interrupted(self, *, except_workers: str | None = None) -> int:
        """Return jobs left ``processing`` by a crash to the queue; returns how many.
        Rows whose worker name starts with ``except_workers`` (another front end's, which
        may still be alive: see :meth:`abandon_dead_owners`) are left alone."""
        with self.pool.transaction() as conn:
            cursor = conn.execute(
                "UPDATE files SET state = 'queued', worker = NULL, updated_at = ? WHERE state = 'processing'"
                " AND (? IS NULL OR worker IS NULL OR substr(worker, 1, length(?)) != ?)",
                (time.time(), except_workers, except_workers, except_workers),
            )
            return cursor.rowcount

    def queue_depth(self) -> int:
        """Number of queued jobs (due now or later)."""
        with self.pool.read() as conn:
            depth: int = conn.execute("SELECT COUNT(*) FROM files WHERE state = 'queued'").fetchone()[0]
        return depth

    def file_record(self, path: Path) -> FileRecord | None:
        """The ``files`` row of absolute ``path``, tried under every (root, relpath) split."""
        with self.pool.read() as conn:
            for root in path.parents:
                row = conn.execute(
                    "SELECT root, relpath, state, reason, last_error, permanent, attempts, worker, fingerprint,"
                    " result_fingerprint, policy_digest, size, mtime_ns, inode, device FROM files"
                    " WHERE root = ? AND relpath = ?",
                    (str(root), os.fsencode(path.relative_to(root))),
                ).fetchone()
                if row is not None:
                    stat = None if row["size"] is None else StatKey(
                        row["size"], row["mtime_ns"], row["inode"], row["device"]
                    )
                    return FileRecord(
                        _text_path(row["root"], row["relpath"]), row["state"], row["reason"], row["last_error"],
                        bool(row["permanent"]), row["attempts"], row["worker"], row["fingerprint"],
                        row["result_fingerprint"], row["policy_digest"], stat,
                    )
        return None

    # -- batches -------------------------------------------------------------------

    def record_batch(self, batch: BatchResult, source: str) -> None:
        """Store a closed batch (``source`` is ``daemon`` or ``process``)."""
        counts = batch.counts()
        with self.pool.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batches (batch_id, source, started_at, ended_at, total_files,"
                " success_count, fail_count, skipped_count, total_duration_seconds, stopped_early)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.batch_id, source, batch.started_at, batch.ended_at, counts["total_files"],
                    counts["success_count"], counts["fail_count"], counts["skipped_count"],
                    batch.total_duration_seconds, int(batch.stopped_early),
                ),
            )

    # -- temp files ----------------------------------------------------------------

    def register_temp(self, path: Path) -> None:
        """Remember a temp file before creating it, so a crash cannot leave it behind."""
        with self.pool.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO temp_files (path, created_at) VALUES (?, ?)",
                (os.fsencode(path), time.time()),
            )

    def forget_temp(self, path: Path) -> None:
        """The temp file is gone (renamed into place or removed)."""
        with self.pool.transaction() as conn:
            conn.execute("DELETE FROM temp_files WHERE path = ?", (os.fsencode(path),))

    def pending_temps(self) -> list[Path]:
        """Temp files registered and not forgotten (left by a crash)."""
        with self.pool.read() as conn:
            rows = conn.execute("SELECT path FROM temp_files").fetchall()
        return [Path(os.fsdecode(r[0])) for r in rows]

    def database_id(self) -> str:
        """This database's random identity (32 hex digits), made once by the schema migration."""
        with self.pool.read() as conn:
            return str(conn.execute("SELECT database_id FROM identity").fetchone()[0])

    # -- daemon state, status and control (vpod status / resume / retry) ------------

    def set_daemon_info(self, **values: object) -> None:
        """Write keys of the ``daemon`` table (``None`` deletes a key); values are stored as
        valid UTF-8 text (a paused file's name or error may hold undecodable bytes)."""
        with self.pool.transaction() as conn:
            for key, value in values.items():
                if value is None:
                    conn.execute("DELETE FROM daemon WHERE key = ?", (key,))
                else:
                    conn.execute(
                        "INSERT INTO daemon (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, utf8_text(str(value))),
                    )

    def daemon_info(self) -> dict[str, str]:
        """Every key of the ``daemon`` table (pid, state, started_at, ...)."""
        with self.pool.read() as conn:
            return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM daemon")}

    def queue_report(self, *, batches: int = 5, failures: int = 10) -> QueueReport:
        """Counts by state, queue depth, files in progress, the last ``batches`` batches and
        the last ``failures`` failed files (newest first), and up to ``failures`` queued
        files waiting for free space, read in one snapshot."""
        with self.pool.read() as conn:
            conn.execute("BEGIN")  # one consistent snapshot across the queries (WAL)
            counts = dict.fromkeys(("queued", "processing", "done", "failed", "skipped"), 0)
            for row in conn.execute("SELECT state, COUNT(*) AS n FROM files GROUP BY state"):
                counts[row["state"]] = row["n"]
            now = time.time()
            in_progress = [
                InProgress(
                    _text_path(r["root"], r["relpath"]), r["worker"], r["batch_id"], r["started_at"], r["attempts"],
                    r["progress_percent"], _eta_now(r["eta_seconds"], r["progress_at"], now),
                )
                for r in conn.execute(
                    "SELECT root, relpath, worker, batch_id, started_at, attempts, progress_percent, eta_seconds,"
                    " progress_at FROM files WHERE state = 'processing' ORDER BY started_at"
                )
            ]
            last_batches = [
                BatchRecord(
                    r["batch_id"], r["source"], r["started_at"], r["ended_at"], r["total_files"] or 0,
                    r["success_count"] or 0, r["fail_count"] or 0, r["skipped_count"] or 0,
                    r["total_duration_seconds"] or 0.0, bool(r["stopped_early"]),
                )
                for r in conn.execute("SELECT * FROM batches ORDER BY started_at DESC LIMIT ?", (batches,))
            ]
            last_failures = [
                FailureRecord(_text_path(r["root"], r["relpath"]), r["reason"], r["last_error"], r["updated_at"], r["attempts"])
                for r in conn.execute(
                    "SELECT root, relpath, reason, last_error, updated_at, attempts FROM files"
                    " WHERE state = 'failed' ORDER BY updated_at DESC LIMIT ?",
                    (failures,),
                )
            ]
            waiting_for_space = [
                SpaceWait(_text_path(r["root"], r["relpath"]), r["last_error"], r["not_before"])
                for r in conn.execute(
                    "SELECT root, relpath, last_error, not_before FROM files"
                    " WHERE state = 'queued' AND reason = ? ORDER BY not_before LIMIT ?",
                    (Reason.INSUFFICIENT_SPACE, failures),
                )
            ]
            conn.execute("COMMIT")
        return QueueReport(counts, counts["queued"], in_progress, last_batches, last_failures, waiting_for_space)

    def ping(self) -> int:
        """Prove the database answers; returns the queue depth.

        Raises:
            StoreError: it cannot be opened or read (any SQLite error, wrapped).
        """
        try:
            return self.queue_depth()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read database {self.pool.path}: {exc}") from exc

    def check_writable(self) -> None:
        """Take the write lock and roll back: proves this process may write the database.

        Raises:
            StoreBusy / StoreError: it cannot be written now.
        """
        try:
            with self.pool.transaction() as conn:
                conn.execute("UPDATE daemon SET value = value WHERE 0")
                raise _Rollback
        except _Rollback:
            pass
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.pool.path}: {exc}") from exc

    def retry_paths(self, paths: Iterable[Path]) -> dict[Path, RetryOutcome]:
        """Queue failed or skipped files again, with fresh attempts, due now.

        A path is matched against every (root, relpath) split of it, so it works whatever
        the configured roots are now. Files queued, in progress or done are left alone.
        """
        outcomes: dict[Path, RetryOutcome] = {}
        now = time.time()
        with self.pool.transaction() as conn:
            for path in paths:
                outcome = RetryOutcome.UNKNOWN
                for root in path.parents:
                    key = (str(root), os.fsencode(path.relative_to(root)))
                    row = conn.execute("SELECT id, state FROM files WHERE root = ? AND relpath = ?", key).fetchone()
                    if row is None:
                        continue
                    if row["state"] in ("failed", "skipped"):
                        self._requeue(conn, "id = ?", (row["id"],), now)
                        outcome = RetryOutcome.REQUEUED
                    else:
                        outcome = RetryOutcome.NOT_FAILED
                    break
                outcomes[path] = outcome
        return outcomes

    def retry_all_failed(self) -> int:
        """Queue every failed file again (not skipped ones); returns how many."""
        with self.pool.transaction() as conn:
            return self._requeue(conn, "state = 'failed'", (), time.time())

    @staticmethod
    def _requeue(conn: sqlite3.Connection, where: str, args: tuple[Any, ...], now: float) -> int:
        return conn.execute(
            "UPDATE files SET state = 'queued', attempts = 0, permanent = 0, not_before = 0, reason = NULL,"
            f" last_error = NULL, worker = NULL, queued_at = ?, updated_at = ? WHERE {where}",
            (now, now, *args),
        ).rowcount


class _Rollback(Exception):
    """Ends a transaction on purpose (rolled back by the pool)."""


def _eta_now(eta_seconds: float | None, noted_at: float | None, now: float) -> float | None:
    """An estimate noted at ``noted_at`` (epoch seconds), counted down to ``now``."""
    if eta_seconds is None or noted_at is None:
        return None
    return max(0.0, eta_seconds - max(0.0, now - noted_at))


def _text_path(root: str, relpath: bytes) -> str:
    return display_path(Path(root) / os.fsdecode(relpath))
