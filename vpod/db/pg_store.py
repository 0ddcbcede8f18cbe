"""The :class:`~vpod.db.store.Store` on PostgreSQL: several nodes on one library.

Same semantics as :mod:`vpod.db.sqlite_store` (the contract suite,
tests/unit/test_store_contract.py, runs on both), with what several nodes need:

- A library's folder is per node (``library_mounts``): :attr:`Job.root` is this node's
  folder, and a node claims only from libraries it has a folder for.
- :meth:`PgStore.claim` takes the oldest due row in one statement, ``UPDATE ... WHERE id
  = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``, so two nodes never claim one row,
  with a fresh lease token and ``lease_until`` from the database clock
  (``clock_timestamp()``). Writes about a claimed job are compare-and-sets on its token.
- Enqueue is an upsert on (library, relative path) that never turns a row another node
  has queued or in progress back (two nodes seeing one new file make one job).
- Work queued sends ``NOTIFY vpod_work``; :meth:`PgStore.wait_for_work` ``LISTEN``s on a
  connection of its own. The catch-up scan lock is a session advisory lock.
- Times are epoch seconds of the database clock, the one clock every node shares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection, ContextManager, Iterable, Iterator, Sequence

import psycopg
from psycopg.rows import DictRow

from vpod.db.enqueue_rules import Write, decide, digest_of
from vpod.db.rows import (
    batch_record, conforming, failure_record, file_record, folder_of, in_progress, owner_record, pending_actions, stat_columns,
    text_path,
)
from vpod.db.owners import HEARTBEAT_SECONDS, OWNER_KINDS, OwnerRecord, is_alive, new_incarnation, process_start, this_host
from vpod.db import web_reads
from vpod.db.pg_pool import PgConnection, PgPool
from vpod.db.pg_schema import SCHEMA_VERSION, migrate
from vpod.db.records import (
    AttemptRecord, BatchRecord, Conforming, FileListing, FileRecord, HourStats, Library, LibraryChange, NodeRecord,
    QueueReport, RetryOutcome, SpaceWait,
)
from vpod.db.store import LEASE_SECONDS, EnqueueEntry, EnqueueOutcome, Job, Outcome, StoreError, WalkedFolder
from vpod.errors import LeaseLost
from vpod.fingerprint import StatKey, is_unread, unread_size
from vpod.libraries import adhoc_name
from vpod.outcomes import VIDEO_DECLINED, Reason, Status
from vpod.results import BatchResult, FileProcessingResult, display_path, utf8_text

NOW = "extract(epoch from clock_timestamp())::float8"
"""The database clock in epoch seconds, in SQL."""
CHANNEL = "vpod_work"
"""The ``NOTIFY`` channel work is announced on."""
SCAN_LOCK_CLASS = 0x7670_6F64  # "vpod": the first key of the scan locks' pg_try_advisory_lock(int, int)

_JOB_COLUMNS = (
    "f.id, m.path AS root, l.name AS library, f.relpath, f.fingerprint, f.attempts, f.pending_actions,"
    " f.lease_token"
)
_CANDIDATE = (
    "SELECT c.id FROM files AS c"
    " JOIN library_mounts AS cm ON cm.library_id = c.library_id AND cm.node = %(node)s"
    " JOIN libraries AS cl ON cl.id = c.library_id"
    " WHERE (%(names)s::text[] IS NULL OR cl.name = ANY(%(names)s::text[]))"
    " AND NOT (c.id = ANY(%(exclude)s::bigint[])) AND"
)
"""The start of a claim's candidate query (files of this node's libraries, ``names`` only); a condition follows."""
_CLEAR_CLAIM = "worker = NULL, owner_id = NULL, lease_token = NULL, lease_until = NULL"


def _job(row: dict[str, Any]) -> Job:
    pending = pending_actions(row["pending_actions"])
    return Job(
        row["id"], Path(row["root"]), bytes(row["relpath"]), row["fingerprint"], row["attempts"], pending,
        library=row["library"], lease=row["lease_token"],
    )


def _db_now(conn: PgConnection) -> float:
    row = conn.execute(f"SELECT {NOW} AS now").fetchone()
    assert row is not None
    return float(row["now"])


def _notify(conn: PgConnection) -> None:
    """Announce queued work; delivered when the transaction commits (NOTIFY, PostgreSQL docs)."""
    conn.execute(f"NOTIFY {CHANNEL}")


class PgStore(web_reads.WebReads):
    """PostgreSQL implementation of the Store protocol (see :mod:`vpod.db.store`).

    Args:
        pool: the connections (:class:`~vpod.db.pg_pool.PgPool`); the schema is migrated
            on construction.
        node: this node's name (``[node] name``): whose folders ``library_mounts`` gives.

    Raises:
        StoreError: the schema is newer than this vpod understands, or cannot be migrated.
    """

    def __init__(self, pool: PgPool, *, node: str) -> None:
        self.pool = pool
        self.node = node
        self.owner: OwnerRecord | None = None
        self._owner_node: str | None = None  # the node name this process registered as
        self._host = this_host()
        self._listen_lock = threading.Lock()
        self._listener: PgConnection | None = None
        with pool.transaction() as conn:
            migrate(conn, pool.location)

    @property
    def location(self) -> str:
        """The database URL without its password."""
        return self.pool.location

    def close(self) -> None:
        """Close the connections; later calls raise :class:`StoreError`."""
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self.pool.close()

    # -- libraries: per node ---------------------------------------------------------

    def _library_of(self, conn: PgConnection, root: Path) -> tuple[int, str]:
        """``(id, name)`` of the library whose folder on this node is ``root``; a folder no
        library has becomes an ad-hoc library named by its path (:func:`adhoc_name`)."""
        row = conn.execute(
            "SELECT l.id, l.name FROM library_mounts AS m JOIN libraries AS l ON l.id = m.library_id"
            " WHERE m.node = %s AND m.path = %s",
            (self.node, os.fspath(root)),
        ).fetchone()
        if row is None:
            row = conn.execute(
                f"INSERT INTO libraries (name, created_at) VALUES (%s, {NOW})"
                " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id, name",
                (adhoc_name(root), ),
            ).fetchone()
            assert row is not None
            conn.execute(
                "INSERT INTO library_mounts (library_id, node, path) VALUES (%s, %s, %s)"
                " ON CONFLICT (library_id, node) DO UPDATE SET path = excluded.path",
                (row["id"], self.node, os.fspath(root)),
            )
        return int(row["id"]), str(row["name"])

    def bind_libraries(self, folders: dict[Path, str]) -> list[LibraryChange]:
        """Name this node's library folders (folder -> name); see
        :meth:`vpod.db.sqlite_store.SqliteStore.bind_libraries`. A library other nodes
        know gets this node's folder as ``moved`` (``previous``: this node's folder
        before, ``None`` when it had none)."""
        changes: list[LibraryChange] = []
        with self.pool.transaction() as conn:
            for folder, name in folders.items():
                path = os.fspath(folder)
                by_name = conn.execute(
                    "SELECT l.id, m.path FROM libraries AS l LEFT JOIN library_mounts AS m"
                    " ON m.library_id = l.id AND m.node = %s WHERE l.name = %s",
                    (self.node, name),
                ).fetchone()
                by_path = conn.execute(
                    "SELECT l.id, l.name FROM library_mounts AS m JOIN libraries AS l ON l.id = m.library_id"
                    " WHERE m.node = %s AND m.path = %s",
                    (self.node, path),
                ).fetchone()
                if by_name is not None and by_name["path"] == path:
                    continue
                if by_name is not None:
                    if by_path is not None:
                        conn.execute(
                            "DELETE FROM library_mounts WHERE library_id = %s AND node = %s", (by_path["id"], self.node)
                        )
                    conn.execute(
                        "INSERT INTO library_mounts (library_id, node, path) VALUES (%s, %s, %s)"
                        " ON CONFLICT (library_id, node) DO UPDATE SET path = excluded.path",
                        (by_name["id"], self.node, path),
                    )
                    conn.execute(f"UPDATE libraries SET moved_at = {NOW} WHERE id = %s", (by_name["id"],))
                    changes.append(LibraryChange(name, path, "moved", by_name["path"]))
                elif by_path is not None:
                    conn.execute("UPDATE libraries SET name = %s WHERE id = %s", (name, by_path["id"]))
                    changes.append(LibraryChange(name, path, "renamed", by_path["name"]))
                else:
                    # Another node starting at the same time may make the library first:
                    # then this node joins it (its folder is new here: "moved" from none).
                    row = conn.execute(
                        f"INSERT INTO libraries (name, created_at) VALUES (%s, {NOW})"
                        " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id, (xmax = 0) AS made",
                        (name,),
                    ).fetchone()
                    assert row is not None
                    conn.execute(
                        "INSERT INTO library_mounts (library_id, node, path) VALUES (%s, %s, %s)"
                        " ON CONFLICT (library_id, node) DO UPDATE SET path = excluded.path",
                        (row["id"], self.node, path),
                    )
                    changes.append(LibraryChange(name, path, "new" if row["made"] else "moved", None))
        return changes

    def libraries(self) -> list[Library]:
        """Every library, by name: its folder on this node (``None``: none), its files, its uid."""
        with self.pool.read() as conn:
            return [
                Library(r["name"], r["path"], r["files"], r["uid"])
                for r in conn.execute(
                    "SELECT l.name, m.path, l.uid, (SELECT COUNT(*) FROM files WHERE library_id = l.id) AS files"
                    " FROM libraries AS l LEFT JOIN library_mounts AS m ON m.library_id = l.id AND m.node = %s"
                    " ORDER BY l.name",
                    (self.node,),
                )
            ]

    def _mounted(self) -> str:
        """SQL joining ``files AS f`` to its library ``l`` and this node's folder ``m`` (param: node)."""
        return (
            " FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
            " JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = %(node)s"
        )

    # -- queue -----------------------------------------------------------------------

    def enqueue(
        self, root: Path, relpath: bytes, fingerprint: str, stat: StatKey, *, policy_digest: str | None = None
    ) -> EnqueueOutcome:
        """Queue a stable file unless the same content was already handled (the rules:
        :func:`vpod.db.enqueue_rules.decide`)."""
        return self.enqueue_many([EnqueueEntry(root, relpath, fingerprint, stat)], policy_digest=policy_digest)[0]

    bulk_walk = False  # a walk takes each file through enqueue_many (the SQLite store has a bulk path)

    def enqueue_walked_new(
        self, root: Path, folders: Sequence[WalkedFolder], policy_digest: str | None
    ) -> list[list[str]]:
        """Not on PostgreSQL (:attr:`bulk_walk`): a walk's files go through :meth:`enqueue_many`.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("no bulk path for a walk on PostgreSQL: use enqueue_many")

    def enqueue_many(
        self, entries: Sequence[EnqueueEntry], *, policy_digest: str | None = None
    ) -> list[EnqueueOutcome]:
        """:meth:`enqueue` for each entry in one transaction; outcomes in order. Safe with
        another node enqueueing the same files at once: an upsert only rewrites a row that
        is neither queued nor in progress (else the outcome is ``ALREADY_QUEUED``)."""
        if not entries:
            return []
        with self.pool.transaction() as conn:
            library_ids = {root: self._library_of(conn, Path(root))[0] for root in sorted({str(e.root) for e in entries})}
            rows = self._existing_rows(conn, entries, library_ids)
            twins = self._vouched_contents(conn, entries, policy_digest)
            outcomes: list[EnqueueOutcome] = []
            upserts: list[tuple[int, psycopg.Cursor[DictRow]]] = []
            seen: set[tuple[int, bytes]] = set()
            # Pipeline mode (libpq 14 or newer): the writes go out without waiting for each
            # answer (a catch-up scan's thousands of new files cost one round trip, not one
            # each); a file named twice in the batch re-reads its row, which waits for what
            # went before.
            with conn.pipeline() if psycopg.Pipeline.is_supported() else contextlib.nullcontext():
                for entry in entries:
                    key = (library_ids[str(entry.root)], entry.relpath)
                    row = self._existing_rows(conn, [entry], library_ids).get(key) if key in seen else rows.get(key)
                    seen.add(key)
                    digest = digest_of(entry, policy_digest)
                    outcome, upsert = self._enqueue(conn, entry, key[0], row, (entry.fingerprint, digest) in twins, digest)
                    if upsert is not None:
                        upserts.append((len(outcomes), upsert))
                    outcomes.append(outcome)
            for index, cursor in upserts:
                if cursor.fetchone() is None:  # another node queued or claimed it meanwhile
                    outcomes[index] = EnqueueOutcome.ALREADY_QUEUED
            if EnqueueOutcome.QUEUED in outcomes:
                _notify(conn)
            return outcomes

    @staticmethod
    def _existing_rows(
        conn: PgConnection, entries: Sequence[EnqueueEntry], library_ids: dict[str, int]
    ) -> dict[tuple[int, bytes], dict[str, Any]]:
        by_library: dict[int, list[bytes]] = {}
        for entry in entries:
            by_library.setdefault(library_ids[str(entry.root)], []).append(entry.relpath)
        found: dict[tuple[int, bytes], dict[str, Any]] = {}
        for library_id, relpaths in by_library.items():
            for row in conn.execute(
                "SELECT id, relpath, state, fingerprint, result_fingerprint, permanent, pending_actions, reason,"
                " policy_digest FROM files WHERE library_id = %s AND relpath = ANY(%s)",
                (library_id, relpaths),
            ):
                found[(library_id, bytes(row["relpath"]))] = row
        return found

    @staticmethod
    def _vouched_contents(
        conn: PgConnection, entries: Sequence[EnqueueEntry], policy_digest: str | None
    ) -> set[tuple[str, str]]:
        """(fingerprint, digest) pairs some ``done`` result vouches for (see the SQLite store)."""
        by_digest: dict[str, set[str]] = {}
        unread_sizes: set[tuple[str, str]] = set()
        for entry in entries:
            digest = digest_of(entry, policy_digest)
            if digest is None:
                continue
            if is_unread(entry.fingerprint):
                unread_sizes.add((entry.fingerprint, digest))
            else:
                by_digest.setdefault(digest, set()).add(entry.fingerprint)
        # Not read yet: a result of its size may vouch (LIKE matches characters, not the collation's order).
        vouched: set[tuple[str, str]] = {
            (fingerprint, digest) for fingerprint, digest in sorted(unread_sizes)
            if conn.execute(
                "SELECT 1 FROM files WHERE policy_digest = %s AND state = 'done' AND result_fingerprint LIKE %s LIMIT 1",
                (digest, f"{unread_size(fingerprint)}:%"),
            ).fetchone() is not None
        }
        for digest, fingerprints in sorted(by_digest.items()):
            vouched.update(
                (row["result_fingerprint"], digest)
                for row in conn.execute(
                    "SELECT DISTINCT result_fingerprint FROM files WHERE policy_digest = %s AND state = 'done'"
                    " AND result_fingerprint = ANY(%s)",
                    (digest, sorted(fingerprints)),
                )
            )
        return vouched

    def _enqueue(
        self, conn: PgConnection, entry: EnqueueEntry, library_id: int, row: dict[str, Any] | None, twin: bool,
        policy_digest: str | None,
    ) -> tuple[EnqueueOutcome, psycopg.Cursor[DictRow] | None]:
        """One file's enqueue rules (:func:`decide`) in the caller's transaction: the
        outcome, and for an upsert its cursor, whose row is missing when another node
        queued or claimed the file since the row was read (then ``ALREADY_QUEUED``)."""
        step = decide(row, entry.fingerprint, twin=twin, policy_digest=policy_digest)
        if step.write is Write.SET_FINGERPRINT:
            assert row is not None
            conn.execute(
                f"UPDATE files SET fingerprint = %s, size = %s, mtime_ns = %s, inode = %s, device = %s, ctime_ns = %s,"
                f" updated_at = {NOW} WHERE id = %s AND state = 'queued' AND pending_actions IS NULL",
                (entry.fingerprint, *stat_columns(entry.stat), row["id"]),
            )
        if step.write is Write.REFRESH_STAT:
            assert row is not None
            self._refresh_stat(conn, row["id"], entry.stat)
        if step.write is not Write.UPSERT:
            return step.outcome, None
        upsert = conn.execute(
            "INSERT INTO files (library_id, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns, fingerprint,"
            " result_fingerprint, policy_digest, attempts, permanent, not_before, reason, last_error,"
            f" queued_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, false, 0, NULL, NULL,"
            f" {NOW}, {NOW})"
            " ON CONFLICT (library_id, relpath) DO UPDATE SET state = excluded.state, size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " ctime_ns = excluded.ctime_ns,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " policy_digest = excluded.policy_digest, attempts = 0, permanent = false, not_before = 0,"
            " reason = NULL, last_error = NULL, queued_at = excluded.queued_at, updated_at = excluded.updated_at,"
            " lease_token = NULL, lease_until = NULL"
            # Another node may have queued or claimed it since this transaction looked: leave it.
            " WHERE files.state NOT IN ('queued', 'processing') RETURNING id",
            (
                library_id, entry.relpath, folder_of(entry.relpath), step.state, *stat_columns(entry.stat),
                entry.fingerprint, entry.fingerprint if twin else None, policy_digest if twin else None,
            ),
        )
        return step.outcome, upsert

    @staticmethod
    def _refresh_stat(conn: PgConnection, file_id: int, stat: StatKey | None) -> None:
        conn.execute(
            f"UPDATE files SET size = %s, mtime_ns = %s, inode = %s, device = %s, ctime_ns = %s, updated_at = {NOW}"
            " WHERE id = %s",
            (*stat_columns(stat), file_id),
        )

    def known_stats(self, root: Path, folder: bytes) -> dict[bytes, StatKey]:
        """Stat keys (ctime included; ``None`` in a row an older vpod wrote) of files
        directly in ``folder`` of ``root`` (this node's folder) that need no new look:
        done, waiting, in progress, or failed/skipped for good."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT f.relpath, f.size, f.mtime_ns, f.inode, f.device, f.ctime_ns FROM files AS f"
                " JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = %s AND m.path = %s"
                " WHERE f.dir = %s AND f.size IS NOT NULL AND (f.state IN ('done', 'queued', 'processing') OR f.permanent)",
                (self.node, str(root), folder),
            ).fetchall()
        return {
            bytes(r["relpath"]): StatKey(r["size"], r["mtime_ns"], r["inode"], r["device"], r["ctime_ns"]) for r in rows
        }

    def conforming_stats(self, root: Path, folder: bytes) -> dict[bytes, Conforming]:
        """What vpod recorded of the files directly in ``folder`` of ``root`` (this node's
        folder) it left conforming (see the SQLite store)."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT f.relpath, f.size, f.mtime_ns, f.inode, f.device, f.ctime_ns, f.policy_digest, f.policy_name,"
                " f.state, f.reason FROM files AS f"
                " JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = %s AND m.path = %s"
                " WHERE f.dir = %s AND (f.state = 'done' OR (f.state = 'skipped' AND f.reason IN ("
                f"{', '.join(['%s'] * len(VIDEO_DECLINED))}) AND f.permanent))"
                " AND f.ctime_ns IS NOT NULL AND f.size IS NOT NULL AND f.policy_digest IS NOT NULL",
                (self.node, str(root), folder, *sorted(VIDEO_DECLINED)),
            ).fetchall()
        return {bytes(r["relpath"]): conforming(r) for r in rows}

    def next_queued(self, limit: int, exclude: Iterable[int]) -> list[Job]:
        """Up to ``limit`` queued jobs due now of libraries with a folder on this node, oldest first."""
        skip = set(exclude)
        with self.pool.read() as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS}{self._mounted()} WHERE f.state = 'queued' AND f.not_before <= {NOW}"
                " ORDER BY f.not_before, f.id LIMIT %(limit)s",
                {"node": self.node, "limit": limit + len(skip)},
            ).fetchall()
        return [_job(r) for r in rows if r["id"] not in skip][:limit]

    def next_due_at(self) -> float | None:
        """When the earliest job waiting for a retry becomes due, on this node's clock
        (epoch seconds), or ``None``."""
        with self.pool.read() as conn:
            row = conn.execute(
                f"SELECT MIN(not_before) - {NOW} AS wait FROM files WHERE state = 'queued' AND not_before > {NOW}"
            ).fetchone()
        return None if row is None or row["wait"] is None else time.time() + float(row["wait"])

    def job_for_path(self, root: Path, relpath: bytes, fingerprint: str | None, stat: StatKey | None) -> Job | None:
        """Queue a file named explicitly (``vpod process``); ``None`` while it is ``processing``."""
        with self.pool.transaction() as conn:
            library_id, library = self._library_of(conn, root)
            row = conn.execute(
                "INSERT INTO files (library_id, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns, fingerprint,"
                f" attempts, permanent, not_before, queued_at, updated_at) VALUES (%s, %s, %s, 'queued', %s, %s, %s,"
                f" %s, %s, %s, 0, false, 0, {NOW}, {NOW})"
                " ON CONFLICT (library_id, relpath) DO UPDATE SET state = 'queued',"
                " size = COALESCE(excluded.size, files.size), mtime_ns = COALESCE(excluded.mtime_ns, files.mtime_ns),"
                " inode = COALESCE(excluded.inode, files.inode), device = COALESCE(excluded.device, files.device),"
                " ctime_ns = CASE WHEN excluded.size IS NULL THEN files.ctime_ns ELSE excluded.ctime_ns END,"
                " fingerprint = CASE WHEN files.pending_actions IS NULL THEN excluded.fingerprint"
                " ELSE files.fingerprint END, attempts = 0, permanent = false, not_before = 0,"
                f" reason = NULL, last_error = NULL, {_CLEAR_CLAIM}, queued_at = excluded.queued_at,"
                " updated_at = excluded.updated_at"
                " WHERE files.state != 'processing'"
                " RETURNING id, attempts, fingerprint, pending_actions",
                (library_id, relpath, folder_of(relpath), *stat_columns(stat), fingerprint),
            ).fetchone()
            if row is not None:
                _notify(conn)
        if row is None:
            return None
        pending = pending_actions(row["pending_actions"])
        return Job(row["id"], root, relpath, row["fingerprint"], row["attempts"], pending, library=library)

    def abandon_dead_owners(self, kinds: Sequence[str] = ("process",)) -> list[Path]:
        """Mark rows left ``processing`` by a dead owner of one of ``kinds`` as ``failed``
        (reason ``interrupted``, not permanent); returns their paths on this node."""
        with self.pool.read() as conn:
            dead = self._dead_owners_in_progress(conn, kinds)
        if not dead:
            return []
        paths: list[Path] = []
        with self.pool.transaction() as conn:
            for owner in dead:
                rows = conn.execute(
                    "UPDATE files AS f SET state = %s, permanent = false, reason = %s, last_error = %s,"
                    f" worker = NULL, owner_id = NULL, lease_token = NULL, lease_until = NULL, updated_at = {NOW}"
                    " FROM libraries AS l LEFT JOIN library_mounts AS m ON m.library_id = l.id AND m.node = %s"
                    " WHERE l.id = f.library_id AND f.state = 'processing' AND f.owner_id = %s"
                    " RETURNING COALESCE(m.path, l.name) AS root, f.relpath",
                    (Status.FAILED, Reason.INTERRUPTED, f"{owner.describe()} ended while processing this file",
                     self.node, owner.id),
                ).fetchall()
                paths += [Path(r["root"]) / os.fsdecode(bytes(r["relpath"])) for r in rows]
        return paths

    # -- owners and nodes ------------------------------------------------------------

    def register_owner(
        self, kind: str, *, heartbeat_seconds: float = HEARTBEAT_SECONDS, node: str | None = None,
        version: str | None = None, workers: int | None = None,
    ) -> OwnerRecord:
        """Record this process as an owner of ``kind``; a daemon's previous incarnations on
        this node release their rows at once (queued again; how many: the record's
        ``released``) and are marked ended. Dead owners no row names are removed.

        Raises:
            ValueError: an unknown ``kind``.
        """
        if kind not in OWNER_KINDS:
            raise ValueError(f"owner kind {kind!r}: expected one of {OWNER_KINDS}")
        pid = os.getpid()
        name = node or self.node
        with self.pool.transaction() as conn:
            row = conn.execute(
                "INSERT INTO owners (kind, node, host, pid, pid_start, incarnation, version, workers, clock_offset,"
                f" started_at, heartbeat_at, heartbeat_seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
                f" %s - {NOW}, {NOW}, {NOW}, %s) RETURNING *",
                (kind, name, self._host, pid, process_start(pid), new_incarnation(), version, workers, time.time(),
                 heartbeat_seconds),
            ).fetchone()
            assert row is not None
            self.owner = owner_record(row)
            self._owner_node = name
            if kind == "daemon":
                released = conn.execute(
                    f"UPDATE files SET state = 'queued', {_CLEAR_CLAIM}, updated_at = {NOW}"
                    " WHERE state = 'processing' AND owner_id IN"
                    " (SELECT id FROM owners WHERE kind = 'daemon' AND node = %s AND id != %s)",
                    (name, self.owner.id),
                ).rowcount
                conn.execute(
                    f"UPDATE owners SET ended_at = {NOW} WHERE kind = 'daemon' AND node = %s AND id != %s"
                    " AND ended_at IS NULL",
                    (name, self.owner.id),
                )
                if released:
                    _notify(conn)
                self.owner = dataclasses.replace(self.owner, released=released)
            now = _db_now(conn)
            gone = [
                o.id for o in map(owner_record, conn.execute(
                    "SELECT * FROM owners WHERE id != %s AND NOT EXISTS (SELECT 1 FROM files WHERE owner_id = owners.id)",
                    (self.owner.id,),
                ))
                if not self._owner_is_alive(o, now)
            ]  # fmt: skip
            if gone:
                conn.execute("DELETE FROM owners WHERE id = ANY(%s)", (gone,))
        return self.owner

    def heartbeat(self, **info: object) -> None:
        """Renew this owner's heartbeat by the database clock, with this node's clock offset
        from it (seconds) and ``workers``/``version`` when given."""
        if self.owner is None:
            return
        workers = info.get("workers")
        version = info.get("version")
        with self.pool.transaction() as conn:
            conn.execute(
                f"UPDATE owners SET heartbeat_at = {NOW}, clock_offset = %s - {NOW},"
                " workers = COALESCE(%s, workers), version = COALESCE(%s, version) WHERE id = %s",
                (time.time(), workers if isinstance(workers, int) else None,
                 str(version) if version is not None else None, self.owner.id),
            )

    def end_owner(self) -> None:
        """This owner ends cleanly (its record goes, or is marked ended while a row names it)."""
        if self.owner is None:
            return
        with self.pool.transaction() as conn:
            conn.execute(f"UPDATE owners SET ended_at = {NOW} WHERE id = %s", (self.owner.id,))
            conn.execute(
                "DELETE FROM owners WHERE id = %s AND NOT EXISTS (SELECT 1 FROM files WHERE owner_id = owners.id)",
                (self.owner.id,),
            )
        self.owner = None

    def owner_alive(self, owner_id: int) -> bool:
        """Whether owner ``owner_id`` is alive (:func:`vpod.db.owners.is_alive`, database clock)."""
        with self.pool.read() as conn:
            row = conn.execute(f"SELECT *, {NOW} AS now FROM owners WHERE id = %s", (owner_id,)).fetchone()
        return row is not None and self._owner_is_alive(owner_record(row), float(row["now"]))

    def _dead_owners_in_progress(self, conn: PgConnection, kinds: Sequence[str]) -> list[OwnerRecord]:
        """The owners of ``kinds`` that have rows ``processing`` and are not alive (database clock)."""
        now = _db_now(conn)
        owners = conn.execute(
            "SELECT * FROM owners WHERE id IN (SELECT DISTINCT owner_id FROM files WHERE state = 'processing')"
            " AND kind = ANY(%s)",
            (list(kinds),),
        )
        return [o for o in map(owner_record, owners) if not self._owner_is_alive(o, now)]

    def _owner_is_alive(self, owner: OwnerRecord, now: float) -> bool:
        if self.owner is not None and owner.id == self.owner.id:
            return True
        return is_alive(owner, now=now, host=self._host)

    def nodes(self) -> list[NodeRecord]:
        """Every daemon owner that has not ended (a crashed one stays until its rows are
        released), this store's own node first; what each has in progress (paths as its
        own node sees them, else as this node does, else library name + path)."""
        with self.pool.read() as conn:
            now = _db_now(conn)
            owners = conn.execute(
                "SELECT * FROM owners WHERE kind = 'daemon' AND ended_at IS NULL ORDER BY started_at"
            ).fetchall()
            doing: dict[int, list[str]] = {}
            for r in conn.execute(
                "SELECT f.owner_id, COALESCE(m.path, here.path, l.name) AS root, f.relpath FROM files AS f"
                " JOIN libraries AS l ON l.id = f.library_id JOIN owners AS o ON o.id = f.owner_id"
                " LEFT JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = o.node"
                " LEFT JOIN library_mounts AS here ON here.library_id = f.library_id AND here.node = %s"
                " WHERE f.state = 'processing' AND f.owner_id = ANY(%s) ORDER BY f.started_at",
                (self.node, [o["id"] for o in owners]),
            ):
                doing.setdefault(r["owner_id"], []).append(text_path(r["root"], bytes(r["relpath"])))
        records = [
            NodeRecord(
                node=o["node"], host=o["host"], pid=o["pid"], version=o["version"], workers=o["workers"],
                started_at=o["started_at"], last_seen=o["heartbeat_at"],
                heartbeat_age_seconds=max(0.0, now - o["heartbeat_at"]), clock_offset_seconds=o["clock_offset"],
                alive=self._owner_is_alive(owner_record(o), now), doing=tuple(doing.get(o["id"], ())),
            )
            for o in owners
        ]
        me = self._owner_node or self.node
        return sorted(records, key=lambda n: (n.node != me, n.node, n.started_at))

    # -- claims and leases -----------------------------------------------------------

    def start(self, job: Job, worker: str, batch_id: str, *, lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """Claim the named ``job`` for ``worker``: ``processing`` with a fresh lease;
        ``None`` when it is no longer ``queued``."""
        token = secrets.token_hex(16)
        owner = self.owner.id if self.owner is not None else None
        with self.pool.transaction() as conn:
            row = conn.execute(
                f"UPDATE files SET state = 'processing', worker = %s, owner_id = %s, batch_id = %s, started_at = {NOW},"
                f" attempts = attempts + 1, updated_at = {NOW}, progress_percent = NULL, eta_seconds = NULL,"
                f" progress_at = NULL, lease_token = %s, lease_until = {NOW} + %s"
                " WHERE id = %s AND state = 'queued' RETURNING id",
                (worker, owner, batch_id, token, lease_seconds, job.id),
            ).fetchone()
        return dataclasses.replace(job, lease=token) if row is not None else None

    def claim(
        self, worker: str, batch_id: str, *, libraries: Collection[str] | None = None,
        lease_seconds: float = LEASE_SECONDS, exclude: Collection[int] = (),
    ) -> Job | None:
        """Claim the oldest job due now (queued and due, or in progress with its lease
        ended) of ``libraries`` (``None``: every library with a folder on this node), in
        one statement with ``FOR UPDATE SKIP LOCKED``; returns it with its lease, or ``None``.
        Job ids in ``exclude`` are passed over.

        Raises:
            StoreError: a newer node upgraded the schema past this node's (nothing claimed).
        """
        if libraries is not None and not libraries:
            return None
        token = secrets.token_hex(16)
        params: dict[str, Any] = {
            "node": self.node, "worker": worker, "owner": self.owner.id if self.owner is not None else None,
            "batch": batch_id, "token": token, "lease": lease_seconds,
            "names": sorted(libraries) if libraries is not None else None, "schema": SCHEMA_VERSION,
            "exclude": sorted(set(exclude)),
        }
        with self.pool.transaction() as conn:
            row = conn.execute(
                f"UPDATE files AS f SET state = 'processing', worker = %(worker)s, owner_id = %(owner)s,"
                f" batch_id = %(batch)s, started_at = {NOW}, attempts = f.attempts + 1, updated_at = {NOW},"
                " progress_percent = NULL, eta_seconds = NULL, progress_at = NULL,"
                f" lease_token = %(token)s, lease_until = {NOW} + %(lease)s"
                " FROM libraries AS l, library_mounts AS m"
                " WHERE l.id = f.library_id AND m.library_id = f.library_id AND m.node = %(node)s"
                # A node newer than this one upgraded the schema: claim nothing (see below).
                "  AND (SELECT max(version) FROM vpod_schema) <= %(schema)s"
                # An ended lease first (a dead or frozen node's file), else the oldest due
                # queued row: two index walks, the second run only when the first finds
                # nothing (COALESCE evaluates lazily), each skipping rows others lock.
                f" AND f.id = COALESCE(({_CANDIDATE} c.state = 'processing' AND c.lease_until <= {NOW}"
                "  ORDER BY c.lease_until, c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED),"
                f" ({_CANDIDATE} c.state = 'queued' AND c.not_before <= {NOW}"
                "  ORDER BY c.not_before, c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED))"
                # attempts as next_queued reports them: those made before this claim
                " RETURNING f.id, m.path AS root, l.name AS library, f.relpath, f.fingerprint,"
                " f.attempts - 1 AS attempts, f.pending_actions, f.lease_token",
                params,
            ).fetchone()
            if row is None:
                self._refuse_newer_schema(conn)
        return None if row is None else _job(row)

    def _refuse_newer_schema(self, conn: PgConnection) -> None:
        """Raise :class:`StoreError` when another node upgraded the schema past what this
        node understands since it opened the store (it must claim nothing then)."""
        found = conn.execute("SELECT max(version) AS version FROM vpod_schema").fetchone()
        if found is not None and found["version"] is not None and found["version"] > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.location} has schema version {found['version']}, newer than this vpod "
                f"understands ({SCHEMA_VERSION}): this node claims nothing; upgrade vpod on this node"
            )

    def renew_leases(self, jobs: Sequence[Job], lease_seconds: float = LEASE_SECONDS) -> set[int]:
        """Extend the leases of ``jobs`` still holding their tokens (short statement timeout);
        returns the ids renewed."""
        held = [(j.id, j.lease) for j in jobs if j.lease is not None]
        if not held:
            return set()
        with self.pool.transaction(lease=True) as conn:
            rows = conn.execute(
                f"UPDATE files SET lease_until = {NOW} + %s WHERE state = 'processing'"
                " AND (id, lease_token) IN (SELECT * FROM unnest(%s::bigint[], %s::text[])) RETURNING id",
                (lease_seconds, [i for i, _ in held], [t for _, t in held]),
            ).fetchall()
        return {int(r["id"]) for r in rows}

    def confirm_lease(self, job: Job, lease_seconds: float = LEASE_SECONDS) -> bool:
        """The compare-and-set before a replace: True (lease extended) only while the row is
        ``processing``, holds ``job.lease`` and its lease has not ended by the database clock."""
        if job.lease is None:
            return True
        with self.pool.transaction(lease=True) as conn:
            row = conn.execute(
                f"UPDATE files SET lease_until = {NOW} + %s WHERE id = %s AND state = 'processing'"
                f" AND lease_token = %s AND lease_until > {NOW} RETURNING id",
                (lease_seconds, job.id, job.lease),
            ).fetchone()
        return row is not None

    def read_content(self, job: Job, fingerprint: str, stat: StatKey, policy_digest: str | None) -> bool:
        """See :meth:`vpod.db.store.Store.read_content` (and the SQLite store)."""
        lease = "(%s::text IS NULL OR lease_token = %s)"
        with self.pool.transaction() as conn:
            held = conn.execute(f"SELECT 1 FROM files WHERE id = %s AND {lease} FOR UPDATE", (job.id, job.lease, job.lease))
            if held.fetchone() is None:
                raise LeaseLost(f"{display_path(job.path)}: another claim took this file; this result is discarded")
            twin = policy_digest is not None and conn.execute(
                "SELECT 1 FROM files WHERE policy_digest = %s AND state = 'done' AND result_fingerprint = %s"
                " AND id <> %s LIMIT 1",
                (policy_digest, fingerprint, job.id),
            ).fetchone() is not None
            if twin:
                conn.execute(
                    "UPDATE files SET state = 'done', fingerprint = %s, result_fingerprint = %s, policy_digest = %s,"
                    f" attempts = 0, permanent = false, reason = NULL, last_error = NULL, {_CLEAR_CLAIM},"
                    " pending_actions = NULL, size = %s, mtime_ns = %s, inode = %s, device = %s, ctime_ns = %s,"
                    f" updated_at = {NOW} WHERE id = %s",
                    (fingerprint, fingerprint, policy_digest, *stat_columns(stat), job.id),
                )
            else:
                conn.execute(
                    "UPDATE files SET fingerprint = %s, size = %s, mtime_ns = %s, inode = %s, device = %s,"
                    f" ctime_ns = %s, updated_at = {NOW} WHERE id = %s",
                    (fingerprint, *stat_columns(stat), job.id),
                )
            return twin

    def release(self, job: Job) -> None:
        """Give back a claimed job not worked on: ``queued``, the attempt given back, only
        while the row holds ``job.lease`` (any ``processing`` row when it has none)."""
        with self.pool.transaction() as conn:
            released = conn.execute(
                f"UPDATE files SET state = 'queued', attempts = GREATEST(attempts - 1, 0), {_CLEAR_CLAIM},"
                f" updated_at = {NOW} WHERE id = %s AND state = 'processing'"
                " AND (%s::text IS NULL OR lease_token = %s)",
                (job.id, job.lease, job.lease),
            ).rowcount
            if released:
                _notify(conn)

    @contextlib.contextmanager
    def scan_lock(self, library: str) -> Iterator[bool]:
        """A session advisory lock on ``library``'s name, on a connection of its own held for
        the block (closing it releases the lock, also when this node dies)."""
        conn = self.pool.connect(autocommit=True)
        try:
            try:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS got", (SCAN_LOCK_CLASS, library)
                ).fetchone()
            except psycopg.Error as exc:
                raise self.pool.error(exc, "lock a scan on") from None
            yield bool(row and row["got"])
        finally:
            conn.close()

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for ``NOTIFY vpod_work`` (work queued by any node,
        this one included); True when signalled. The ``LISTEN`` connection is made at the
        first call; one found cut (a database restart) is made again at once and the wait
        goes on (an announcement sent meanwhile is lost: the caller polls the queue too);
        when it cannot be made, the wait lasts ``timeout`` and returns False."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._listen_lock:
            for _ in range(2):
                try:
                    if self._listener is None or self._listener.closed:
                        self._listener = self.pool.connect(autocommit=True)
                        self._listener.execute(f"LISTEN {CHANNEL}")
                    left = max(0.0, deadline - time.monotonic())
                    signalled = any(True for _ in self._listener.notifies(timeout=left, stop_after=1))
                    if signalled:  # several announcements waiting count as one wake-up
                        for _ in self._listener.notifies(timeout=0.0):
                            pass
                    return signalled
                except (psycopg.Error, StoreError):
                    if self._listener is not None:
                        self._listener.close()
                        self._listener = None
        time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    # -- progress, plans, outcomes ---------------------------------------------------

    def note_progress(self, job: Job, percent: float, eta_seconds: float | None) -> None:
        """Record how far a remux of a file in progress is (cleared by :meth:`start`);
        ignored once the row no longer holds ``job.lease``."""
        with self.pool.transaction() as conn:
            conn.execute(
                f"UPDATE files SET progress_percent = %s, eta_seconds = %s, progress_at = {NOW}"
                " WHERE id = %s AND state = 'processing' AND (%s::text IS NULL OR lease_token = %s)",
                (percent, eta_seconds, job.id, job.lease, job.lease),
            )

    def note_plan(self, job: Job, actions: Sequence[str]) -> None:
        """Record the actions about to be applied (cleared by :meth:`finish`); ignored once
        the row no longer holds ``job.lease``."""
        with self.pool.transaction() as conn:
            conn.execute(
                f"UPDATE files SET pending_actions = %s, updated_at = {NOW}"
                " WHERE id = %s AND (%s::text IS NULL OR lease_token = %s)",
                (json.dumps(list(actions)), job.id, job.lease, job.lease),
            )

    @staticmethod
    def _lost(job: Job) -> LeaseLost:
        return LeaseLost(f"{display_path(job.path)}: another claim took this file; this result is discarded")

    def finish(self, job: Job, outcome: Outcome, batch_id: str | None) -> None:
        """Record a final outcome and its result row (see the SQLite store).

        Raises:
            LeaseLost: ``job.lease`` is set and the row no longer holds it; nothing is written.
        """
        result = outcome.result
        digest = outcome.policy_digest if outcome.result_fingerprint is not None else None
        with self.pool.transaction() as conn:
            updated = conn.execute(
                "UPDATE files SET state = %s, result_fingerprint = %s, policy_digest = %s, permanent = %s,"
                f" reason = %s, last_error = %s, {_CLEAR_CLAIM}, pending_actions = NULL, updated_at = {NOW},"
                " size = COALESCE(%s, size), mtime_ns = COALESCE(%s, mtime_ns), inode = COALESCE(%s, inode),"
                " device = COALESCE(%s, device), ctime_ns = CASE WHEN %s THEN ctime_ns ELSE %s END,"
                " policy_name = %s, policy_why = %s"
                " WHERE id = %s AND (%s::text IS NULL OR lease_token = %s) RETURNING id",
                (
                    result.status, outcome.result_fingerprint, digest, bool(result.permanent), utf8_text(result.reason),
                    utf8_text(result.error), *stat_columns(outcome.result_stat)[:4], outcome.result_stat is None,
                    stat_columns(outcome.result_stat)[4], utf8_text(outcome.policy_name),
                    utf8_text(outcome.policy_why), job.id, job.lease, job.lease,
                ),
            ).fetchone()
            if updated is None and job.lease is not None:
                raise self._lost(job)
            self._insert_result(conn, job, result, batch_id, outcome.result_fingerprint)
            file_id = job.id
            if outcome.final_relpath is not None and outcome.final_relpath != job.relpath:
                file_id = self._upsert_done(conn, job, outcome.final_relpath, outcome)
            if outcome.tracks:
                conn.execute("DELETE FROM tracks WHERE file_id = %s", (file_id,))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO tracks (file_id, idx, type, codec, language, title, is_default,"
                        " is_forced, channels) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [
                            (file_id, t.index, t.type, utf8_text(t.codec), utf8_text(t.language),
                             utf8_text(t.title), bool(t.default), bool(t.forced), t.channels)
                            for t in outcome.tracks
                        ],
                    )

    @staticmethod
    def _upsert_done(conn: PgConnection, job: Job, relpath: bytes, outcome: Outcome) -> int:
        row = conn.execute(
            "INSERT INTO files (library_id, relpath, dir, state, size, mtime_ns, inode, device, ctime_ns, fingerprint,"
            " result_fingerprint, policy_digest, policy_name, policy_why, updated_at)"
            f" SELECT library_id, %s, %s, 'done', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {NOW} FROM files WHERE id = %s"
            " ON CONFLICT (library_id, relpath) DO UPDATE SET state = 'done', size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device,"
            " ctime_ns = excluded.ctime_ns,"
            " fingerprint = excluded.fingerprint, result_fingerprint = excluded.result_fingerprint,"
            " policy_digest = excluded.policy_digest, policy_name = excluded.policy_name,"
            " policy_why = excluded.policy_why, reason = NULL, last_error = NULL, updated_at = excluded.updated_at"
            " RETURNING id",
            (
                relpath, folder_of(relpath), *stat_columns(outcome.result_stat), outcome.result_fingerprint,
                outcome.result_fingerprint, outcome.policy_digest, utf8_text(outcome.policy_name),
                utf8_text(outcome.policy_why), job.id,
            ),
        ).fetchone()
        assert row is not None
        return int(row["id"])

    def retry_later(
        self, job: Job, result: FileProcessingResult, delay_seconds: float, batch_id: str | None,
        *, counted: bool = True,
    ) -> None:
        """Put a job back in the queue, due in ``delay_seconds`` (database clock).

        Raises:
            LeaseLost: ``job.lease`` is set and the row no longer holds it.
        """
        with self.pool.transaction() as conn:
            updated = conn.execute(
                f"UPDATE files SET state = 'queued', not_before = {NOW} + %s, reason = %s, last_error = %s,"
                " attempts = CASE WHEN %s THEN attempts ELSE GREATEST(attempts - 1, 0) END,"
                f" {_CLEAR_CLAIM}, updated_at = {NOW}"
                " WHERE id = %s AND (%s::text IS NULL OR lease_token = %s) RETURNING id",
                (delay_seconds, utf8_text(result.reason), utf8_text(result.error), counted, job.id, job.lease,
                 job.lease),
            ).fetchone()
            if updated is None and job.lease is not None:
                raise self._lost(job)
            self._insert_result(conn, job, result, batch_id, None)
            _notify(conn)

    def _insert_result(
        self, conn: PgConnection, job: Job, result: FileProcessingResult, batch_id: str | None,
        fingerprint_after: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO results (batch_id, file_id, path, success, skipped, changes, actions, reason,"
            " error, started_at, duration_seconds, fingerprint_before, fingerprint_after, node)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                batch_id, job.id, os.fsencode(result.path), bool(result.success), bool(result.skipped),
                result.changes, json.dumps(list(result.actions)), utf8_text(result.reason), utf8_text(result.error),
                result.started_at, result.duration_seconds, job.fingerprint, fingerprint_after, self.node,
            ),
        )

    def requeue_interrupted(self) -> int:
        """Return rows a crashed daemon (any node's, its owner not alive) or no owner left
        ``processing`` to the queue; returns how many."""
        with self.pool.transaction() as conn:
            dead = [o.id for o in self._dead_owners_in_progress(conn, ("daemon",))]
            count = conn.execute(
                f"UPDATE files SET state = 'queued', {_CLEAR_CLAIM}, updated_at = {NOW}"
                " WHERE state = 'processing' AND (owner_id IS NULL OR owner_id = ANY(%s))",
                (dead,),
            ).rowcount
            if count:
                _notify(conn)
            return count

    def requeue_hardlinked(
        self, digest_of: Callable[[str, Path, bytes], str | None], reason: Reason = Reason.HARDLINKED
    ) -> list[Path]:
        """Queue again the ``hardlinked`` skips of this node's libraries whose recorded
        policy digest differs from ``digest_of(library, folder, relpath)``; returns their paths."""
        with self.pool.read() as conn:
            rows = conn.execute(
                f"SELECT f.id, l.name, m.path, f.relpath, f.policy_digest{self._mounted()}"
                " WHERE f.state = 'skipped' AND f.reason = %(reason)s",
                {"node": self.node, "reason": reason},
            ).fetchall()
        stale = [
            (r["id"], r["policy_digest"], Path(r["path"]) / os.fsdecode(bytes(r["relpath"])))
            for r in rows
            if digest_of(r["name"], Path(r["path"]), bytes(r["relpath"])) != r["policy_digest"]
        ]
        requeued: list[Path] = []
        with self.pool.transaction() as conn:
            for file_id, digest, path in stale:
                if conn.execute(
                    "UPDATE files SET state = 'queued', attempts = 0, permanent = false, not_before = 0, reason = NULL,"
                    f" last_error = NULL, queued_at = {NOW}, updated_at = {NOW}"
                    " WHERE id = %s AND state = 'skipped' AND reason = %s AND policy_digest IS NOT DISTINCT FROM %s",
                    (file_id, reason, digest),
                ).rowcount:
                    requeued.append(path)
            if requeued:
                _notify(conn)
        return requeued

    def queue_depth(self) -> int:
        """Number of queued jobs (due now or later, every library)."""
        with self.pool.read() as conn:
            row = conn.execute("SELECT COUNT(*) AS n FROM files WHERE state = 'queued'").fetchone()
        return int(row["n"]) if row is not None else 0

    def _split(self, conn: PgConnection, path: Path) -> dict[str, Any] | None:
        """The file row of absolute ``path`` under this node's deepest folder holding it
        (with ``root``), else ``None``."""
        roots = [str(root) for root in path.parents]
        relpaths = [os.fsencode(path.relative_to(root)) for root in path.parents]
        return conn.execute(
            "SELECT f.*, m.path AS root FROM files AS f"
            " JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = %s"
            " JOIN unnest(%s::text[], %s::bytea[]) AS k (root, relpath) ON k.root = m.path AND k.relpath = f.relpath"
            " ORDER BY length(m.path) DESC LIMIT 1",
            (self.node, roots, relpaths),
        ).fetchone()

    def file_record(self, path: Path) -> FileRecord | None:
        """The row of absolute ``path`` (matched under this node's folders), or ``None``."""
        with self.pool.read() as conn:
            row = self._split(conn, path)
        if row is None:
            return None
        return file_record(row, row["root"])

    # -- batches, temps, identity ----------------------------------------------------

    def record_batch(self, batch: BatchResult, source: str) -> None:
        """Store a closed batch, with this node's name."""
        counts = batch.counts()
        with self.pool.transaction() as conn:
            conn.execute(
                "INSERT INTO batches (batch_id, source, node, started_at, ended_at, total_files, success_count,"
                " fail_count, skipped_count, total_duration_seconds, stopped_early)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (batch_id) DO UPDATE SET source = excluded.source, node = excluded.node,"
                " started_at = excluded.started_at, ended_at = excluded.ended_at, total_files = excluded.total_files,"
                " success_count = excluded.success_count, fail_count = excluded.fail_count,"
                " skipped_count = excluded.skipped_count, total_duration_seconds = excluded.total_duration_seconds,"
                " stopped_early = excluded.stopped_early",
                (
                    batch.batch_id, source, self.node, batch.started_at, batch.ended_at, counts["total_files"],
                    counts["success_count"], counts["fail_count"], counts["skipped_count"],
                    batch.total_duration_seconds, bool(batch.stopped_early),
                ),
            )

    def _temp_key(self, conn: PgConnection, path: Path) -> tuple[int | None, bytes]:
        """(library id, path below it) of a temp file under one of this node's folders,
        else ``(None, absolute path)``."""
        mounts = conn.execute("SELECT library_id, path FROM library_mounts WHERE node = %s", (self.node,)).fetchall()
        best: tuple[int | None, bytes] = (None, os.fsencode(path))
        depth = -1
        for mount in mounts:
            root = Path(mount["path"])
            if root in path.parents and len(root.parts) > depth:
                best, depth = (int(mount["library_id"]), os.fsencode(path.relative_to(root))), len(root.parts)
        return best

    def _delete_temp(self, conn: PgConnection, library_id: int | None, relpath: bytes) -> None:
        if library_id is None:
            conn.execute("DELETE FROM temps WHERE library_id IS NULL AND node = %s AND relpath = %s", (self.node, relpath))
        else:
            conn.execute("DELETE FROM temps WHERE library_id = %s AND relpath = %s", (library_id, relpath))

    def register_temp(self, path: Path, job: Job | None = None) -> None:
        """Remember a temp file before creating it (as library + path below it, so any node
        can sweep it), with the claim it belongs to."""
        with self.pool.transaction() as conn:
            library_id, relpath = self._temp_key(conn, path)
            self._delete_temp(conn, library_id, relpath)
            conn.execute(
                f"INSERT INTO temps (library_id, node, relpath, created_at, job_id, lease_token)"
                f" VALUES (%s, %s, %s, {NOW}, %s, %s)",
                (library_id, self.node, relpath, job.id if job else None, job.lease if job else None),
            )

    def forget_temp(self, path: Path) -> None:
        """The temp file is gone (renamed into place or removed)."""
        with self.pool.transaction() as conn:
            self._delete_temp(conn, *self._temp_key(conn, path))

    def pending_temps(self) -> list[Path]:
        """Temp files whose claim's lease is gone (or that name no claim), as paths on this
        node: those in a library this node has a folder for, and this node's others."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT CASE WHEN t.library_id IS NULL THEN NULL ELSE m.path END AS root, t.relpath FROM temps AS t"
                " LEFT JOIN library_mounts AS m ON m.library_id = t.library_id AND m.node = %s"
                " WHERE (t.library_id IS NULL AND t.node = %s OR m.path IS NOT NULL)"
                " AND (t.lease_token IS NULL OR NOT EXISTS (SELECT 1 FROM files AS f WHERE f.id = t.job_id"
                f" AND f.state = 'processing' AND f.lease_token = t.lease_token AND f.lease_until > {NOW}))"
                " ORDER BY t.id",
                (self.node, self.node),
            ).fetchall()
        return [
            Path(os.fsdecode(bytes(r["relpath"]))) if r["root"] is None else Path(r["root"]) / os.fsdecode(bytes(r["relpath"]))
            for r in rows
        ]

    def database_id(self) -> str:
        """This database's random identity (32 hex digits), made by the first migration."""
        with self.pool.read() as conn:
            row = conn.execute("SELECT database_id FROM identity").fetchone()
        assert row is not None
        return str(row["database_id"])

    # -- daemon state, status and control --------------------------------------------

    def set_daemon_info(self, **values: object) -> None:
        """Write this node's daemon record keys (``None`` deletes a key), as valid UTF-8 text."""
        with self.pool.transaction() as conn:
            for key, value in values.items():
                if value is None:
                    conn.execute("DELETE FROM daemon WHERE node = %s AND key = %s", (self.node, key))
                else:
                    conn.execute(
                        "INSERT INTO daemon (node, key, value) VALUES (%s, %s, %s)"
                        " ON CONFLICT (node, key) DO UPDATE SET value = excluded.value",
                        (self.node, key, utf8_text(str(value))),
                    )

    def daemon_info(self) -> dict[str, str]:
        """This node's daemon record (pid, state, started_at, ...)."""
        with self.pool.read() as conn:
            return {
                r["key"]: r["value"]
                for r in conn.execute("SELECT key, value FROM daemon WHERE node = %s", (self.node,))
            }

    def queue_report(self, *, batches: int = 5, failures: int = 10) -> QueueReport:
        """Counts by state, queue depth, files in progress (every node's, paths on this node
        where it has the library), recent batches and failures, and files waiting for free
        space, in one snapshot (``REPEATABLE READ``)."""
        with self.pool.read() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            now = _db_now(conn)
            offset = time.time() - now
            counts = dict.fromkeys(("queued", "processing", "done", "failed", "skipped"), 0)
            for row in conn.execute("SELECT state, COUNT(*) AS n FROM files GROUP BY state"):
                counts[row["state"]] = row["n"]
            owners = {r["id"]: owner_record(r) for r in conn.execute(
                "SELECT * FROM owners WHERE id IN (SELECT owner_id FROM files WHERE state = 'processing')"
            )}  # fmt: skip
            located = (
                " FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
                " LEFT JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = %s"
            )
            running = [
                in_progress(r, now, None if r["owner_id"] is None else (
                    r["owner_id"] in owners and self._owner_is_alive(owners[r["owner_id"]], now)
                ))
                for r in conn.execute(
                    "SELECT COALESCE(m.path, l.name) AS root, l.name AS library, f.relpath, f.worker, f.owner_id,"
                    f" f.batch_id, f.started_at, f.attempts, f.progress_percent, f.eta_seconds, f.progress_at{located}"
                    " WHERE f.state = 'processing' ORDER BY f.started_at",
                    (self.node,),
                ).fetchall()
            ]
            last_batches = [
                batch_record(r)
                for r in conn.execute(web_reads.BATCHES_SQL.replace("?", "%s"), (True, batches))
            ]
            last_failures = [
                failure_record(r)
                for r in conn.execute(
                    "SELECT f.id, COALESCE(m.path, l.name) AS root, f.relpath, f.reason, f.last_error, f.updated_at,"
                    f" f.attempts, f.policy_name{located} WHERE f.state = 'failed' ORDER BY f.updated_at DESC LIMIT %s",
                    (self.node, failures),
                )
            ]
            waiting_for_space = [
                SpaceWait(text_path(r["root"], bytes(r["relpath"])), r["last_error"], r["not_before"] + offset)
                for r in conn.execute(
                    f"SELECT COALESCE(m.path, l.name) AS root, f.relpath, f.last_error, f.not_before{located}"
                    " WHERE f.state = 'queued' AND f.reason = %s ORDER BY f.not_before LIMIT %s",
                    (self.node, Reason.INSUFFICIENT_SPACE, failures),
                )
            ]
        return QueueReport(counts, counts["queued"], running, last_batches, last_failures, waiting_for_space)

    def _reading(self) -> ContextManager[Any]:
        return self.pool.read()

    def _located(self) -> web_reads.Located:
        return web_reads.Located(
            "COALESCE(m.path, l.name)", " LEFT JOIN library_mounts AS m ON m.library_id = f.library_id AND m.node = ?",
            (self.node,), pg=True, hour="CAST(FLOOR(started_at / 3600) AS BIGINT)",
        )

    def ping(self) -> int:
        """Prove the database answers; returns the queue depth.

        Raises:
            StoreError: it cannot be reached or read.
        """
        return self.queue_depth()

    def check_writable(self) -> None:
        """Prove this role may write the store (an update of no row, rolled back).

        Raises:
            StoreBusy / StoreError: it cannot be written now.
        """
        with contextlib.suppress(_Rollback):
            with self.pool.transaction() as conn:
                conn.execute("UPDATE daemon SET value = value WHERE false")
                conn.execute("UPDATE files SET state = state WHERE false")
                raise _Rollback

    def retry_paths(self, paths: Iterable[Path]) -> dict[Path, RetryOutcome]:
        """Queue failed or skipped files again, with fresh attempts, due now."""
        outcomes: dict[Path, RetryOutcome] = {}
        with self.pool.transaction() as conn:
            for path in paths:
                row = self._split(conn, path)
                if row is None:
                    outcomes[path] = RetryOutcome.UNKNOWN
                elif row["state"] in ("failed", "skipped"):
                    self._requeue(conn, "id = %s", (row["id"],))
                    outcomes[path] = RetryOutcome.REQUEUED
                else:
                    outcomes[path] = RetryOutcome.NOT_FAILED
            if RetryOutcome.REQUEUED in outcomes.values():
                _notify(conn)
        return outcomes

    def retry_all_failed(self) -> int:
        """Queue every failed file again (not skipped ones); returns how many."""
        with self.pool.transaction() as conn:
            count = self._requeue(conn, "state = 'failed'", ())
            if count:
                _notify(conn)
            return count

    @staticmethod
    def _requeue(conn: PgConnection, where: str, args: tuple[Any, ...]) -> int:
        return conn.execute(
            "UPDATE files SET state = 'queued', attempts = 0, permanent = false, not_before = 0, reason = NULL,"
            f" last_error = NULL, {_CLEAR_CLAIM}, queued_at = {NOW}, updated_at = {NOW} WHERE {where}",
            args,
        ).rowcount


class _Rollback(Exception):
    """Ends a transaction on purpose (rolled back)."""
