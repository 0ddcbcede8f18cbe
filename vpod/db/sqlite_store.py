"""The :class:`~vpod.db.store.Store` on SQLite, through a :class:`DaemonConnectionPool`."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Collection, ContextManager, Iterable, Iterator, Sequence

from vpod.db.owners import HEARTBEAT_SECONDS, OWNER_KINDS, OwnerRecord, is_alive, new_incarnation, process_start, this_host
from vpod.db.enqueue_rules import Write, decide
from vpod.db.enqueue_rules import digest_of as _digest_of
from vpod.db.rows import batch_record, conforming, failure_record, file_record, in_progress, owner_record, pending_actions
from vpod.db.rows import folder_of as _folder
from vpod.db.rows import stat_columns as _stat_columns
from vpod.db.rows import text_path as _text_path
from vpod.db import web_reads
from vpod.db.pool import DaemonConnectionPool
from vpod.db.records import (
    AttemptRecord, BatchRecord, Conforming, FileListing, FileRecord, HourStats, Library, LibraryChange, NodeRecord,
    QueueReport, RetryOutcome, SpaceWait,
)
from vpod.db.schema import migrate
from vpod.db.store import LEASE_SECONDS, EnqueueEntry, EnqueueOutcome, Job, LeaseLost, Outcome, StoreError, WalkedFolder
from vpod.fingerprint import UNREAD_PREFIX, StatKey, is_unread, unread_size
from vpod.libraries import adhoc_name
from vpod.outcomes import VIDEO_DECLINED, Reason, Status
from vpod.results import BatchResult, FileProcessingResult, display_path, utf8_text


_LOOKUP_CHUNK = 500  # bound variables per IN (...) lookup; SQLite allows 32,766 since 3.32


def _chunks(items: Sequence[Any], size: int = _LOOKUP_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_rows(
    conn: sqlite3.Connection, entries: Sequence[EnqueueEntry], library_ids: dict[str, int]
) -> dict[tuple[int, bytes], sqlite3.Row]:
    """The current rows of the entries' files, by ``(library_id, relpath)``;
    ``library_ids`` maps each entry's root (text) to its library."""
    found: dict[tuple[int, bytes], sqlite3.Row] = {}
    by_library: dict[int, list[bytes]] = {}
    for entry in entries:
        by_library.setdefault(library_ids[str(entry.root)], []).append(entry.relpath)
    for library_id, relpaths in by_library.items():
        for chunk in _chunks(relpaths):
            for row in conn.execute(
                "SELECT id, relpath, state, fingerprint, result_fingerprint, permanent, pending_actions, reason,"
                " policy_digest FROM files"
                f" WHERE library_id = ? AND relpath IN ({','.join('?' * len(chunk))})",
                (library_id, *chunk),
            ):
                found[(library_id, bytes(row["relpath"]))] = row
    return found


def _library_of(conn: sqlite3.Connection, root: Path, now: float) -> tuple[int, str]:
    """``(id, name)`` of the library whose folder on this node is ``root``; a folder no
    library has is made an ad-hoc library named by its path (:func:`adhoc_name`). Inside
    a write transaction."""
    row = conn.execute("SELECT id, name FROM libraries WHERE path = ?", (os.fspath(root),)).fetchone()
    if row is None:
        row = conn.execute(
            "INSERT INTO libraries (name, path, created_at, uid) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET path = excluded.path RETURNING id, name",
            (adhoc_name(root), os.fspath(root), now, new_token()),
        ).fetchone()
    return int(row[0]), str(row[1])


_UPSERT = (
    "INSERT INTO files (library_id, root, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns,"
    " fingerprint, result_fingerprint, policy_digest, attempts, permanent, not_before, reason, last_error,"
    " queued_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, NULL, NULL, ?, ?)"
    " ON CONFLICT (library_id, relpath) DO UPDATE SET root = excluded.root, state = excluded.state,"
    " size = excluded.size,"
    " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
    " ctime_ns = excluded.ctime_ns,"
    " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
    " policy_digest = excluded.policy_digest,"
    " attempts = 0, permanent = 0, not_before = 0, reason = NULL, last_error = NULL,"
    " queued_at = excluded.queued_at, updated_at = excluded.updated_at"
)
"""A file's row (re)written as queued (or done, for content a twin vouches for) with fresh attempts."""


_INSERT_WALKED = (
    "INSERT INTO files (library_id, root, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns, fingerprint,"
    " attempts, permanent, not_before, queued_at, updated_at)"
    " SELECT :library, :root, CAST(value ->> 0 AS BLOB), CAST(value ->> 7 AS BLOB),"
    " 'queued', value ->> 4, value ->> 5, value ->> 2, value ->> 3, value ->> 6,"
    " :unread || (value ->> 4), 0, 0, 0, :now, :now FROM json_each(:rows)"
    " WHERE :digest IS NULL OR NOT EXISTS (SELECT 1 FROM files WHERE result_fingerprint >= (value ->> 4) || ':'"
    " AND result_fingerprint < (value ->> 4) || ';' AND +policy_digest = :digest AND +state = 'done')"
    " ON CONFLICT DO NOTHING"
)
"""The new rows of walked folders (:meth:`SqliteStore.enqueue_walked_new`): the row
:data:`_UPSERT` writes for an unread entry, each file's fields read from the JSON by
SQLite (``->>``: SQLite 3.38). A path with a row, or a size a ``done`` result has under
the digest (a range of ``files_by_result``, as :func:`_vouched_contents`), is left out
(the unary ``+`` keeps the planner on that range: with ``state = 'done'`` it took
``files_by_state`` and read every ``done`` row once per file); ``WHERE`` also tells
SQLite's parser that ``ON CONFLICT`` is an upsert."""
_NOT_WALKED_IN = (
    "SELECT value ->> 7, value ->> 0 FROM json_each(:rows) WHERE NOT EXISTS (SELECT 1 FROM files"
    " WHERE library_id = :library AND id > :before"
    " AND relpath = CAST(value ->> 0 AS BLOB))"
)
"""The (folder, relpath) pairs of the JSON that :data:`_INSERT_WALKED` did not write: no row
with an id above the largest before the transaction (SQLite gives a new row a larger rowid)."""


def _upsert(conn: sqlite3.Connection, upserts: list[tuple[Any, ...]]) -> None:
    """Write the collected :data:`_UPSERT` rows in one ``executemany``, and empty the list."""
    if upserts:
        conn.executemany(_UPSERT, upserts)
        upserts.clear()


