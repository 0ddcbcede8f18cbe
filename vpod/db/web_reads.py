"""The reads of the web API (:mod:`vpod.web.api`), one SQL for SQLite and PostgreSQL.

Each store passes its connection and how it names a file's folder on this node
(:class:`Located`): SQLite keeps it in ``libraries.path``; PostgreSQL in
``library_mounts`` per node. Placeholders are written ``?`` and turned into ``%s``
for PostgreSQL. Every query is bounded (``LIMIT``) except :func:`hourly_history`, which
the database aggregates in one pass over ``results`` (no index on ``started_at``: about
30 ms per 100,000 rows).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

from vpod.db.records import AttemptRecord, BatchRecord, FileListing, HourStats
from vpod.db.rows import batch_record, text_path

HOUR = 3600
"""Seconds in an hour (the buckets of :func:`hourly_history`)."""

BATCHES_SQL = (
    "SELECT b.*, (SELECT COUNT(*) FROM results AS r WHERE r.batch_id = b.batch_id AND r.success = ?"
    " AND r.changes = 0) AS unchanged_count"
    " FROM (SELECT * FROM batches ORDER BY started_at DESC LIMIT ?) AS b ORDER BY b.started_at DESC"
)
"""The last batches with their unchanged count; parameters ``(True, limit)``. The
count is taken for those batches only (``results_by_batch``), not for every batch."""


@dataclass(frozen=True)
class Located:
    """How a store names a file's folder: ``root`` (an SQL expression over ``f``, ``l``
    and the joins), ``joins`` (SQL after ``FROM files AS f JOIN libraries AS l``) and
    their ``params``; ``pg``: placeholders are ``%s``; ``hour``: its SQL for an hour
    number (SQLite's ``CAST`` truncates, PostgreSQL's rounds)."""

    root: str
    joins: str = ""
    params: tuple[Any, ...] = ()
    pg: bool = False
    hour: str = "CAST(started_at / 3600 AS INTEGER)"
    """The hour (epoch seconds / 3600, rounded down) of a ``results`` row's ``started_at``."""

    def sql(self, text: str) -> str:
        """``text`` with this store's placeholders."""
        return text.replace("?", "%s") if self.pg else text


class WebReads:
    """The web API's reads as :class:`~vpod.db.store.Store` methods, for a store that
    gives a read connection (``_reading()``) and how it names folders (``_located()``)."""

    def _located(self) -> Located:
        raise NotImplementedError

    def _reading(self) -> ContextManager[Any]:
        raise NotImplementedError

    def recent_batches(self, limit: int) -> list[BatchRecord]:
        """The last ``limit`` batches, newest first, each with ``unchanged_count``."""
        with self._reading() as conn:
            return recent_batches(conn, self._located(), limit)

    def list_files(
        self, *, state: str | None = None, library: str | None = None, limit: int = 50, after: int = 0,
    ) -> list[FileListing]:
        """Up to ``limit`` files of id above ``after``, by id (:func:`list_files`)."""
        with self._reading() as conn:
            return list_files(conn, self._located(), state=state, library=library, limit=limit, after=after)

    def file_attempts(self, file_id: int, limit: int = 50) -> tuple[FileListing | None, list[AttemptRecord]]:
        """The file of id ``file_id`` and its last ``limit`` attempts, newest first."""
        with self._reading() as conn:
            return file_attempts(conn, self._located(), file_id, limit)

    def hourly_history(self, since: float, until: float) -> list[HourStats]:
        """Outcomes per hour between ``since`` and ``until`` (:func:`hourly_history`)."""
        with self._reading() as conn:
            return hourly_history(conn, self._located(), since=since, until=until)

    def library_counts(self) -> dict[str, dict[str, int]]:
        """Files by state per library name (:func:`library_counts`)."""
        with self._reading() as conn:
            return library_counts(conn)

    def file_path(self, file_id: int) -> Path | None:
        """The path on this node of the file of id ``file_id`` (undecodable bytes as
        surrogate escapes, as :func:`os.fsdecode` gives them), or ``None``: unknown, or
        its library has no folder here."""
        with self._reading() as conn:
            return file_path(conn, self._located(), file_id)


