"""The web page's snapshot: ``vpod status --json`` plus recent batches and failures.

STAND-IN written by the page engineer of issue 17 so the page can be built and tested
before the api engineer's ``vpod/web/snapshot.py`` lands; the lead takes api's version
at merge. Besides the contract's keys (SPEC-17: ``recent_batches``, ``recent_failures``)
the page reads two optional keys, drawn when present: ``library_counts`` (library name
-> state -> number of files; issue 17 item 1, "counts by state per library") and the
chart rows of :func:`web_history` (``GET /api/history``). The extra queries here read
SQLite only (the rows are empty on PostgreSQL): api's version owns them on both stores.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from vpod.db.rows import text_path
from vpod.status import read_status

if TYPE_CHECKING:
    from vpod.daemon.wiring import Parts
    from vpod.db.store import Store

RECENT = 20
"""Batches and failures in the snapshot."""

BATCH_KEYS = (
    "batch_id", "started_at", "ended_at", "total_files", "success_count", "fail_count", "skipped_count",
    "unchanged_count", "total_duration_seconds", "stopped_early",
)


def web_snapshot(parts: Parts) -> dict[str, Any]:
    """The snapshot dict the page renders: :meth:`vpod.status.StatusReport.as_dict` plus
    ``recent_batches`` (newest first; ``unchanged_count`` ``None``: not recorded),
    ``recent_failures`` (newest first: ``path``, ``library``, ``reason``, ``error``,
    ``at`` epoch seconds, ``id`` the file's row id) and ``library_counts``.

    Raises:
        StoreError: the database cannot be read.
    """
    store = parts.snapshot.store
    report = read_status(store, batches=RECENT, failures=RECENT)
    snap = report.as_dict()
    snap["recent_batches"] = [
        {key: asdict(b).get(key) for key in BATCH_KEYS} for b in report.queue.last_batches
    ]
    snap["recent_failures"] = _failures(store)
    snap["library_counts"] = _library_counts(store)
    return snap


def _failures(store: Store) -> list[dict[str, Any]]:
    pool = getattr(store, "pool", None)
    if pool is None or not hasattr(pool, "read"):
        return []
    with pool.read() as conn:
        rows = conn.execute(
            "SELECT f.id, l.name AS library, COALESCE(l.path, f.root) AS root, f.relpath, f.reason, f.last_error,"
            " f.updated_at FROM files AS f JOIN libraries AS l ON l.id = f.library_id"
            " WHERE f.state = 'failed' ORDER BY f.updated_at DESC LIMIT ?", (RECENT,),
        ).fetchall()
    return [
        {"path": text_path(r["root"], bytes(r["relpath"])), "library": r["library"], "reason": r["reason"],
         "error": r["last_error"], "at": r["updated_at"], "id": r["id"]}
        for r in rows
    ]


def _library_counts(store: Store) -> dict[str, dict[str, int]]:
    pool = getattr(store, "pool", None)
    if pool is None or not hasattr(pool, "read"):
        return {}
    out: dict[str, dict[str, int]] = {}
    with pool.read() as conn:
        for r in conn.execute(
            "SELECT l.name AS library, f.state, COUNT(*) AS n FROM files AS f"
            " JOIN libraries AS l ON l.id = f.library_id GROUP BY l.name, f.state ORDER BY l.name"
        ):
            out.setdefault(str(r["library"]), {})[str(r["state"])] = int(r["n"])
    return out


def web_history(parts: Parts, hours: int = 24) -> list[dict[str, Any]]:
    """Files finished per hour over the last ``hours`` hours, oldest first: ``hour``
    (epoch seconds of the hour's start), ``done``, ``failed``, ``skipped``,
    ``unchanged`` (files) and ``mean_seconds`` (mean time per file, ``None``: none).
    Every hour is present, with zeros when nothing finished."""
    now = time.time()
    first = (int(now) // 3600 - hours + 1) * 3600
    rows = {h: {"hour": h, "done": 0, "failed": 0, "skipped": 0, "unchanged": 0, "mean_seconds": None}
            for h in range(first, first + hours * 3600, 3600)}
    pool = getattr(parts.snapshot.store, "pool", None)
    if pool is None or not hasattr(pool, "read"):
        return list(rows.values())
    with pool.read() as conn:
        for r in conn.execute(
            "SELECT CAST(COALESCE(started_at, 0) + COALESCE(duration_seconds, 0) AS INTEGER) / 3600 * 3600 AS hour,"
            " SUM(success AND changes > 0) AS done, SUM(success AND changes = 0) AS unchanged,"
            " SUM(skipped) AS skipped, SUM(NOT success AND NOT skipped) AS failed,"
            " AVG(duration_seconds) AS mean_seconds FROM results"
            " WHERE COALESCE(started_at, 0) + COALESCE(duration_seconds, 0) >= ? GROUP BY 1", (first,),
        ):
            row = rows.get(int(r["hour"]))
            if row is not None:
                row.update(done=int(r["done"] or 0), unchanged=int(r["unchanged"] or 0), skipped=int(r["skipped"] or 0),
                           failed=int(r["failed"] or 0), mean_seconds=r["mean_seconds"])
    return list(rows.values())
