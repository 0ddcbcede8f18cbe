"""The lease keeper (vpod.leases) with a fake clock and a fake progress measure, on a
real SQLite store: what is renewed, what is fenced and when, what a fence removes, and
the compare-and-set before a replace. The real tools and the real daemon:
tests/integration/test_leases.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import structlog

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Job
from vpod.errors import LeaseLost, StoreError
from vpod.fingerprint import StatKey
from vpod.leases import LeaseKeeper
from vpod.media.tools import ToolRunner

ROOT = Path("/library")
LEASE = 60.0
BEAT = 15.0


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Progress:
    """The progress measure the test moves: ``moving`` jobs change their sample at each look."""

    def __init__(self) -> None:
        self.moving: set[int] = set()
        self.count = 0

    def __call__(self, claim) -> object:
        self.count += 1
        return self.count if claim.job.id in self.moving else "still"


@pytest.fixture
def store(tmp_path):
    opened = open_store(DatabaseConfig(path=tmp_path / "l.db"))
    opened.register_owner("daemon")
    yield opened
    opened.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def progress():
    return Progress()


@pytest.fixture
def keeper(store, clock, progress):
    return LeaseKeeper(
        store, ToolRunner(10), threading.Event(), lease_seconds=LEASE, heartbeat_seconds=BEAT, clock=clock,
        progress=progress,
    )


def claimed(store, name: bytes, lease: float = LEASE) -> Job:
    store.enqueue(ROOT, name, name.decode(), StatKey(1, 1, 1, 1))
    job = store.claim("worker-1", "b", lease_seconds=lease)
    assert job is not None
    return job


def test_only_claims_that_make_progress_are_renewed(store, keeper, clock, progress):
    moving, stuck = claimed(store, b"moving.mkv"), claimed(store, b"stuck.mkv")
    with keeper.hold(moving, "worker-1"), _held_elsewhere(keeper, stuck):
        progress.moving.add(moving.id)
        clock.now += BEAT
        assert keeper.renew_once() == {moving.id}
        clock.now += BEAT
        assert keeper.renew_once() == {moving.id}


def test_a_claim_without_progress_is_fenced_before_its_lease_ends(store, keeper, clock, tmp_path):
    job = claimed(store, b"stuck.mkv")
    temp = tmp_path / ".vpod-tmp-stuck.mkv"
    with structlog.testing.capture_logs() as logs, keeper.hold(job, "worker-1") as claim:
        keeper.temps.register_temp(temp)
        temp.write_bytes(b"partial")
        clock.now += LEASE - keeper.margin_seconds - 1
        keeper.renew_once()
        assert keeper.fence_overdue() == pytest.approx(1.0)  # not yet: one second left
        assert not claim.fenced.is_set()
        clock.now += 1
        keeper.fence_overdue()
        assert claim.fenced.is_set() and claim.fence_reason == "no_progress"
        assert not temp.exists()  # its temp file is removed with it
        _wait(lambda: temp not in store.pending_temps())  # and forgotten (by the fence's own thread)
        with pytest.raises(LeaseLost):
            keeper.confirm(ROOT / "stuck.mkv")  # nothing may be replaced any more
    [event] = [e for e in logs if e["event"] == "lease_self_fenced"]
    assert event["reason"] == "no_progress" and event["path"] == str(job.path)
    assert event["seconds_since_renewal"] == pytest.approx(LEASE - keeper.margin_seconds)


def test_a_renewal_the_database_refuses_leads_to_a_fence_in_time(store, keeper, clock, progress, monkeypatch):
    job = claimed(store, b"a.mkv")
    progress.moving.add(job.id)

    def unreachable(jobs, lease_seconds):
        raise StoreError("could not connect to the database")

    monkeypatch.setattr(store, "renew_leases", unreachable)
    with structlog.testing.capture_logs() as logs, keeper.hold(job, "worker-1") as claim:
        for _ in range(3):
            clock.now += BEAT
            assert keeper.renew_once() == set()
            keeper.fence_overdue()
        assert claim.fenced.is_set() and claim.fence_reason == "renew_failed"
    assert [e["event"] for e in logs].count("lease_renew_failed") == 3
    [event] = [e for e in logs if e["event"] == "lease_self_fenced"]
    assert "could not connect" in event["error"]


def test_a_claim_another_node_took_is_fenced_at_the_next_renewal(store, keeper, clock, progress, tmp_path):
    job = claimed(store, b"a.mkv", lease=0.0)  # its lease ended: another node may take it
    other = open_store(DatabaseConfig(path=tmp_path / "l.db"))
    try:
        assert other.claim("worker-9", "b", lease_seconds=LEASE).id == job.id
    finally:
        other.close()
    progress.moving.add(job.id)
    with keeper.hold(job, "worker-1") as claim:
        clock.now += BEAT
        assert keeper.renew_once() == set()
        assert claim.fenced.is_set() and claim.fence_reason == "lease_lost"


def test_confirm_is_the_compare_and_set_and_extends_the_lease(store, keeper, clock, tmp_path):
    job = claimed(store, b"a.mkv")
    keeper.confirm(ROOT / "a.mkv")  # no claim held by this thread: nothing to confirm
    with keeper.hold(job, "worker-1") as claim:
        clock.now += 40
        keeper.confirm(ROOT / "a.mkv")
        assert claim.renewed_at == clock.now  # confirmed: the deadline moves on
        store.release(job)  # given back, and claimed by another node
        assert store.claim("worker-9", "b", lease_seconds=LEASE).id == job.id
        with pytest.raises(LeaseLost, match="another node"):
            keeper.confirm(ROOT / "a.mkv")


def test_a_database_that_never_answers_does_not_delay_the_fence(store, keeper, clock, progress, monkeypatch, tmp_path):
    """A cut network: the renewal and the worker's database calls hang (no error, no
    answer). The fence comes at its deadline all the same, says the database is
    unreachable, does not wait on the database to forget the temp, and the worker
    waiting on the database gets LeaseLost as soon as the claim is fenced."""
    job = claimed(store, b"a.mkv")
    silent = threading.Event()  # set at the end: the "network" heals

    def hang(*args, **kwargs):
        silent.wait(30)
        raise StoreError("connection timed out")

    temp = tmp_path / ".vpod-tmp-a.mkv"
    fenced_in: list[str | None] = []
    try:
        with structlog.testing.capture_logs() as logs, keeper.hold(job, "worker-1") as claim:
            keeper.temps.register_temp(temp)
            temp.write_bytes(b"partial")
            for name in ("renew_leases", "forget_temp", "note_progress"):
                monkeypatch.setattr(store, name, hang)

            def keeper_side():
                _wait(lambda: claim.db_call_since is not None)  # the worker waits on the database
                clock.now += BEAT
                threading.Thread(target=keeper.renew_once, daemon=True).start()  # counts as progress: sent
                _wait(lambda: claim.renewing_since is not None)
                clock.now = claim.renewed_at + LEASE - keeper.margin_seconds
                keeper.fence_overdue()  # returns although the renewal and the forget hang
                fenced_in.append(claim.fence_reason)

            side = threading.Thread(target=keeper_side)
            side.start()
            with pytest.raises(LeaseLost, match="no answer"):
                keeper.bounded("recording progress", lambda: store.note_progress(job, 10.0, None))
            side.join(10)
            assert fenced_in == ["database_unreachable"]
            assert not temp.exists()
    finally:
        silent.set()
    [event] = [e for e in logs if e["event"] == "lease_self_fenced"]
    assert event["reason"] == "database_unreachable"
    assert event["seconds_since_renewal"] == pytest.approx(LEASE - keeper.margin_seconds)


def _wait(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds (a deadline for a hung test, not a timed assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def _held_elsewhere(keeper, job):
    """Hold ``job`` in another thread for the block (a second worker)."""
    from contextlib import contextmanager

    @contextmanager
    def held():
        entered, leave = threading.Event(), threading.Event()

        def body():
            with keeper.hold(job, "worker-2"):
                entered.set()
                leave.wait(10)

        thread = threading.Thread(target=body)
        thread.start()
        entered.wait(10)
        try:
            yield
        finally:
            leave.set()
            thread.join()

    return held()


def test_a_renewal_answered_after_its_file_finished_fences_nothing(store, keeper, clock, progress, monkeypatch):
    """CI once saw it: the renewal named a file that finished (its lease released) while
    the renewal was on its way; the stale "not renewed" fenced the ended claim and the
    fence killed the tool the same worker thread had started for the next file."""
    first, second = claimed(store, b"first.mkv"), claimed(store, b"second.mkv")
    progress.moving.add(first.id)
    holding, moved_on, tool_running = threading.Event(), threading.Event(), threading.Event()
    outcome: list[object] = []

    def worker() -> None:
        with keeper.hold(first, "worker-1"):
            holding.set()
            moved_on.wait(10)  # the renewal of `first` is on its way
        with keeper.hold(second, "worker-1"):
            try:
                outcome.append(keeper.runner.run(["sleep", "1"]).returncode)
            except Exception as exc:  # noqa: BLE001 - the test reports what the tool met
                outcome.append(exc)

    def renewal_after_the_file_finished(jobs, lease_seconds):
        moved_on.set()
        _wait(lambda: bool(keeper.runner.pids_of(thread.ident)))  # the next file's tool runs
        tool_running.set()
        return set()  # `first` is no longer held: its row's lease was released

    monkeypatch.setattr(store, "renew_leases", renewal_after_the_file_finished)
    thread = threading.Thread(target=worker)
    with structlog.testing.capture_logs() as logs:
        thread.start()
        holding.wait(10)
        clock.now += BEAT
        assert keeper.renew_once() == set()
        thread.join(10)
    assert tool_running.is_set()
    assert outcome == [0]  # the next file's tool ran to its end
    assert not [e for e in logs if e["event"] == "lease_self_fenced"]
