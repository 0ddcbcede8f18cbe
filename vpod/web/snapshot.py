"""The one snapshot the web page, ``GET /api/status`` and ``vpod status --json`` share.

:func:`status_snapshot` is ``vpod status --json``'s report (:meth:`vpod.status.StatusReport.as_dict`,
the same code) plus ``recent_batches`` and ``recent_failures``, read from the database in
one :meth:`~vpod.db.store.Store.queue_report`; :func:`web_snapshot` takes it from a
running daemon's parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpod.db.store import Store
from vpod.status import read_status

if TYPE_CHECKING:
    from vpod.daemon.wiring import Parts

RECENT = 20
"""How many batches and failures ``recent_batches`` / ``recent_failures`` hold."""

CLI_BATCHES = 5
"""``last_batches`` holds as many as ``vpod status --json`` shows by default."""

CLI_FAILURES = 10
"""``last_failures`` holds as many as ``vpod status --json`` shows by default."""

BATCH_KEYS = (
    "batch_id", "started_at", "ended_at", "total_files", "success_count", "fail_count", "skipped_count",
    "unchanged_count", "total_duration_seconds", "stopped_early", "node",
)


def status_snapshot(store: Store, *, config_file: str | None = None) -> dict[str, Any]:
    """``vpod status --json``'s dict (its default 5 batches and 10 failures) plus:

    - ``recent_batches``: the last :data:`RECENT` batches, newest first: ``batch_id``,
      ``started_at`` / ``ended_at`` (epoch s), ``total_files``, ``success_count``,
      ``fail_count``, ``skipped_count``, ``unchanged_count`` (successes that needed no
      change), ``total_duration_seconds``, ``stopped_early``, ``node``;
    - ``recent_failures``: the last :data:`RECENT` failed files, newest first: ``id``
      (for ``/api/files/{id}/events``), ``path`` (undecodable bytes as ``\\xNN``),
      ``library``, ``reason``, ``error`` (the tool's message), ``at`` (epoch s),
      ``attempts``, ``policy``, ``gone`` (the file no longer exists);
    - ``library_counts``: files by state per library, ``{name: {state: files}}`` (every
      state of ``counts``, zeros included).

    Raises:
        StoreError / StoreBusy: the database cannot be read.
    """
    report = read_status(store, batches=max(RECENT, CLI_BATCHES), failures=max(RECENT, CLI_FAILURES),
                         config_file=config_file)
    body = report.as_dict()
    body["last_batches"] = body["last_batches"][:CLI_BATCHES]
    body["last_failures"] = body["last_failures"][:CLI_FAILURES]
    body["recent_batches"] = [{k: getattr(b, k) for k in BATCH_KEYS} for b in report.queue.last_batches]
    body["recent_failures"] = [
        {
            "id": f.file_id, "path": f.path, "library": _library(report.libraries, f.path), "reason": f.reason,
            "error": f.error, "at": f.failed_at, "attempts": f.attempts, "policy": f.policy,
            "gone": f.path in report.gone,
        }
        for f in report.queue.last_failures
    ]
    body["library_counts"] = _library_counts(store, report.libraries, body.get("counts") or {})
    return body


def _library_counts(store: Store, libraries: Any, counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """Files by state per library: with files in one library only (the usual case) its
    counts are ``counts`` and nothing is read; with several, one ``GROUP BY`` over
    ``files`` (:meth:`Store.library_counts`; about 90 ms per 100,000 files on SQLite,
    there being no index on (library, state))."""
    busy = [lib.name for lib in libraries if lib.files]
    if len(busy) > 1:
        found = store.library_counts()
    else:
        found = {busy[0]: counts} if busy else {}
    names = sorted({lib.name for lib in libraries} | set(found))
    return {name: {state: found.get(name, {}).get(state, 0) for state in counts} for name in names}


def web_snapshot(parts: Parts) -> dict[str, Any]:
    """:func:`status_snapshot` of a running daemon (its store: ``parts.snapshot.store``).

    Raises:
        StoreError / StoreBusy: the database cannot be read.
    """
    return status_snapshot(parts.snapshot.store)


def _library(libraries: Any, path: str) -> str | None:
    """The name of the library whose folder holds ``path`` (the longest match)."""
    best: tuple[int, str | None] = (-1, None)
    for lib in libraries:
        folder = (lib.path or "").rstrip("/")
        if folder and path.startswith(folder + "/") and len(folder) > best[0]:
            best = (len(folder), lib.name)
    return best[1]