_LIBRARY_BY_PATH = "(SELECT id FROM libraries WHERE path = ?)"
_JOB_COLUMNS = (
    "f.id, l.path AS root, l.name AS library, f.relpath, f.fingerprint, f.attempts, f.pending_actions, f.lease_token"
    " FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
)
_NO_CLAIM = "worker = NULL, owner_id = NULL, lease_token = NULL, lease_until = NULL"
"""What a row that leaves ``processing`` forgets of its claim."""
_HOLDS_LEASE = "(? IS NULL OR lease_token = ?)"
"""The compare-and-set of a write about a claimed job: bound to ``(job.lease, job.lease)``;
a job without a lease (``None``) matches any row, as before leases."""


def new_token() -> str:
    """A fresh lease token or library identity: 32 random hex digits."""
    return secrets.token_hex(16)


def _job(row: sqlite3.Row, *, attempts_before: int | None = None) -> Job:
    """The :class:`Job` of a row read with :data:`_JOB_COLUMNS` (``attempts_before``: the
    attempts made before a claim that just counted one more)."""
    pending = pending_actions(row["pending_actions"])
    attempts = row["attempts"] if attempts_before is None else attempts_before
    return Job(
        row["id"], Path(row["root"]), bytes(row["relpath"]), row["fingerprint"], attempts, pending,
        library=row["library"], lease=row["lease_token"],
    )


def _vouched_contents(
    conn: sqlite3.Connection, entries: Sequence[EnqueueEntry], policy_digest: str | None
) -> set[tuple[str, str]]:
    """(fingerprint, digest) of the entries whose content some ``done`` file's result
    holds under the digest each entry is judged by (its own, else ``policy_digest``).

    A twin vouches for content only if it was judged under the policy in force for the
    new path: after a policy change the same bytes may need work. ``None``, rows from
    before schema v3 (NULL digest), and rows that are not ``done`` (a ``hardlinked``
    skip left only part of its plan applied) never vouch.

    An entry not read yet (:func:`vpod.fingerprint.unread`) is in the answer when some
    such result has its size (the size leads a fingerprint: ``"SIZE:HEX"``); then it may
    be a copy, and is read before it is queued.
    """
    by_digest: dict[str, set[str]] = {}
    unread_sizes: set[tuple[str, str]] = set()
    for entry in entries:
        digest = _digest_of(entry, policy_digest)
        if digest is None:
            continue
        if is_unread(entry.fingerprint):
            unread_sizes.add((entry.fingerprint, digest))
        else:
            by_digest.setdefault(digest, set()).add(entry.fingerprint)
    vouched: set[tuple[str, str]] = {
        (fingerprint, digest) for fingerprint, digest in sorted(unread_sizes)
        if conn.execute(  # a range of files_by_result: fingerprints that begin "SIZE:" (';' follows ':')
            "SELECT 1 FROM files WHERE result_fingerprint >= ? AND result_fingerprint < ? AND policy_digest = ?"
            " AND state = 'done' LIMIT 1",
            (f"{unread_size(fingerprint)}:", f"{unread_size(fingerprint)};", digest),
        ).fetchone() is not None
    }
    for digest, fingerprints in sorted(by_digest.items()):
        for chunk in _chunks(sorted(fingerprints)):
            vouched.update(
                (row[0], digest)
                for row in conn.execute(
                    "SELECT DISTINCT result_fingerprint FROM files WHERE policy_digest = ? AND state = 'done'"
                    f" AND result_fingerprint IN ({','.join('?' * len(chunk))})",
                    (digest, *chunk),
                )
            )
    return vouched


