"""The Feeder: a free worker claims its next job; nothing is read ahead into memory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Job, Outcome
from vpod.feeder import IDLE_POLL_SECONDS, Feeder
from vpod.fingerprint import StatKey
from vpod.results import FileProcessingResult

ROOT = Path("/library")


def key(n: int) -> StatKey:
    return StatKey(n, n, n, 1)


class Clock:
    """Monotonic seconds the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    opened = open_store(DatabaseConfig(path=tmp_path / "f.db"))
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feeder(store, clock):
    return Feeder(store, threading.Event(), threading.Event(), batch_id=lambda: "b1", lease_seconds=60, clock=clock)


def states(store) -> dict[str, int]:
    return {k: v for k, v in store.queue_report().counts.items() if v}


def test_a_free_worker_claims_one_job_and_the_rest_stay_queued(store, feeder):
    """No prefetch: five queued files, one free worker, one claim."""
    for i in range(5):
        store.enqueue(ROOT, f"f{i}.mkv".encode(), f"fp{i}", key(i))
    job = feeder.try_claim("worker-1")
    assert isinstance(job, Job) and job.relpath == b"f0.mkv" and job.lease
    assert states(store) == {"queued": 4, "processing": 1}
    assert store.queue_report().in_progress[0].worker == "worker-1"
    assert feeder.inflight() == 1
    store.finish(job, Outcome(FileProcessingResult(path=job.path, success=True)), "b1")
    feeder.done(job)
    assert feeder.inflight() == 0


def test_nothing_is_claimed_while_paused_or_while_outcomes_cannot_be_recorded(store, feeder):
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    feeder.paused.set()
    assert feeder.try_claim("worker-1") is None  # wait until poked (a resume)
    feeder.paused.clear()
    feeder.record_failed(Job(99, ROOT, b"gone.mkv", None, 0))
    assert feeder.try_claim("worker-1") > 0  # the backoff's seconds
    assert states(store) == {"queued": 1}


def test_only_the_libraries_this_node_may_use_are_claimed_from(store, clock):
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    allowed: list[str] = []
    feeder = Feeder(store, threading.Event(), threading.Event(), libraries=lambda: allowed, clock=clock)
    assert not isinstance(feeder.try_claim("worker-1"), Job)
    [library] = store.libraries()
    allowed.append(library.name)
    feeder.poke()
    assert isinstance(feeder.try_claim("worker-1"), Job)


def test_an_idle_node_looks_again_at_the_poll_without_being_told(store, feeder, clock):
    """Another node may queue work without a signal reaching this one: the idle poll finds it."""
    assert feeder.try_claim("worker-1") == pytest.approx(IDLE_POLL_SECONDS)  # nothing: wait for the poll
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))  # no poke
    assert not isinstance(feeder.try_claim("worker-1"), Job)  # before the poll: no query
    clock.now += IDLE_POLL_SECONDS
    assert isinstance(feeder.try_claim("worker-1"), Job)


def test_a_poke_makes_waiting_workers_look_at_once(store, feeder):
    assert not isinstance(feeder.try_claim("worker-1"), Job)
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    feeder.poke()
    assert isinstance(feeder.try_claim("worker-1"), Job)


def test_a_retry_is_claimed_when_due(store, feeder):
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    job = feeder.try_claim("worker-1")
    result = FileProcessingResult(path=job.path, success=False, reason="timeout", permanent=False)
    store.retry_later(job, result, 0.3, "b")
    feeder.done(job, requeued=True)
    wait = feeder.try_claim("worker-1")
    assert not isinstance(wait, Job) and 0 < wait <= 0.3  # sleeps until the retry is due
    again = None
    for _ in range(50):  # take() waits at most until the retry is due, then claims it
        again = feeder.take("worker-1")
        if again is not None:
            break
    assert again is not None and again.id == job.id


def test_take_returns_when_poked(store, feeder):
    """An idle worker waiting in take() wakes on a poke (stop, retire, new work)."""
    assert not isinstance(feeder.try_claim("worker-1"), Job)
    timer = threading.Timer(0.1, feeder.poke)
    timer.start()
    assert feeder.take("worker-1") is None
    timer.join()


def test_a_job_this_node_avoids_is_left_to_the_others_until_the_wait_ends(store, feeder, clock):
    """After a hung tool (Feeder.avoid), this node claims the other due jobs, not that
    one; with only that one due it waits (no tight loop) until the wait ends, then may
    take it again (a file that hangs everywhere still uses up its attempts)."""
    store.enqueue(ROOT, b"hung.mkv", "fh", key(1))
    store.enqueue(ROOT, b"other.mkv", "fo", key(2))
    hung = feeder.try_claim("worker-1")
    assert isinstance(hung, Job) and hung.relpath == b"hung.mkv"
    store.retry_later(hung, FileProcessingResult(path=hung.path, success=False, error="hung"), 0, "b1")
    feeder.avoid(hung, 30.0)
    feeder.done(hung, requeued=True)
    taken = feeder.try_claim("worker-1")
    assert isinstance(taken, Job) and taken.relpath == b"other.mkv"
    wait = feeder.try_claim("worker-2")
    assert isinstance(wait, float) and 0 < wait <= 30.0  # only the avoided job is due: wait for its end
    clock.now += 30.0
    feeder.poke()
    again = feeder.try_claim("worker-2")
    assert isinstance(again, Job) and again.id == hung.id


def test_refused_claims_are_tried_again_at_most_fifteen_seconds_apart(store, feeder, clock):
    """After a long database outage a node is back at work within seconds: the wait
    between refused claims doubles from 2 s but stops at 15 s (not the 5 min of an
    outcome that cannot be recorded)."""
    store.enqueue(ROOT, b"a.mkv", "fa", key(1))
    store.close()  # every write now raises StoreError, as an unreachable server does
    waits = []
    for _ in range(6):
        wait = feeder.try_claim("worker-1")
        assert isinstance(wait, float)
        waits.append(wait)
        clock.now += wait
    assert waits == [2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
