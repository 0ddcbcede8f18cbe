"""Each node records its batch windows with its node id (issue 14, must-have 6), on
every backend of the store contract (tests/unit/test_store_contract.py BACKENDS)."""

from __future__ import annotations

import socket

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.results import BatchResult

from tests.unit.test_store_contract import backend, database  # noqa: F401 (fixtures: one run per backend)


def test_each_batch_names_the_node_that_closed_it(database: DatabaseConfig) -> None:  # noqa: F811
    stores = {name: open_store(database, node=name) for name in ("nas-a", "nas-b")}
    try:
        for n, (name, store) in enumerate(stores.items()):
            store.register_owner("daemon", node=name, version="0.14", workers=1)
            store.record_batch(BatchResult(f"batch-{name}", started_at=100.0 + n, ended_at=101.0 + n), "daemon")
        report = stores["nas-a"].queue_report(batches=5)
        assert {b.batch_id: b.node for b in report.last_batches} == {"batch-nas-a": "nas-a", "batch-nas-b": "nas-b"}
    finally:
        for store in stores.values():
            store.close()


def test_a_batch_without_an_owner_names_this_host(database: DatabaseConfig) -> None:  # noqa: F811
    store = open_store(database)
    try:
        store.record_batch(BatchResult("cli", started_at=1.0, ended_at=2.0), "process")
        [batch] = store.queue_report(batches=5).last_batches
        assert batch.batch_id == "cli" and batch.node == socket.gethostname()
    finally:
        store.close()
