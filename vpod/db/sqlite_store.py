"""The :class:`~vpod.db.store.Store` on SQLite, through a :class:`DaemonConnectionPool`."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vpod.db.pool import DaemonConnectionPool
from vpod.db.schema import migrate
from vpod.db.store import EnqueueEntry, EnqueueOutcome, Job, Outcome
from vpod.fingerprint import StatKey
from vpod.results import BatchResult, FileProcessingResult


def _folder(relpath: bytes) -> bytes:
    head, _, _ = relpath.rpartition(b"/")
    return head


def _stat_columns(stat: StatKey | None) -> tuple[Any, ...]:
    if stat is None:
        return (None, None, None, None)
    return (stat.size, stat.mtime_ns, stat.inode, stat.device)


class SqliteStore:
    """SQLite implementation of the Store protocol (see :mod:`vpod.db.store`).

    Args:
        pool: the connection pool; the schema is migrated on construction.
    """

    def __init__(self, pool: DaemonConnectionPool) -> None:
        self.pool = pool
        migrate(pool)

    # -- queue ---------------------------------------------------------------------

    def enqueue(self, root: Path, relpath: bytes, fingerprint: str, stat: StatKey) -> EnqueueOutcome:
        """Queue a stable file unless the same content was already handled.

        The rules, in order: a file waiting or in progress stays so (its stat is
        refreshed); content equal to what vpod left at this path, or at any other path
        (a hard link, a copy), is not processed again; content equal to a permanent
        failure or skip waits for a change; anything else is queued with fresh attempts.
        """
        return self.enqueue_many([EnqueueEntry(root, relpath, fingerprint, stat)])[0]

    def enqueue_many(self, entries: Sequence[EnqueueEntry]) -> list[EnqueueOutcome]:
        """:meth:`enqueue` for each entry, all in one transaction; outcomes in order.

        One transaction instead of one per file: the catch-up scan of 100,000 files
        spent most of its time committing (BENCHMARKS.md).
        """
        now = time.time()
        with self.pool.transaction() as conn:
            return [self._enqueue(conn, e.root, e.relpath, e.fingerprint, e.stat, now) for e in entries]

    def _enqueue(
        self, conn: sqlite3.Connection, root: Path, relpath: bytes, fingerprint: str, stat: StatKey, now: float
    ) -> EnqueueOutcome:
        """One file's :meth:`enqueue` rules inside the caller's transaction."""
        key = (str(root), relpath)
        row = conn.execute(
            "SELECT id, state, fingerprint, result_fingerprint, permanent FROM files"
            " WHERE root = ? AND relpath = ?",
            key,
        ).fetchone()
        if row is not None and row["state"] in ("queued", "processing"):
            if row["state"] == "queued" and row["fingerprint"] != fingerprint:
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
        twin = conn.execute(
            "SELECT 1 FROM files WHERE result_fingerprint = ? LIMIT 1", (fingerprint,)
        ).fetchone()
        state, outcome = ("done", EnqueueOutcome.UNCHANGED) if twin else ("queued", EnqueueOutcome.QUEUED)
        conn.execute(
            "INSERT INTO files (root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint,"
            " result_fingerprint, attempts, permanent, not_before, reason, last_error, queued_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, NULL, NULL, ?, ?)"
            " ON CONFLICT (root, relpath) DO UPDATE SET state = excluded.state, size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " attempts = 0, permanent = 0, not_before = 0, reason = NULL, last_error = NULL,"
            " queued_at = excluded.queued_at, updated_at = excluded.updated_at",
            (
                *key, _folder(relpath), state, *_stat_columns(stat), fingerprint,
                fingerprint if twin else None, now, now,
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
        """When the earliest queued job becomes due (epoch seconds), or ``None``."""
        with self.pool.read() as conn:
            row = conn.execute("SELECT MIN(not_before) FROM files WHERE state = 'queued'").fetchone()
        return row[0]

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

    def abandon_dead_owners(self, owner_alive: Callable[[str], bool]) -> int:
        """Mark rows left ``processing`` by a dead owner as ``failed`` (reason
        ``interrupted``, not permanent, so the next run or rescan takes them again)."""
        now = time.time()
        with self.pool.transaction() as conn:
            owners = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT worker FROM files WHERE state = 'processing' AND worker IS NOT NULL"
                )
            ]
            dead = [w for w in owners if not owner_alive(w)]
            count = 0
            for worker in dead:
                count += conn.execute(
                    "UPDATE files SET state = 'failed', permanent = 0, reason = 'interrupted',"
                    " last_error = ?, worker = NULL, updated_at = ? WHERE state = 'processing' AND worker = ?",
                    (f"{worker} ended while processing this file", now, worker),
                ).rowcount
            return count

    def start(self, job: Job, worker: str, batch_id: str) -> bool:
        """Mark a job in progress; False when it is no longer queued."""
        with self.pool.transaction() as conn:
            cursor = conn.execute(
                "UPDATE files SET state = 'processing', worker = ?, batch_id = ?, started_at = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'queued'",
                (worker, batch_id, time.time(), time.time(), job.id),
            )
            return cursor.rowcount == 1

    def note_plan(self, job: Job, actions: Sequence[str]) -> None:
        """Record the actions about to be applied (cleared by :meth:`finish`)."""
        with self.pool.transaction() as conn:
            conn.execute(
                "UPDATE files SET pending_actions = ?, updated_at = ? WHERE id = ?",
                (json.dumps(list(actions)), time.time(), job.id),
            )

    def finish(self, job: Job, outcome: Outcome, batch_id: str | None) -> None:
        """Record a final outcome: ``done``, ``failed`` or ``skipped``, plus a result row."""
        result = outcome.result
        state = "done" if result.success else ("skipped" if result.skipped else "failed")
        now = time.time()
        with self.pool.transaction() as conn:
            self._insert_result(conn, job, result, batch_id, outcome.result_fingerprint)
            stat_cols = _stat_columns(outcome.result_stat)
            conn.execute(
                "UPDATE files SET state = ?, result_fingerprint = ?, permanent = ?, reason = ?,"
                " last_error = ?, worker = NULL, pending_actions = NULL, updated_at = ?,"
                " size = COALESCE(?, size), mtime_ns = COALESCE(?, mtime_ns),"
                " inode = COALESCE(?, inode), device = COALESCE(?, device) WHERE id = ?",
                (
                    state, outcome.result_fingerprint, int(result.permanent), result.reason,
                    result.error, now, *stat_cols, job.id,
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
                        (file_id, t.index, t.type, t.codec, t.language, t.title, int(t.default),
                         int(t.forced), t.channels)
                        for t in outcome.tracks
                    ],
                )

    def _upsert_done(self, conn: sqlite3.Connection, root: Path, relpath: bytes, outcome: Outcome, now: float) -> int:
        row = conn.execute(
            "INSERT INTO files (root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint,"
            " result_fingerprint, updated_at) VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (root, relpath) DO UPDATE SET state = 'done', size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " reason = NULL, last_error = NULL, updated_at = excluded.updated_at RETURNING id",
            (
                str(root), relpath, _folder(relpath), *_stat_columns(outcome.result_stat),
                outcome.result_fingerprint, outcome.result_fingerprint, now,
            ),
        ).fetchone()
        return row[0]

    def retry_later(self, job: Job, result: FileProcessingResult, delay_seconds: float, batch_id: str | None) -> None:
        """Put a job back in the queue after a transient failure, due in ``delay_seconds``."""
        with self.pool.transaction() as conn:
            self._insert_result(conn, job, result, batch_id, None)
            conn.execute(
                "UPDATE files SET state = 'queued', not_before = ?, reason = ?, last_error = ?,"
                " worker = NULL, pending_actions = NULL, updated_at = ? WHERE id = ?",
                (time.time() + delay_seconds, result.reason, result.error, time.time(), job.id),
            )

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
                result.changes, json.dumps(list(result.actions)), result.reason, result.error,
                result.started_at, result.duration_seconds, job.fingerprint, fingerprint_after,
            ),
        )

    def requeue_interrupted(self) -> int:
        """Return jobs left ``processing`` by a crash to the queue; returns how many."""
        with self.pool.transaction() as conn:
            cursor = conn.execute(
                "UPDATE files SET state = 'queued', worker = NULL, updated_at = ? WHERE state = 'processing'",
                (time.time(),),
            )
            return cursor.rowcount

    def queue_depth(self) -> int:
        """Number of queued jobs (due now or later)."""
        with self.pool.read() as conn:
            return conn.execute("SELECT COUNT(*) FROM files WHERE state = 'queued'").fetchone()[0]

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