def library_counts(conn: Any) -> dict[str, dict[str, int]]:
    """``{library name: {state: files}}`` (only the states a library has files in);
    one pass over ``files`` (``GROUP BY``; about 10 ms per 100,000 files in SQLite)."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute(
        "SELECT l.name AS library, f.state AS state, COUNT(*) AS n FROM files AS f"
        " JOIN libraries AS l ON l.id = f.library_id GROUP BY l.name, f.state"
    )
    for r in rows:
        out.setdefault(r["library"], {})[r["state"]] = int(r["n"])
    return out


def file_path(conn: Any, where: Located, file_id: int) -> Path | None:
    """The path of the file of id ``file_id`` on this node, or ``None``."""
    rows = list(conn.execute(
        where.sql(
            f"SELECT {where.root} AS root, f.relpath FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
            f"{where.joins} WHERE f.id = ?"
        ),
        [*where.params, file_id],
    ))
    if not rows or rows[0]["root"] is None:
        return None
    return Path(rows[0]["root"]) / os.fsdecode(bytes(rows[0]["relpath"]))


def recent_batches(conn: Any, where: Located, limit: int) -> list[BatchRecord]:
    """The last ``limit`` batches, newest first, with ``unchanged_count``."""
    return [batch_record(r) for r in conn.execute(where.sql(BATCHES_SQL), (True, limit))]


def list_files(
    conn: Any, where: Located, *, state: str | None, library: str | None, limit: int, after: int,
) -> list[FileListing]:
    """Up to ``limit`` files with an id above ``after``, by id; only those in ``state``
    and of the library named ``library`` when given."""
    sql = (
        f"SELECT f.id, {where.root} AS root, l.name AS library, f.relpath, f.state, f.reason, f.last_error,"
        f" f.attempts, f.updated_at, f.policy_name FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
        f"{where.joins} WHERE f.id > ?"
    )
    params: list[Any] = [*where.params, after]
    if state is not None:
        sql += " AND f.state = ?"
        params.append(state)
    if library is not None:
        sql += " AND l.name = ?"
        params.append(library)
    sql += " ORDER BY f.id LIMIT ?"
    params.append(limit)
    return [
        FileListing(
            r["id"], text_path(r["root"], bytes(r["relpath"])), r["library"], r["state"], r["reason"],
            r["last_error"], r["attempts"], r["updated_at"], r["policy_name"],
        )
        for r in conn.execute(where.sql(sql), params)
    ]


def file_attempts(conn: Any, where: Located, file_id: int, limit: int) -> tuple[FileListing | None, list[AttemptRecord]]:
    """The file of id ``file_id`` (``None``: no such file) and its last ``limit``
    recorded attempts (``results`` rows), newest first."""
    found = list_files_by_id(conn, where, file_id)
    rows = conn.execute(
        where.sql(
            "SELECT batch_id, success, skipped, changes, actions, reason, error, started_at, duration_seconds"
            " FROM results WHERE file_id = ? ORDER BY id DESC LIMIT ?"
        ),
        (file_id, limit),
    )
    attempts = [
        AttemptRecord(
            r["batch_id"], _status(r["success"], r["skipped"]), r["changes"] or 0, _actions(r["actions"]),
            r["reason"], r["error"], r["started_at"], r["duration_seconds"],
        )
        for r in rows
    ]
    return found, attempts


def list_files_by_id(conn: Any, where: Located, file_id: int) -> FileListing | None:
    """The file of id ``file_id``, or ``None``."""
    found = list_files(conn, where, state=None, library=None, limit=1, after=file_id - 1)
    return found[0] if found and found[0].id == file_id else None


def hourly_history(conn: Any, where: Located, *, since: float, until: float) -> list[HourStats]:
    """Per hour from the one holding ``since`` to the one holding ``until`` (epoch
    seconds), the outcomes of the attempts that started then (:class:`HourStats`),
    counted by the database (one pass over ``results``); an hour without any is listed
    with zeros."""
    first = int(math.floor(since / HOUR)) * HOUR
    last = int(math.floor(until / HOUR)) * HOUR
    found: dict[int, HourStats] = {}
    rows = conn.execute(
        where.sql(
            f"SELECT {where.hour} AS hour,"
            " SUM(CASE WHEN success = TRUE AND changes > 0 THEN 1 ELSE 0 END) AS done,"
            " SUM(CASE WHEN success <> TRUE AND skipped <> TRUE THEN 1 ELSE 0 END) AS failed,"
            " SUM(CASE WHEN success <> TRUE AND skipped = TRUE THEN 1 ELSE 0 END) AS skipped,"
            " SUM(CASE WHEN success = TRUE AND changes = 0 THEN 1 ELSE 0 END) AS unchanged,"
            " AVG(duration_seconds) AS mean_seconds"
            " FROM results WHERE started_at >= ? AND started_at < ? GROUP BY 1"
        ),
        (first, last + HOUR),
    )
    for r in rows:
        hour = int(r["hour"]) * HOUR
        mean = r["mean_seconds"]
        found[hour] = HourStats(
            hour, int(r["done"] or 0), int(r["failed"] or 0), int(r["skipped"] or 0), int(r["unchanged"] or 0),
            None if mean is None else round(float(mean), 3),
        )
    return [found.get(hour, HourStats(hour)) for hour in range(first, last + 1, HOUR)]


def _status(success: Any, skipped: Any) -> str:
    return "done" if success else ("skipped" if skipped else "failed")


def _actions(value: str | None) -> tuple[str, ...]:
    try:
        found = json.loads(value) if value else []
    except ValueError:
        return ()
    return tuple(str(a) for a in found) if isinstance(found, list) else ()
