"""Rows to records, and records to columns, the same for every backend.

Both stores read rows by column name (``sqlite3.Row``, a psycopg ``dict_row``) with the
same column names; what a row becomes (an owner, a batch, a file's record) is decided
here once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from vpod.db.owners import OwnerRecord
from vpod.db.records import BatchRecord, Conforming, FailureRecord, FileRecord, InProgress
from vpod.fingerprint import StatKey
from vpod.results import display_path


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, a psycopg ``dict_row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


def folder_of(relpath: bytes) -> bytes:
    """The folder part of a relative path (``b""`` at the library's top)."""
    head, _, _ = relpath.rpartition(b"/")
    return head


def stat_columns(stat: StatKey | None) -> tuple[Any, ...]:
    """``(size, mtime_ns, inode, device, ctime_ns)`` of ``stat``, or five ``None``."""
    if stat is None:
        return (None, None, None, None, None)
    return (stat.size, stat.mtime_ns, stat.inode, stat.device, stat.ctime_ns)


def eta_now(eta_seconds: float | None, noted_at: float | None, now: float) -> float | None:
    """An estimate noted at ``noted_at`` (epoch seconds), counted down to ``now``;
    ``None`` (not known) once it has run out: the tool still runs, or verification
    follows it, and "0 s left" would be wrong (the row is written at most every
    :data:`vpod.file_progress.STORE_INTERVAL_SECONDS`, so a short estimate runs out
    before the next report)."""
    if eta_seconds is None or noted_at is None:
        return None
    left = eta_seconds - max(0.0, now - noted_at)
    return left if left > 0 else None


def text_path(root: str, relpath: bytes) -> str:
    """A file's path for people (undecodable bytes as ``\\xNN``)."""
    return display_path(Path(root) / os.fsdecode(relpath))


def pending_actions(value: str | None) -> tuple[str, ...]:
    """The ``pending_actions`` column (a JSON list, or NULL) as a tuple."""
    return tuple(json.loads(value)) if value else ()


def stat_key(row: Row) -> StatKey | None:
    """The stat key of a row with ``size``, ``mtime_ns``, ``inode``, ``device`` and
    ``ctime_ns`` (``None``: not recorded; its ``ctime_ns`` is ``None`` in a row an older
    vpod wrote)."""
    if row["size"] is None:
        return None
    return StatKey(row["size"], row["mtime_ns"], row["inode"], row["device"], row["ctime_ns"])


def conforming(row: Row) -> Conforming:
    """A ``done`` (or ``not_smaller``, ``hdr_not_kept``, ``interlaced_not_kept``) row with ``size``, ``mtime_ns``, ``inode``, ``device``,
    ``ctime_ns`` and ``policy_digest`` (none NULL: the query leaves such rows out),
    ``policy_name``, ``state`` and ``reason`` as a :class:`Conforming`."""
    return Conforming(
        StatKey(row["size"], row["mtime_ns"], row["inode"], row["device"], row["ctime_ns"]), row["policy_digest"],
        row["policy_name"], None if row["state"] == "done" else row["reason"],
    )


def owner_record(row: Row) -> OwnerRecord:
    """An ``owners`` row as an :class:`~vpod.db.owners.OwnerRecord`."""
    return OwnerRecord(
        row["id"], row["kind"], row["host"], row["pid"], row["pid_start"], row["incarnation"],
        row["started_at"], row["heartbeat_at"], row["heartbeat_seconds"], row["ended_at"],
    )


def batch_record(row: Row) -> BatchRecord:
    """A ``batches`` row as a :class:`~vpod.db.records.BatchRecord` (missing counts are 0)."""
    return BatchRecord(
        row["batch_id"], row["source"], row["started_at"], row["ended_at"], row["total_files"] or 0,
        row["success_count"] or 0, row["fail_count"] or 0, row["skipped_count"] or 0,
        row["total_duration_seconds"] or 0.0, bool(row["stopped_early"]), row["node"],
        _optional(row, "unchanged_count") or 0,
    )


def file_record(row: Row, root: str) -> FileRecord:
    """A ``files`` row, found under the folder ``root``, as a :class:`~vpod.db.records.FileRecord`."""
    return FileRecord(
        text_path(root, bytes(row["relpath"])), row["state"], row["reason"], row["last_error"],
        bool(row["permanent"]), row["attempts"], row["worker"], row["fingerprint"], row["result_fingerprint"],
        row["policy_digest"], stat_key(row), row["policy_name"], row["policy_why"],
    )


def _optional(row: Row, column: str) -> Any:
    """``row[column]``, or ``None`` when the query did not select it."""
    try:
        return row[column]
    except (IndexError, KeyError):
        return None


def failure_record(row: Row) -> FailureRecord:
    """A failed ``files`` row (with its folder as ``root``) as a :class:`~vpod.db.records.FailureRecord`."""
    return FailureRecord(
        text_path(row["root"], bytes(row["relpath"])), row["reason"], row["last_error"], row["updated_at"],
        row["attempts"], row["policy_name"], _optional(row, "id"),
    )


def in_progress(row: Row, now: float, owner_alive: bool | None) -> InProgress:
    """A ``processing`` row (with ``root`` and ``library``) as :class:`~vpod.db.records.InProgress`;
    ``now`` (epoch seconds, the clock ``progress_at`` was noted by) counts the estimate down."""
    return InProgress(
        text_path(row["root"], bytes(row["relpath"])), row["worker"], row["batch_id"], row["started_at"],
        row["attempts"], row["progress_percent"], eta_now(row["eta_seconds"], row["progress_at"], now),
        library=row["library"], owner_alive=owner_alive,
    )