class SqliteStore(web_reads.WebReads):
    """SQLite implementation of the Store protocol (see :mod:`vpod.db.store`).

    Args:
        pool: the connection pool; the schema is migrated on construction.
    """

    def __init__(self, pool: DaemonConnectionPool) -> None:
        self.pool = pool
        self.owner: OwnerRecord | None = None  # set by register_owner
        self._host = this_host()
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
        anything else is queued with fresh attempts. A file skipped as ``hardlinked``
        (left alone, or only the header part of its plan applied: ``[policy]
        hardlinks``) is all of these only under the policy digest it was judged by:
        under another it is queued again, so a policy change re-judges it.
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
            library_ids = {
                root: _library_of(conn, Path(root), now)[0] for root in sorted({str(e.root) for e in entries})
            }
            rows = _existing_rows(conn, entries, library_ids)
            twins = _vouched_contents(conn, entries, policy_digest)
            outcomes = []
            done: set[tuple[int, bytes]] = set()
            upserts: list[tuple[Any, ...]] = []  # written with one executemany (a scan's batch: 1,000 new rows)
            for entry in entries:
                root = str(entry.root)
                key = (library_ids[root], entry.relpath)
                if key in done:
                    # A file named twice in one batch: the second sees what the first did.
                    _upsert(conn, upserts)
                    row = _existing_rows(conn, [entry], library_ids).get(key)
                else:
                    row = rows.get(key)
                done.add(key)
                digest = _digest_of(entry, policy_digest)
                twin = (entry.fingerprint, digest) in twins
                if row is None and not (twin and is_unread(entry.fingerprint)):
                    # A new file (a catch-up's usual case): decide(None, ...) queues it, or
                    # records it done when a twin vouches for it; its row goes in as a
                    # plain tuple (no per-file call of decide and _enqueue).
                    fingerprint, stat = entry.fingerprint, entry.stat
                    upserts.append((
                        key[0], root, entry.relpath, _folder(entry.relpath), "done" if twin else "queued",
                        stat.size, stat.mtime_ns, stat.inode, stat.device, stat.ctime_ns, fingerprint,
                        fingerprint if twin else None, digest if twin else None, now, now,
                    ))
                    outcomes.append(EnqueueOutcome.SAME_CONTENT_DONE if twin else EnqueueOutcome.QUEUED)
                    continue
                outcomes.append(self._enqueue(conn, entry, key[0], row, twin, digest, now, upserts))
            _upsert(conn, upserts)
            return outcomes

    bulk_walk = True

    def enqueue_walked_new(
        self, root: Path, folders: Sequence[WalkedFolder], policy_digest: str | None
    ) -> list[list[str]]:
        """:meth:`vpod.db.store.Store.enqueue_walked_new`: one ``INSERT ... SELECT ...
        FROM json_each(?)`` for all the folders (:data:`_INSERT_WALKED`; the folders'
        JSON arrays joined into one). When it writes fewer rows than the folders name,
        the names it left out are asked (:data:`_NOT_WALKED_IN`); the usual answer, every
        file new, costs nothing more."""
        if not folders:
            return []
        now = time.time()
        rows = "[" + ",".join(folder.rows[1:-1] for folder in folders) + "]"
        with self.pool.transaction() as conn:
            library_id = _library_of(conn, root, now)[0]
            before = conn.execute("SELECT coalesce(max(id), 0) FROM files").fetchone()[0]
            named = {
                "library": library_id, "root": str(root), "now": now, "digest": policy_digest, "unread": UNREAD_PREFIX,
                "rows": rows,
            }
            if conn.execute(_INSERT_WALKED, named).rowcount == sum(folder.files for folder in folders):
                return [[] for _ in folders]
            left: dict[str, list[str]] = {}
            for folder, relpath in conn.execute(_NOT_WALKED_IN, {"rows": rows, "library": library_id, "before": before}):
                left.setdefault(folder, []).append(relpath[len(folder) + 1 :] if folder else relpath)
        return [left.get(folder.dir.decode(), []) for folder in folders]

    def _enqueue(
        self,
        conn: sqlite3.Connection,
        entry: EnqueueEntry,
        library_id: int,
        row: sqlite3.Row | None,
        twin: bool,
        policy_digest: str | None,
        now: float,
        upserts: list[tuple[Any, ...]] | None = None,
    ) -> EnqueueOutcome:
        """One file's :meth:`enqueue` rules inside the caller's transaction; ``row`` is its
        current row, ``twin`` whether a result elsewhere vouches for its content. The row
        written anew goes to ``upserts`` when given (the caller writes them, :func:`_upsert`),
        else at once."""
        relpath, fingerprint, stat = entry.relpath, entry.fingerprint, entry.stat
        step = decide(row, fingerprint, twin=twin, policy_digest=policy_digest)
        if step.write is Write.SET_FINGERPRINT:
            assert row is not None
            conn.execute(
                "UPDATE files SET fingerprint = ?, size = ?, mtime_ns = ?, inode = ?, device = ?, ctime_ns = ?,"
                " updated_at = ? WHERE id = ?",
                (fingerprint, *_stat_columns(stat), now, row["id"]),
            )
        if step.write is Write.REFRESH_STAT:
            assert row is not None
            self._refresh_stat(conn, row["id"], stat, now)
        if step.write is not Write.UPSERT:
            return step.outcome
        state, outcome = step.state, step.outcome
        values = (
            library_id, str(entry.root), relpath, _folder(relpath), state, *_stat_columns(stat), fingerprint,
            fingerprint if twin else None, policy_digest if twin else None, now, now,
        )
        if upserts is None:
            conn.execute(_UPSERT, values)
        else:
            upserts.append(values)
        return outcome

    @staticmethod
    def _refresh_stat(conn: sqlite3.Connection, file_id: int, stat: StatKey, now: float) -> None:
        conn.execute(
            "UPDATE files SET size = ?, mtime_ns = ?, inode = ?, device = ?, ctime_ns = ?, updated_at = ? WHERE id = ?",
            (*_stat_columns(stat), now, file_id),
        )

    def known_stats(self, root: Path, folder: bytes) -> dict[bytes, StatKey]:
        """Stat keys (ctime included; ``None`` in a row an older vpod wrote) of files
        directly in ``folder`` of ``root`` that need no new look: done, waiting, in
        progress, or failed/skipped for a reason only a change can fix. Read on the
        calling thread's kept connection: a walk asks once per folder."""
        with self.pool.kept_read() as conn:
            rows = conn.execute(
                f"SELECT relpath, size, mtime_ns, inode, device, ctime_ns FROM files WHERE library_id = {_LIBRARY_BY_PATH}"
                " AND dir = ?"
                " AND size IS NOT NULL AND (state IN ('done', 'queued', 'processing') OR permanent = 1)",
                (str(root), folder),
            ).fetchall()
        return {r["relpath"]: StatKey(r["size"], r["mtime_ns"], r["inode"], r["device"], r["ctime_ns"]) for r in rows}

    def conforming_stats(self, root: Path, folder: bytes) -> dict[bytes, Conforming]:
        """What vpod recorded of the files directly in ``folder`` of ``root`` it left
        conforming (``done``, or skipped for good with a reason of
        :data:`vpod.outcomes.VIDEO_DECLINED`: its video encode declined, the rest of its plan
        applied), with the policy digest that judged them and a stat key with
        ctime): what :func:`vpod.unchanged.left_conforming` needs. Rows an older vpod
        wrote (no ctime, or no digest) are left out: they prove nothing. Read on the
        calling thread's kept connection: ``vpod process`` asks once per folder."""
        with self.pool.kept_read() as conn:
            rows = conn.execute(
                "SELECT relpath, size, mtime_ns, inode, device, ctime_ns, policy_digest, policy_name, state, reason"
                f" FROM files WHERE library_id = {_LIBRARY_BY_PATH} AND dir = ?"
                f" AND (state = 'done' OR (state = 'skipped' AND reason IN ({', '.join('?' * len(VIDEO_DECLINED))}) AND permanent))"
                " AND ctime_ns IS NOT NULL AND size IS NOT NULL AND policy_digest IS NOT NULL",
                (str(root), folder, *sorted(VIDEO_DECLINED)),
            ).fetchall()
        return {r["relpath"]: conforming(r) for r in rows}

    def next_queued(self, limit: int, exclude: Iterable[int]) -> list[Job]:
        """Up to ``limit`` queued jobs due now, oldest first, skipping ids in ``exclude``."""
        skip = set(exclude)
        with self.pool.read() as conn:
            # A library detached from every folder (its path given to another) waits.
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} WHERE f.state = 'queued' AND f.not_before <= ? AND l.path IS NOT NULL"
                " ORDER BY f.not_before, f.id LIMIT ?",
                (time.time(), limit + len(skip)),
            ).fetchall()
        jobs = [_job(r) for r in rows if r["id"] not in skip]
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
            library_id, library = _library_of(conn, root, now)
            row = conn.execute(
                "INSERT INTO files (library_id, root, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns,"
                " fingerprint, attempts, permanent, not_before, queued_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)"
                " ON CONFLICT (library_id, relpath) DO UPDATE SET state = 'queued', root = excluded.root,"
                " size = COALESCE(excluded.size, size), mtime_ns = COALESCE(excluded.mtime_ns, mtime_ns),"
                " inode = COALESCE(excluded.inode, inode), device = COALESCE(excluded.device, device),"
                " ctime_ns = CASE WHEN excluded.size IS NULL THEN ctime_ns ELSE excluded.ctime_ns END,"
                # While an interrupted plan is pending, the queued fingerprint must stay the
                # pre-change one so the redo can tell the change already happened.
                " fingerprint = CASE WHEN files.pending_actions IS NULL THEN excluded.fingerprint"
                " ELSE files.fingerprint END, attempts = 0, permanent = 0, not_before = 0,"
                " reason = NULL, last_error = NULL, worker = NULL, owner_id = NULL, lease_token = NULL,"
                " lease_until = NULL, queued_at = excluded.queued_at, updated_at = excluded.updated_at"
                " WHERE files.state != 'processing'"
                " RETURNING id, attempts, fingerprint, pending_actions",
                (library_id, str(root), relpath, _folder(relpath), *_stat_columns(stat), fingerprint, now, now),
            ).fetchone()
        if row is None:
            return None
        pending = pending_actions(row["pending_actions"])
        return Job(row["id"], root, relpath, row["fingerprint"], row["attempts"], pending, library=library)

    def abandon_dead_owners(self, kinds: Sequence[str] = ("process",)) -> list[Path]:
        """Mark rows left ``processing`` by a dead owner (:meth:`owner_alive`) of one of
        ``kinds`` as ``failed`` (reason ``interrupted``, not permanent, so the next run or
        rescan takes them again); returns their paths. This store's own owner is alive."""
        now = time.time()
        # A read first: the daemon asks every few seconds, and nearly always nobody died.
        with self.pool.read() as conn:
            owners = [
                self._owner_row(r)
                for r in conn.execute(
                    "SELECT * FROM owners WHERE id IN (SELECT DISTINCT owner_id FROM files"
                    f" WHERE state = 'processing') AND kind IN ({','.join('?' * len(kinds))})",
                    tuple(kinds),
                )
            ]
        dead = [o for o in owners if not self._owner_is_alive(o, now)]
        if not dead:
            return []
        with self.pool.transaction() as conn:
            paths: list[Path] = []
            for owner in dead:
                rows = conn.execute(
                    "SELECT COALESCE(l.path, f.root) AS root, f.relpath FROM files AS f"
                    " JOIN libraries AS l ON l.id = f.library_id WHERE f.state = 'processing' AND f.owner_id = ?",
                    (owner.id,),
                ).fetchall()
                paths += [Path(r["root"]) / os.fsdecode(bytes(r["relpath"])) for r in rows]
                conn.execute(
                    "UPDATE files SET state = ?, permanent = 0, reason = ?,"
                    f" last_error = ?, {_NO_CLAIM}, updated_at = ?"
                    " WHERE state = 'processing' AND owner_id = ?",
                    (Status.FAILED, Reason.INTERRUPTED, f"{owner.describe()} ended while processing this file", now, owner.id),
                )
            return paths

    # -- owners (see vpod.db.owners) ---------------------------------------------------

    def register_owner(
        self, kind: str, *, heartbeat_seconds: float = HEARTBEAT_SECONDS, node: str | None = None,
        version: str | None = None, workers: int | None = None,
    ) -> OwnerRecord:
        """Record this process as an owner of ``kind`` (``daemon`` or ``process``) of
        ``node`` (default: the host name), with its ``version`` and ``workers``; rows this
        store claims from now on name it. A daemon's earlier incarnations on the same node
        end now and the rows they had in progress are queued again at once (attempts kept,
        leases dropped: a write of theirs, if one still ran, fails its compare-and-set).
        Owner records of ended or dead owners that no row names any more are removed.
        Returns the record.

        Raises:
            ValueError: an unknown ``kind``.
        """
        if kind not in OWNER_KINDS:
            raise ValueError(f"owner kind {kind!r}: expected one of {OWNER_KINDS}")
        now = time.time()
        pid = os.getpid()
        host = this_host()
        node = node or host
        with self.pool.transaction() as conn:
            row = conn.execute(
                "INSERT INTO owners (kind, host, pid, pid_start, incarnation, started_at, heartbeat_at,"
                " heartbeat_seconds, node, version, workers, clock_offset)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0.0) RETURNING *",
                (kind, host, pid, process_start(pid), new_incarnation(), now, now, heartbeat_seconds, node,
                 version, workers),
            ).fetchone()  # fmt: skip
            self.owner = self._owner_row(row)
            if kind == "daemon":
                earlier = "SELECT id FROM owners WHERE kind = 'daemon' AND COALESCE(node, host) = ? AND id != ?"
                released = conn.execute(
                    f"UPDATE files SET state = 'queued', {_NO_CLAIM}, updated_at = ?"
                    f" WHERE state = 'processing' AND owner_id IN ({earlier})",
                    (now, node, self.owner.id),
                ).rowcount
                self.owner = replace(self.owner, released=released)
                conn.execute(
                    f"UPDATE owners SET ended_at = ? WHERE ended_at IS NULL AND id IN ({earlier})",
                    (now, node, self.owner.id),
                )
            gone = [
                o.id for o in map(self._owner_row, conn.execute(
                    "SELECT * FROM owners WHERE id != ? AND NOT EXISTS (SELECT 1 FROM files WHERE owner_id = owners.id)",
                    (self.owner.id,),
                ))
                if not self._owner_is_alive(o, now)
            ]  # fmt: skip
            conn.executemany("DELETE FROM owners WHERE id = ?", [(i,) for i in gone])
        return self.owner

    def heartbeat(self, **info: object) -> None:
        """Renew this store's owner's heartbeat (nothing without :meth:`register_owner`);
        ``info`` may update ``workers`` (int) and ``version`` (str); other keys are
        ignored. The clock offset is 0: on SQLite the database's clock is this node's."""
        if self.owner is None:
            return
        workers, version = info.get("workers"), info.get("version")
        with self.pool.transaction() as conn:
            conn.execute(
                "UPDATE owners SET heartbeat_at = ?, clock_offset = 0.0, workers = COALESCE(?, workers),"
                " version = COALESCE(?, version) WHERE id = ?",
                (time.time(), workers if isinstance(workers, int) else None,
                 version if isinstance(version, str) else None, self.owner.id),
            )  # fmt: skip

    def end_owner(self) -> None:
        """This store's owner ends cleanly: its record goes (or is marked ended while a
        row still names it, which is then released as a dead owner's)."""
        if self.owner is None:
            return
        with self.pool.transaction() as conn:
            conn.execute("UPDATE owners SET ended_at = ? WHERE id = ?", (time.time(), self.owner.id))
            conn.execute(
                "DELETE FROM owners WHERE id = ? AND NOT EXISTS (SELECT 1 FROM files WHERE owner_id = owners.id)",
                (self.owner.id,),
            )
        self.owner = None

    def owner_alive(self, owner_id: int) -> bool:
        """Whether the owner ``owner_id`` is alive (:func:`vpod.db.owners.is_alive`); an
        owner without a record is not."""
        with self.pool.read() as conn:
            return self._alive(conn, owner_id, time.time()) is True

    def _alive(self, conn: sqlite3.Connection, owner_id: int | None, now: float) -> bool | None:
        """:meth:`owner_alive` on ``conn``; ``None`` for a row without an owner record."""
        if owner_id is None:
            return None
        row = conn.execute("SELECT * FROM owners WHERE id = ?", (owner_id,)).fetchone()
        return row is not None and self._owner_is_alive(self._owner_row(row), now)

    def _owner_is_alive(self, owner: OwnerRecord, now: float) -> bool:
        if self.owner is not None and owner.id == self.owner.id:
            return True
        return is_alive(owner, now=now, host=self._host)

    _owner_row = staticmethod(owner_record)

    # -- libraries (see vpod.libraries) ------------------------------------------------

    def bind_libraries(self, folders: dict[Path, str]) -> list[LibraryChange]:
        """Make each library name of ``folders`` (folder -> name, this node's config)
        name that folder; returns what changed.

        For each (folder, name): a library of that name moves to the folder
        (``moved``: its files keep their history, nothing is processed again); else a
        library of that folder takes the name (``renamed``); else a new library is made
        (``new``). A library that had the folder and is not named gives it up (its path
        becomes empty: its rows stay, as history). Rename or move one at a time: a
        library whose name and folder both changed is a new one.
        """
        now = time.time()
        changes: list[LibraryChange] = []
        with self.pool.transaction() as conn:
            for folder, name in folders.items():
                path = os.fspath(folder)
                by_name = conn.execute("SELECT id, path FROM libraries WHERE name = ?", (name,)).fetchone()
                by_path = conn.execute("SELECT id, name FROM libraries WHERE path = ?", (path,)).fetchone()
                if by_name is not None and by_name["path"] == path:
                    continue
                if by_name is not None:
                    if by_path is not None:
                        conn.execute("UPDATE libraries SET path = NULL WHERE id = ?", (by_path["id"],))
                    conn.execute("UPDATE libraries SET path = ?, moved_at = ? WHERE id = ?", (path, now, by_name["id"]))
                    conn.execute("UPDATE files SET root = ? WHERE library_id = ?", (path, by_name["id"]))
                    changes.append(LibraryChange(name, path, "moved", by_name["path"]))
                elif by_path is not None:
                    conn.execute("UPDATE libraries SET name = ? WHERE id = ?", (name, by_path["id"]))
                    changes.append(LibraryChange(name, path, "renamed", by_path["name"]))
                else:
                    conn.execute(
                        "INSERT INTO libraries (name, path, created_at, uid) VALUES (?, ?, ?, ?)",
                        (name, path, now, new_token()),
                    )
                    changes.append(LibraryChange(name, path, "new", None))
        return changes

    def libraries(self) -> list[Library]:
        """Every library, by name: its folder on this node (``None``: none now) and how
        many files it has."""
        with self.pool.read() as conn:
            return [
                Library(r["name"], r["path"], r["files"], r["uid"])
                for r in conn.execute(
                    "SELECT l.name, l.path, l.uid, (SELECT COUNT(*) FROM files WHERE library_id = l.id) AS files"
                    " FROM libraries AS l ORDER BY l.name"
                )
            ]

    def start(self, job: Job, worker: str, batch_id: str, *, lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """Claim the named ``job`` for ``worker`` of this store's owner (:meth:`register_owner`)
        with a fresh lease of ``lease_seconds``; returns it with its :attr:`Job.lease`
        (``attempts`` as before this start), or ``None`` when it is no longer queued."""
        with self.pool.transaction() as conn:
            token = self._take(conn, job.id, "state = 'queued'", worker, batch_id, lease_seconds)
            return replace(job, lease=token) if token is not None else None

    def _take(
        self, conn: sqlite3.Connection, file_id: int, only_if: str, worker: str, batch_id: str, lease_seconds: float
    ) -> str | None:
        """Make row ``file_id`` (when ``only_if`` holds) this owner's claim for ``worker``:
        ``processing``, attempts + 1, progress cleared, a fresh token and a lease of
        ``lease_seconds``; returns the token, or ``None`` when the row did not qualify."""
        now = time.time()
        token = new_token()
        cursor = conn.execute(
            "UPDATE files SET state = 'processing', worker = ?, owner_id = ?, batch_id = ?, started_at = ?,"
            " attempts = attempts + 1, updated_at = ?, lease_token = ?, lease_until = ?,"
            f" progress_percent = NULL, eta_seconds = NULL, progress_at = NULL WHERE id = ? AND {only_if}",
            (worker, self._owner_id(), batch_id, now, now, token, now + lease_seconds, file_id),
        )
        return token if cursor.rowcount == 1 else None

    def _owner_id(self) -> int | None:
        return self.owner.id if self.owner is not None else None

    def claim(
        self, worker: str, batch_id: str, *, libraries: Collection[str] | None = None,
        lease_seconds: float = LEASE_SECONDS, exclude: Collection[int] = (),
    ) -> Job | None:
        """Claim the oldest job due now for ``worker``: a ``queued`` row whose retry time
        has passed, or a ``processing`` row whose lease ended (``lease_until`` at or before
        now), of a library in ``libraries`` (``None``: any library with a folder here; an
        empty collection: none). One write transaction (``BEGIN IMMEDIATE`` serializes it
        against every other writer of the file, so two claims never get one row). The row
        becomes ``processing`` with attempts + 1, this owner, a fresh token and a lease of
        ``lease_seconds``; returns the job (``attempts`` as before this claim), or ``None``.
        Job ids in ``exclude`` are passed over."""
        if libraries is not None and not libraries:
            return None
        names = sorted(set(libraries)) if libraries is not None else []
        only = f" AND l.name IN ({','.join('?' * len(names))})" if libraries is not None else ""
        skipped = sorted(set(exclude))
        if skipped:
            only += f" AND f.id NOT IN ({','.join('?' * len(skipped))})"
        now = time.time()
        with self.pool.transaction() as conn:
            # One query per state, each read in the order of its index, then the older of
            # the two: one query with "queued OR processing" sorted every queued row
            # (60 ms per claim with a catch-up's 100,000 queued, under the write lock
            # every intake waits for; BENCHMARKS.md, catch-up scan).
            candidates = [
                conn.execute(
                    "SELECT f.id, f.not_before FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
                    f" WHERE l.path IS NOT NULL AND f.state = ? AND {due} <= ?{only}"
                    " ORDER BY f.not_before, f.id LIMIT 1",
                    (state, now, *names, *skipped),
                ).fetchone()
                for state, due in (("queued", "f.not_before"), ("processing", "f.lease_until"))
            ]
            found = min((row for row in candidates if row is not None), key=lambda row: (row[1], row[0]), default=None)
            if found is None:
                return None
            self._take(conn, found["id"], "1", worker, batch_id, lease_seconds)
            row = conn.execute(f"SELECT {_JOB_COLUMNS} WHERE f.id = ?", (found["id"],)).fetchone()
            return _job(row, attempts_before=row["attempts"] - 1)

    def renew_leases(self, jobs: Sequence[Job], lease_seconds: float = LEASE_SECONDS) -> set[int]:
        """Extend to now + ``lease_seconds`` the lease of each of ``jobs`` whose row is
        ``processing`` and still holds its token; returns the ids renewed. One transaction."""
        claimed = [j for j in jobs if j.lease is not None]
        if not claimed:
            return set()
        now = time.time()
        renewed: set[int] = set()
        with self.pool.transaction() as conn:
            for job in claimed:
                cursor = conn.execute(
                    "UPDATE files SET lease_until = ? WHERE id = ? AND state = 'processing' AND lease_token = ?",
                    (now + lease_seconds, job.id, job.lease),
                )
                if cursor.rowcount:
                    renewed.add(job.id)
        return renewed

    def confirm_lease(self, job: Job, lease_seconds: float = LEASE_SECONDS) -> bool:
        """The compare-and-set before a file is replaced or edited: True (and the lease
        extended to now + ``lease_seconds``) only while the row is ``processing``, holds
        ``job.lease`` and its lease has not ended; a job without a lease is confirmed."""
        if job.lease is None:
            return True
        now = time.time()
        with self.pool.transaction() as conn:
            cursor = conn.execute(
                "UPDATE files SET lease_until = ? WHERE id = ? AND state = 'processing' AND lease_token = ?"
                " AND lease_until > ?",
                (now + lease_seconds, job.id, job.lease, now),
            )
            return cursor.rowcount == 1

    @contextlib.contextmanager
    def scan_lock(self, library: str) -> Iterator[bool]:
        """One node: the scan lock is always this node's."""
        yield True

    def wait_for_work(self, timeout: float) -> bool:
        """One node: no other node signals work (the caller's own wake-ups do)."""
        return False

    def nodes(self) -> list[NodeRecord]:
        """Every daemon owner that has not ended (a crashed one stays until its rows are
        released), this store's own first: node, host, pid, version, workers, heartbeat
        age, clock offset (0 on SQLite) and the paths it has in progress."""
        now = time.time()
        me = self._owner_id()
        with self.pool.read() as conn:
            owners = conn.execute(
                "SELECT * FROM owners WHERE kind = 'daemon' AND ended_at IS NULL"
                " ORDER BY id != ?, COALESCE(node, host), id",
                (me if me is not None else -1,),
            ).fetchall()
            doing: dict[int, list[str]] = {}
            for r in conn.execute(
                "SELECT f.owner_id, COALESCE(l.path, f.root) AS root, f.relpath FROM files AS f"
                " JOIN libraries AS l ON l.id = f.library_id WHERE f.state = 'processing' AND f.owner_id IS NOT NULL"
                " ORDER BY f.started_at"
            ):
                doing.setdefault(r["owner_id"], []).append(_text_path(r["root"], r["relpath"]))
        return [
            NodeRecord(
                r["node"] or r["host"], r["host"], r["pid"], r["version"], r["workers"], r["started_at"],
                r["heartbeat_at"], max(0.0, now - r["heartbeat_at"]), r["clock_offset"],
                self._owner_is_alive(self._owner_row(r), now), tuple(doing.get(r["id"], ())),
            )
            for r in owners
        ]

    def note_progress(self, job: Job, percent: float, eta_seconds: float | None) -> None:
        """Record how far a remux of a file in progress is (cleared by :meth:`start`)."""
        with self.pool.transaction() as conn:
            conn.execute(
                "UPDATE files SET progress_percent = ?, eta_seconds = ?, progress_at = ?"
                f" WHERE id = ? AND state = 'processing' AND {_HOLDS_LEASE}",
                (percent, eta_seconds, time.time(), job.id, job.lease, job.lease),
            )

    def note_plan(self, job: Job, actions: Sequence[str]) -> None:
        """Record the actions about to be applied (cleared by :meth:`finish`)."""
        with self.pool.transaction() as conn:
            conn.execute(
                f"UPDATE files SET pending_actions = ?, updated_at = ? WHERE id = ? AND {_HOLDS_LEASE}",
                (json.dumps(list(actions)), time.time(), job.id, job.lease, job.lease),
            )

    def finish(self, job: Job, outcome: Outcome, batch_id: str | None) -> None:
        """Record a final outcome: ``done``, ``failed`` or ``skipped``, plus a result row.

        ``outcome.policy_digest`` is kept with ``result_fingerprint`` (NULL without one):
        the pair is what :meth:`enqueue` matches a copy at another path against.

        Texts (error, reason, track codec/language/title) are stored as valid UTF-8
        (:func:`~vpod.results.utf8_text`): an error naming a non-UTF-8 file must not
        fail the write and leave the file ``processing``.

        Raises:
            LeaseLost: ``job.lease`` is set and the row no longer holds it; nothing written.
        """
        result = outcome.result
        state = result.status
        digest = outcome.policy_digest if outcome.result_fingerprint is not None else None
        now = time.time()
        with self.pool.transaction() as conn:
            self._check_lease(conn, job)
            self._insert_result(conn, job, result, batch_id, outcome.result_fingerprint)
            stat_cols = _stat_columns(outcome.result_stat)
            conn.execute(
                "UPDATE files SET state = ?, result_fingerprint = ?, policy_digest = ?, permanent = ?,"
                f" reason = ?, last_error = ?, {_NO_CLAIM}, pending_actions = NULL, updated_at = ?,"
                " size = COALESCE(?, size), mtime_ns = COALESCE(?, mtime_ns),"
                " inode = COALESCE(?, inode), device = COALESCE(?, device),"
                " ctime_ns = CASE WHEN ? THEN ctime_ns ELSE ? END, policy_name = ?, policy_why = ?"
                " WHERE id = ?",
                (
                    state, outcome.result_fingerprint, digest, int(result.permanent), utf8_text(result.reason),
                    utf8_text(result.error), now, *stat_cols[:4], outcome.result_stat is None, stat_cols[4],
                    utf8_text(outcome.policy_name),
                    utf8_text(outcome.policy_why), job.id,
                ),
            )
            file_id = job.id
            if outcome.final_relpath is not None and outcome.final_relpath != job.relpath:
                file_id = self._upsert_done(conn, job, outcome.final_relpath, outcome, now)
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

    def _upsert_done(self, conn: sqlite3.Connection, job: Job, relpath: bytes, outcome: Outcome, now: float) -> int:
        row = conn.execute(
            "INSERT INTO files (library_id, root, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns,"
            " fingerprint, result_fingerprint, policy_digest, policy_name, policy_why, updated_at)"
            " SELECT library_id, root, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM files WHERE id = ?"
            " ON CONFLICT (library_id, relpath) DO UPDATE SET state = 'done', size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " ctime_ns = excluded.ctime_ns,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " policy_digest = excluded.policy_digest, policy_name = excluded.policy_name,"
            " policy_why = excluded.policy_why,"
            " reason = NULL, last_error = NULL, updated_at = excluded.updated_at RETURNING id",
            (
                relpath, _folder(relpath), *_stat_columns(outcome.result_stat),
                outcome.result_fingerprint, outcome.result_fingerprint, outcome.policy_digest,
                utf8_text(outcome.policy_name), utf8_text(outcome.policy_why), now, job.id,
            ),
        ).fetchone()
        file_id: int = row[0]
        return file_id

    def retry_later(
        self, job: Job, result: FileProcessingResult, delay_seconds: float, batch_id: str | None,
        *, counted: bool = True,
    ) -> None:
        """Put a job back in the queue after a transient failure, due in ``delay_seconds``;
        ``counted=False`` gives the attempt back (waiting for free space).

        Raises:
            LeaseLost: ``job.lease`` is set and the row no longer holds it; nothing written.
        """
        with self.pool.transaction() as conn:
            self._check_lease(conn, job)
            self._insert_result(conn, job, result, batch_id, None)
            conn.execute(
                # pending_actions stays: the failure may have come after the change (the
                # redo then counts it); if it came before, the content is unchanged and
                # the redo plans and counts the change itself.
                "UPDATE files SET state = 'queued', not_before = ?, reason = ?, last_error = ?,"
                " attempts = CASE WHEN ? THEN attempts ELSE MAX(attempts - 1, 0) END,"
                f" {_NO_CLAIM}, updated_at = ? WHERE id = ?",
                (time.time() + delay_seconds, utf8_text(result.reason), utf8_text(result.error), counted,
                 time.time(), job.id),
            )  # fmt: skip

    def read_content(self, job: Job, fingerprint: str, stat: StatKey, policy_digest: str | None) -> bool:
        """See :meth:`vpod.db.store.Store.read_content`: the same-content rule of
        :meth:`enqueue` (:func:`_vouched_contents`), applied by the worker to a file a walk
        queued unread."""
        now = time.time()
        with self.pool.transaction() as conn:
            self._check_lease(conn, job)
            twin = policy_digest is not None and conn.execute(
                "SELECT 1 FROM files WHERE policy_digest = ? AND state = 'done' AND result_fingerprint = ? AND id != ?"
                " LIMIT 1",
                (policy_digest, fingerprint, job.id),
            ).fetchone() is not None
            if twin:
                conn.execute(
                    f"UPDATE files SET state = 'done', fingerprint = ?, result_fingerprint = ?, policy_digest = ?,"
                    f" attempts = 0, permanent = 0, reason = NULL, last_error = NULL, {_NO_CLAIM},"
                    " pending_actions = NULL, size = ?, mtime_ns = ?, inode = ?, device = ?, ctime_ns = ?,"
                    " updated_at = ? WHERE id = ?",
                    (fingerprint, fingerprint, policy_digest, *_stat_columns(stat), now, job.id),
                )
            else:
                conn.execute(
                    "UPDATE files SET fingerprint = ?, size = ?, mtime_ns = ?, inode = ?, device = ?, ctime_ns = ?,"
                    " updated_at = ? WHERE id = ?",
                    (fingerprint, *_stat_columns(stat), now, job.id),
                )
            return twin

    def release(self, job: Job) -> None:
        """Return a job that was claimed but not worked on (shutdown, paused) to the queue,
        its attempt given back, only while the row holds ``job.lease``."""
        with self.pool.transaction() as conn:
            conn.execute(
                f"UPDATE files SET state = 'queued', attempts = MAX(attempts - 1, 0), {_NO_CLAIM},"
                f" updated_at = ? WHERE id = ? AND state = 'processing' AND {_HOLDS_LEASE}",
                (time.time(), job.id, job.lease, job.lease),
            )

    @staticmethod
    def _check_lease(conn: sqlite3.Connection, job: Job) -> None:
        """Raise :class:`LeaseLost` (rolling the transaction back) unless the row still
        holds ``job.lease``; a job without a lease passes."""
        if job.lease is None:
            return
        row = conn.execute("SELECT lease_token FROM files WHERE id = ?", (job.id,)).fetchone()
        if row is None or row["lease_token"] != job.lease:
            raise LeaseLost(f"{display_path(job.path)}: another claim took this file; this result is discarded")

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

    def requeue_interrupted(self) -> int:
        """Return jobs a crashed daemon left ``processing`` to the queue; returns how many.
        Rows of a daemon owner that is not alive (:meth:`owner_alive`) or of no owner
        go; a ``vpod process``'s rows are left to :meth:`abandon_dead_owners`."""
        now = time.time()
        with self.pool.transaction() as conn:
            owners = [
                self._owner_row(r)
                for r in conn.execute(
                    "SELECT * FROM owners WHERE kind = 'daemon' AND id IN"
                    " (SELECT DISTINCT owner_id FROM files WHERE state = 'processing')"
                )
            ]
            dead = [o.id for o in owners if not self._owner_is_alive(o, now)]
            cursor = conn.execute(
                f"UPDATE files SET state = 'queued', {_NO_CLAIM}, updated_at = ?"
                f" WHERE state = 'processing' AND (owner_id IS NULL OR owner_id IN ({','.join('?' * len(dead))}))",
                (now, *dead),
            )
            return cursor.rowcount

    def requeue_hardlinked(
        self, digest_of: Callable[[str, Path, bytes], str | None], reason: Reason = Reason.HARDLINKED
    ) -> list[Path]:
        """Queue again, with fresh attempts, the files skipped with ``reason`` whose
        recorded policy digest differs from ``digest_of(library, folder, relpath)`` (the
        policy that judges them now); returns their paths. ``digest_of`` runs outside any
        transaction (it may read folder policy files); a row that changed meanwhile is
        left alone."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT f.id, l.name, l.path, f.relpath, f.policy_digest FROM files AS f"
                " JOIN libraries AS l ON l.id = f.library_id"
                " WHERE f.state = 'skipped' AND f.reason = ? AND l.path IS NOT NULL",
                (reason,),
            ).fetchall()
        stale = [
            (r["id"], r["policy_digest"], Path(r["path"]) / os.fsdecode(bytes(r["relpath"])))
            for r in rows
            if digest_of(r["name"], Path(r["path"]), bytes(r["relpath"])) != r["policy_digest"]
        ]
        requeued: list[Path] = []
        now = time.time()
        with self.pool.transaction() as conn:
            for file_id, digest, path in stale:
                cursor = conn.execute(
                    "UPDATE files SET state = 'queued', attempts = 0, permanent = 0, not_before = 0, reason = NULL,"
                    " last_error = NULL, queued_at = ?, updated_at = ?"
                    " WHERE id = ? AND state = 'skipped' AND reason = ? AND policy_digest IS ?",
                    (now, now, file_id, reason, digest),
                )
                if cursor.rowcount:
                    requeued.append(path)
        return requeued

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
                    " result_fingerprint, policy_digest, size, mtime_ns, inode, device, ctime_ns, policy_name, policy_why"
                    " FROM files"
                    " WHERE root = ? AND relpath = ?",
                    (str(root), os.fsencode(path.relative_to(root))),
                ).fetchone()
                if row is not None:
                    return file_record(row, row["root"])
        return None

    # -- batches -------------------------------------------------------------------

    def record_batch(self, batch: BatchResult, source: str) -> None:
        """Store a closed batch (``source`` is ``daemon`` or ``process``), with the node of
        this store's owner (the host name without :meth:`register_owner`)."""
        counts = batch.counts()
        owner = self.owner.id if self.owner is not None else None
        with self.pool.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batches (batch_id, source, started_at, ended_at, total_files,"
                " success_count, fail_count, skipped_count, total_duration_seconds, stopped_early, node)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE((SELECT node FROM owners WHERE id = ?), ?))",
                (
                    batch.batch_id, source, batch.started_at, batch.ended_at, counts["total_files"],
                    counts["success_count"], counts["fail_count"], counts["skipped_count"],
                    batch.total_duration_seconds, int(batch.stopped_early), owner, self._host,
                ),
            )

    # -- temp files ----------------------------------------------------------------

    def register_temp(self, path: Path, job: Job | None = None) -> None:
        """Remember a temp file before creating it, so a crash cannot leave it behind;
        ``job``: the claim it belongs to (:meth:`pending_temps` leaves it out while that
        claim's lease lasts)."""
        with self.pool.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO temp_files (path, created_at, job_id, lease_token) VALUES (?, ?, ?, ?)",
                (os.fsencode(path), time.time(), job.id if job else None, job.lease if job else None),
            )

    def forget_temp(self, path: Path) -> None:
        """The temp file is gone (renamed into place or removed)."""
        with self.pool.transaction() as conn:
            conn.execute("DELETE FROM temp_files WHERE path = ?", (os.fsencode(path),))

    def pending_temps(self) -> list[Path]:
        """Temp files registered and not forgotten whose claim's lease is gone (or that
        name no claim): left by a crash, or by a claim another node took since."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT t.path FROM temp_files AS t WHERE t.lease_token IS NULL OR NOT EXISTS (SELECT 1 FROM files AS f"
                " WHERE f.id = t.job_id AND f.state = 'processing' AND f.lease_token = t.lease_token"
                " AND f.lease_until > ?)",
                (time.time(),),
            ).fetchall()
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
            running = [
                in_progress(r, now, self._alive(conn, r["owner_id"], now))
                for r in conn.execute(
                    "SELECT COALESCE(l.path, f.root) AS root, l.name AS library, f.relpath, f.worker, f.owner_id,"
                    " f.batch_id, f.started_at, f.attempts, f.progress_percent, f.eta_seconds, f.progress_at"
                    " FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
                    " WHERE f.state = 'processing' ORDER BY f.started_at"
                ).fetchall()
            ]
            last_batches = [
                batch_record(r)
                for r in conn.execute(web_reads.BATCHES_SQL, (True, batches))
            ]
            last_failures = [
                failure_record(r)
                for r in conn.execute(
                    "SELECT f.id, COALESCE(l.path, f.root) AS root, f.relpath, f.reason, f.last_error, f.updated_at,"
                    " f.attempts, f.policy_name FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
                    " WHERE f.state = 'failed' ORDER BY f.updated_at DESC LIMIT ?",
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
        return QueueReport(counts, counts["queued"], running, last_batches, last_failures, waiting_for_space)

    def _reading(self) -> ContextManager[Any]:
        return self.pool.read()

    def _located(self) -> web_reads.Located:
        return web_reads.Located("COALESCE(l.path, f.root)")

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
                    row = conn.execute(
                        f"SELECT id, state FROM files WHERE library_id = {_LIBRARY_BY_PATH} AND relpath = ?", key
                    ).fetchone()
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
            f" last_error = NULL, {_NO_CLAIM}, queued_at = ?, updated_at = ? WHERE {where}",
            (now, now, *args),
        ).rowcount


class _Rollback(Exception):
    """Ends a transaction on purpose (rolled back by the pool)."""


