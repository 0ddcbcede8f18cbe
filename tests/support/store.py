"""Read a test daemon's store the way vpod does: through the factory and Store methods, no SQL.

Integration tests use these instead of querying tables, so they hold for any backend
and survive schema changes. What no Store method says (the ``results`` history, the
stored root of a row) is still read with SQL where a test needs it.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.records import BatchRecord, FileRecord
from vpod.db.store import Store


@contextmanager
def store_at(database: Path) -> Iterator[Store]:
    """The store in the file ``database`` (``[database] path``), closed on exit."""
    store = open_store(DatabaseConfig(path=database))
    try:
        yield store
    finally:
        store.close()


def file_record(database: Path, path: Path) -> FileRecord:
    """What the store at ``database`` holds about absolute ``path``; fails the test when
    it holds nothing."""
    with store_at(database) as store:
        record = store.file_record(path)
    assert record is not None, f"no record of {path} in {database}"
    return record


def state_counts(database: Path) -> dict[str, int]:
    """Files by state (queued, processing, done, failed, skipped), as ``vpod status`` counts them."""
    with store_at(database) as store:
        return store.queue_report(batches=0, failures=0).counts


def batch_record(database: Path, batch_id: str) -> BatchRecord:
    """The stored batch ``batch_id`` (among the last 1,000); fails the test when absent."""
    with store_at(database) as store:
        batches = store.queue_report(batches=1000, failures=0).last_batches
    [found] = [b for b in batches if b.batch_id == batch_id]
    return found
