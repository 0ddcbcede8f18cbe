"""The Feeder: durable queue → bounded memory queue, reading the database only when needed."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.feeder import Feeder
from vpod.fingerprint import StatKey
from vpod.results import FileProcessingResult

ROOT = Path("/library")


def key(n: int) -> StatKey:
    return StatKey(n, n, n, 1)


@pytest.fixture
def rig(tmp_path):
    store = open_store(DatabaseConfig(path=tmp_path / "f.db"))
    jobs: queue.Queue = queue.Queue(maxsize=2)
    stop, paused = threading.Event(), threading.Event()
    feeder = Feeder(store, jobs, stop, paused)
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    yield store, jobs, feeder
    stop.set()
    feeder.wakeup.set()
    thread.join(5)
    store.close()


def finish(store, job) -> None:
    """What a worker does with a job: claim it, then record it done."""
    from vpod.db.store import Outcome

    assert store.start(job, "w", "b")
    store.finish(job, Outcome(FileProcessingResult(path=job.path, success=True)), "b")


def test_backpressure_and_refill(rig):
    store, jobs, feeder = rig
    for i in range(5):
        store.enqueue(ROOT, f"f{i}.mkv".encode(), f"fp{i}", key(i))
    feeder.poke()
    seen = []
    while len(seen) < 5:
        job = jobs.get(timeout=5)
        assert jobs.qsize() <= 2  # never more than the bound in memory
        seen.append(job.relpath)
        finish(store, job)
        feeder.done(job)
    assert sorted(seen) == [f"f{i}.mkv".encode() for i in range(5)]


def test_a_freed_slot_alone_reads_nothing_new(rig):
    """Rows added without a poke (none in practice: intake pokes) stay until told;
    a poke brings them in."""
    store, jobs, feeder = rig
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    feeder.poke()
    job = jobs.get(timeout=5)
    finish(store, job)
    time.sleep(0.3)  # let the feeder finish looking
    store.enqueue(ROOT, b"b.mkv", "fb", key(2))  # no poke
    feeder.done(job)
    with pytest.raises(queue.Empty):
        jobs.get(timeout=0.5)
    feeder.poke()
    assert jobs.get(timeout=5).relpath == b"b.mkv"


def test_a_retry_is_fed_when_due(rig):
    store, jobs, feeder = rig
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    feeder.poke()
    job = jobs.get(timeout=5)
    assert store.start(job, "w", "b")
    result = FileProcessingResult(path=job.path, success=False, reason="timeout", permanent=False)
    store.retry_later(job, result, 0.5, "b")
    feeder.done(job, requeued=True)
    again = jobs.get(timeout=5)
    assert again.id == job.id
