"""The PostgreSQL store when its server is gone, and when it comes back (issue 14, the
"database restart" case), on a real server of this module's own (tests/support/postgres.py).

- Every method of the Store protocol raises only :class:`~vpod.errors.StoreError` (or
  :class:`~vpod.errors.StoreBusy`) while the server is stopped: never a driver exception
  (psycopg, psycopg_pool), which would end the daemon thread that called it.
- A store whose server was stopped for longer than psycopg_pool's first reconnection
  tries answers again soon after the server is back (a generous deadline; psycopg_pool's
  own doubling backoff made a node wait about as long as the outage had lasted).
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import EnqueueEntry, Job, Outcome, Store, StoreError
from vpod.fingerprint import StatKey
from vpod.outcomes import Reason
from vpod.results import BatchResult, FileProcessingResult

from tests.support.postgres import PostgresServer, running_postgres

ROOT = Path("/library")
LIVE = 3600.0


def key(n: int = 1) -> StatKey:
    return StatKey(size=100 + n, mtime_ns=n, inode=n, device=1)


class Down:
    """A store, its claimed job and a finished file, all made while the server ran; the
    server is stopped now."""

    def __init__(self, store: Store, job: Job, server: PostgresServer) -> None:
        self.store = store
        self.job = job
        self.server = server


@pytest.fixture(scope="module")
def down(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Down]:
    # ``postgres`` (the session's server, unused here) skips this module where PostgreSQL
    # is missing, as everywhere; the server stopped here is this module's own.
    with running_postgres() as server:
        database = server.database(tmp_path_factory.mktemp("down"), busy_timeout_seconds=0.5)
        store = open_store(database, node="node-a")
        try:
            store.bind_libraries({ROOT: "movies"})
            store.register_owner("daemon", node="node-a", version="test", workers=1)
            store.enqueue(ROOT, b"a.mkv", "fp-a", key(1))
            store.enqueue(ROOT, b"b.mkv", "fp-b", key(2))
            job = store.claim("worker-1", "batch", lease_seconds=LIVE)
            assert job is not None
            assert store.wait_for_work(0) is False  # its LISTEN connection is open
            server.stop("fast")  # every open connection is cut; new ones are refused
            yield Down(store, job, server)
        finally:
            store.close()


def _result(path: Path) -> FileProcessingResult:
    return FileProcessingResult(path=path, success=False, reason=Reason.INTERNAL_ERROR, error="test", permanent=False)


def _scan_lock(store: Store, job: Job) -> Any:
    with store.scan_lock("movies") as got:
        return got


# Every method of the Store protocol that asks the database (location and close do not).
CALLS: dict[str, Callable[[Store, Job], Any]] = {
    "enqueue": lambda s, j: s.enqueue(ROOT, b"c.mkv", "fp-c", key(3)),
    "enqueue_many": lambda s, j: s.enqueue_many([EnqueueEntry(ROOT, b"d.mkv", "fp-d", key(4))]),
    "known_stats": lambda s, j: s.known_stats(ROOT, b""),
    "conforming_stats": lambda s, j: s.conforming_stats(ROOT, b""),
    "next_queued": lambda s, j: s.next_queued(5, ()),
    "next_due_at": lambda s, j: s.next_due_at(),
    "job_for_path": lambda s, j: s.job_for_path(ROOT, b"e.mkv", "fp-e", key(5)),
    "abandon_dead_owners": lambda s, j: s.abandon_dead_owners(),
    "register_owner": lambda s, j: s.register_owner("process", node="node-a"),
    "heartbeat": lambda s, j: s.heartbeat(workers=1),
    "end_owner": lambda s, j: s.end_owner(),
    "owner_alive": lambda s, j: s.owner_alive(1),
    "bind_libraries": lambda s, j: s.bind_libraries({ROOT: "movies", Path("/other"): "other"}),
    "libraries": lambda s, j: s.libraries(),
    "start": lambda s, j: s.start(Job(j.id, j.root, j.relpath, j.fingerprint, j.attempts), "worker-2", "batch"),
    "claim": lambda s, j: s.claim("worker-2", "batch", lease_seconds=LIVE),
    "renew_leases": lambda s, j: s.renew_leases([j], LIVE),
    "confirm_lease": lambda s, j: s.confirm_lease(j, LIVE),
    "scan_lock": _scan_lock,
    "nodes": lambda s, j: s.nodes(),
    "note_progress": lambda s, j: s.note_progress(j, 50.0, 10.0),
    "note_plan": lambda s, j: s.note_plan(j, ["track 1: set default flag on"]),
    "finish": lambda s, j: s.finish(j, Outcome(_result(j.path)), "batch"),
    "retry_later": lambda s, j: s.retry_later(j, _result(j.path), 5.0, "batch"),
    "release": lambda s, j: s.release(j),
    "requeue_interrupted": lambda s, j: s.requeue_interrupted(),
    "requeue_hardlinked": lambda s, j: s.requeue_hardlinked(lambda *_: None),
    "record_batch": lambda s, j: s.record_batch(BatchResult(batch_id="b-1", started_at=time.time()), "daemon"),
    "register_temp": lambda s, j: s.register_temp(ROOT / ".a.mkv.vpod-tmp", j),
    "forget_temp": lambda s, j: s.forget_temp(ROOT / ".a.mkv.vpod-tmp"),
    "pending_temps": lambda s, j: s.pending_temps(),
    "queue_depth": lambda s, j: s.queue_depth(),
    "file_record": lambda s, j: s.file_record(ROOT / "a.mkv"),
    "database_id": lambda s, j: s.database_id(),
    "set_daemon_info": lambda s, j: s.set_daemon_info(state="running"),
    "daemon_info": lambda s, j: s.daemon_info(),
    "queue_report": lambda s, j: s.queue_report(),
    "ping": lambda s, j: s.ping(),
    "check_writable": lambda s, j: s.check_writable(),
    "retry_paths": lambda s, j: s.retry_paths([ROOT / "a.mkv"]),
    "retry_all_failed": lambda s, j: s.retry_all_failed(),
    "read_content": lambda s, j: s.read_content(j, "fp-a", key(1), None),
    "recent_batches": lambda s, j: s.recent_batches(5),
    "list_files": lambda s, j: s.list_files(state="failed"),
    "file_attempts": lambda s, j: s.file_attempts(j.id),
    "hourly_history": lambda s, j: s.hourly_history(time.time() - 3600, time.time()),
    "library_counts": lambda s, j: s.library_counts(),
    "file_path": lambda s, j: s.file_path(j.id),
}


def test_every_store_method_is_covered() -> None:
    # bulk_walk is an attribute, and enqueue_walked_new SQLite's bulk path: PostgreSQL has
    # none (bulk_walk False), so it never asks the server.
    not_asking = {"location", "close", "wait_for_work", "bulk_walk", "enqueue_walked_new"}
    asks = {name for name in dir(Store) if not name.startswith("_")} - not_asking
    assert asks == set(CALLS)


@pytest.fixture(scope="module")
def raised(down: Down) -> dict[str, BaseException | None]:
    """What each method of :data:`CALLS` raised (``None``: nothing) on the stopped server.

    Each call waits for a connection until the pool's timeout (about 1 s) before it can
    fail, so they run all at once, each in a thread of its own, as the daemon's threads
    call one store (one after the other they took about 40 s)."""
    outcomes: dict[str, BaseException | None] = {}

    def call(name: str) -> None:
        try:
            CALLS[name](down.store, down.job)
        except BaseException as exc:  # noqa: BLE001 - the test names what came out
            outcomes[name] = exc
        else:
            outcomes[name] = None

    threads = [threading.Thread(target=call, args=(name,), name=f"call-{name}") for name in sorted(CALLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


@pytest.mark.parametrize("method", sorted(CALLS))
def test_a_stopped_server_is_a_store_error_from_every_method(raised: dict[str, BaseException | None],
                                                             method: str) -> None:
    assert method in raised, f"{method} did not return within 120 s"
    error = raised[method]
    if error is not None and not isinstance(error, StoreError):
        raise error  # a driver exception escaped: its own traceback
    assert isinstance(error, StoreError), f"{method} raised nothing on a stopped server"


def test_waiting_for_work_on_a_stopped_server_waits_and_says_nothing_came(down: Down) -> None:
    assert down.store.wait_for_work(0.2) is False


def test_a_store_answers_again_soon_after_a_long_outage(postgres: PostgresServer, tmp_path: Path) -> None:
    """psycopg_pool alone tries to reconnect 1, 2, 4, 8, 16, 32 s apart: after 36 s of
    outage its next try comes about 20 to 30 s after the server is back. vpod's pool
    tries at most about 2 s apart while a caller waits (vpod/db/pg_pool.py)."""
    with running_postgres() as server:  # this test's own: it stops it
        database: DatabaseConfig = server.database(tmp_path, busy_timeout_seconds=1.0)
        store = open_store(database, node="node-a")
        try:
            store.enqueue(ROOT, b"a.mkv", "fp-a", key(1))
            job = store.claim("worker-1", "batch", lease_seconds=LIVE)
            assert job is not None
            server.stop("fast")
            outage_ends = time.monotonic() + 36.0
            while time.monotonic() < outage_ends:  # a node keeps asking meanwhile (heartbeats, claims, renewals)
                for ask in (store.queue_depth, lambda: store.renew_leases([job], LIVE)):
                    with pytest.raises(StoreError):
                        ask()
                time.sleep(1.0)
            server.start()
            back = time.monotonic()
            answered: dict[str, float] = {}
            while len(answered) < 2 and time.monotonic() - back < 60:
                for name, ask in (("main", store.queue_depth), ("lease", lambda: store.renew_leases([job], LIVE))):
                    if name not in answered:
                        with contextlib.suppress(StoreError):
                            ask()
                            answered[name] = time.monotonic() - back
                time.sleep(0.2)
            # Generous: about 2 s is expected; psycopg_pool's own backoff took 20 s or more here.
            assert answered.get("main", 99) < 12 and answered.get("lease", 99) < 12, answered
            assert store.renew_leases([job], LIVE) == {job.id}
        finally:
            store.close()
