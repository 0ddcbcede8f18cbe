"""What only the PostgreSQL store has (issue 14, must-have 1), on a real server
(tests/support/postgres.py): the schema version guard, the password kept out of every
message, ``FOR UPDATE SKIP LOCKED`` claims, ``LISTEN``/``NOTIFY`` wake-ups, the advisory
scan lock, per-node library folders, driver errors mapped to the store's, and the
connection settings. What both backends share is tests/unit/test_store_contract.py."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.pg_schema import SCHEMA_VERSION
from vpod.db.store import EnqueueOutcome, Outcome, Store, StoreBusy, StoreError
from vpod.fingerprint import StatKey
from vpod.results import FileProcessingResult

from tests.support.postgres import PASSWORD, PostgresServer, running_postgres

ROOT = Path("/library")
LIVE = 3600.0


def key(n: int = 1) -> StatKey:
    return StatKey(size=100 + n, mtime_ns=n, inode=n, device=1)


@pytest.fixture
def database(postgres: PostgresServer, tmp_path: Path) -> DatabaseConfig:
    return postgres.database(tmp_path)


@pytest.fixture
def store(database: DatabaseConfig) -> Iterator[Store]:
    opened = open_store(database, node="node-a")
    yield opened
    opened.close()


@pytest.fixture
def other(database: DatabaseConfig) -> Iterator[Store]:
    """Another node on the same database."""
    opened = open_store(database, node="node-b")
    yield opened
    opened.close()


def dbname(database: DatabaseConfig) -> str:
    return database.url.rsplit("/", 1)[1]


# -- schema -------------------------------------------------------------------------------


def test_a_database_newer_than_this_vpod_is_refused_naming_both_versions(postgres, database):
    open_store(database).close()
    postgres.admin_sql(f"UPDATE vpod_schema SET version = {SCHEMA_VERSION + 1}", dbname(database))
    with pytest.raises(StoreError) as refused:
        open_store(database)
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message and f"({SCHEMA_VERSION})" in message
    assert "upgrade vpod" in message


def test_a_running_node_claims_nothing_once_a_newer_node_upgraded_the_schema(postgres, store, database):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    postgres.admin_sql(f"UPDATE vpod_schema SET version = {SCHEMA_VERSION + 1}", dbname(database))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*claims nothing"):
        store.claim("w", "b", lease_seconds=LIVE)
    assert store.file_record(ROOT / "a.mkv").state == "queued"
    postgres.admin_sql(f"UPDATE vpod_schema SET version = {SCHEMA_VERSION}", dbname(database))
    assert store.claim("w", "b", lease_seconds=LIVE) is not None


def test_nodes_opening_a_new_database_at_once_make_one_schema(postgres, database):
    """The migration runs under an advisory lock: racing nodes neither fail nor make it twice."""
    opened: list[Store] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one(n: int) -> None:
        barrier.wait()
        try:
            opened.append(open_store(database, node=f"node-{n}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len({s.database_id() for s in opened}) == 1
    for one in opened:
        one.close()
    assert postgres.admin_sql("SELECT count(*) FROM vpod_schema", dbname(database)) == [(1,)]


# -- the password --------------------------------------------------------------------------


def test_location_and_errors_never_show_the_password(postgres, database, tmp_path):
    in_url = dataclasses.replace(
        database, url=database.url.replace("vpod@", f"vpod:{PASSWORD}@"), password_file=""
    )
    store = open_store(in_url)
    try:
        assert PASSWORD not in store.location and store.location.startswith("postgresql://vpod@127.0.0.1:")
        assert store.queue_depth() == 0
    finally:
        store.close()
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    with pytest.raises(StoreError) as refused:
        open_store(dataclasses.replace(database, password_file=str(wrong)))
    assert "password authentication failed" in str(refused.value) and "not-the-password" not in str(refused.value)
    bad_url = dataclasses.replace(in_url, url=in_url.url.rsplit("/", 1)[0] + "/no_such_database")
    with pytest.raises(StoreError) as missing:
        open_store(bad_url)
    assert PASSWORD not in str(missing.value) and "no_such_database" in str(missing.value)


def test_an_unreadable_password_file_is_named_not_shown(database, tmp_path):
    with pytest.raises(StoreError, match="password_file .*absent"):
        open_store(dataclasses.replace(database, password_file=str(tmp_path / "absent")))


# -- claims ------------------------------------------------------------------------------


def test_a_claim_skips_a_row_another_transaction_holds_instead_of_waiting(postgres, store, database):
    """FOR UPDATE SKIP LOCKED: while another node's transaction has the oldest row locked,
    a claim takes the next one at once (no wait, no error), and never the locked one."""
    store.enqueue(ROOT, b"first.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"second.mkv", "fp2", key(2))
    with psycopg.connect(postgres.admin_url(dbname(database))) as holder:
        holder.execute("SELECT id FROM files WHERE relpath = %s FOR UPDATE", (b"first.mkv",))
        claimed = store.claim("w", "b", lease_seconds=LIVE)
        assert claimed is not None and claimed.relpath == b"second.mkv"
        assert store.claim("w", "b", lease_seconds=LIVE) is None  # the locked row is skipped, not waited for
        holder.rollback()
    again = store.claim("w", "b", lease_seconds=LIVE)
    assert again is not None and again.relpath == b"first.mkv"


def test_two_nodes_claiming_from_many_threads_never_share_a_row(store, other):
    files = 30
    for n in range(files):
        store.enqueue(ROOT, f"{n:02}.mkv".encode(), f"fp{n}", key(n))
    store.bind_libraries({ROOT: "movies"})
    other.bind_libraries({ROOT: "movies"})
    won: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        node = store if index % 2 else other
        barrier.wait()
        while (job := node.claim(f"w{index}", "b", lease_seconds=LIVE)) is not None:
            with lock:
                won.append(job.id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == files and len(set(won)) == files
    assert store.queue_report().counts["processing"] == files


def test_an_enqueue_never_turns_another_nodes_claim_back_into_queued(store, other):
    """Two nodes watching one library see the same files while a third party claims them:
    one job per file, and no claimed row goes back to ``queued``."""
    for n in range(20):
        store.enqueue(ROOT, f"{n:02}.mkv".encode(), f"fp{n}", key(n))
    claimed = []
    for _ in range(10):
        job = store.claim("w", "b", lease_seconds=LIVE)
        assert job is not None
        claimed.append(job)
    barrier = threading.Barrier(2)

    def watch(node: Store) -> None:
        barrier.wait()
        for n in range(20):
            assert node.enqueue(ROOT, f"{n:02}.mkv".encode(), f"fp{n}-changed", key(n)) is (
                EnqueueOutcome.ALREADY_QUEUED
            )

    threads = [threading.Thread(target=watch, args=(node,)) for node in (store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = store.queue_report()
    assert (report.counts["processing"], report.counts["queued"]) == (10, 10)
    assert all(store.confirm_lease(job, LIVE) for job in claimed)


def test_each_node_has_its_own_folder_of_a_library(store, other):
    """One library, two mounts: a job claimed by node-b names node-b's folder; a file seen
    by both nodes is one job; a node without a folder for the library claims nothing of it."""
    store.bind_libraries({Path("/mnt/a/movies"): "movies"})
    assert store.enqueue(Path("/mnt/a/movies"), b"x.mkv", "fp", key()) is EnqueueOutcome.QUEUED
    assert other.claim("w", "b", lease_seconds=LIVE) is None  # node-b has no folder for movies yet
    [change] = other.bind_libraries({Path("/srv/b/movies"): "movies"})
    assert (change.name, change.change) == ("movies", "moved")
    assert other.enqueue(Path("/srv/b/movies"), b"x.mkv", "fp", key()) is EnqueueOutcome.ALREADY_QUEUED
    job = other.claim("w", "b", lease_seconds=LIVE)
    assert job is not None and job.path == Path("/srv/b/movies/x.mkv") and job.library == "movies"
    assert store.file_record(Path("/mnt/a/movies/x.mkv")).state == "processing"
    assert [(lib.name, lib.path) for lib in store.libraries()] == [("movies", "/mnt/a/movies")]
    assert [(lib.name, lib.path) for lib in other.libraries()] == [("movies", "/srv/b/movies")]
    assert store.libraries()[0].uid == other.libraries()[0].uid


def test_a_temp_file_is_swept_by_any_node_under_its_own_folder(store, other):
    store.bind_libraries({Path("/mnt/a/movies"): "movies"})
    other.bind_libraries({Path("/srv/b/movies"): "movies"})
    store.enqueue(Path("/mnt/a/movies"), b"x.mkv", "fp", key())
    job = store.claim("w", "b", lease_seconds=0.0)  # its node dies: the lease ends
    store.register_temp(Path("/mnt/a/movies/.vpod-tmp-x.mkv"), job)
    assert other.pending_temps() == [Path("/srv/b/movies/.vpod-tmp-x.mkv")]
    other.forget_temp(Path("/srv/b/movies/.vpod-tmp-x.mkv"))
    assert store.pending_temps() == []


# -- LISTEN/NOTIFY, the scan lock ---------------------------------------------------------


def test_work_queued_by_another_node_wakes_a_waiting_node(store, other):
    assert store.wait_for_work(0) is False  # listening from now on; nothing queued yet
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(120)))
    waiter.start()
    other.enqueue(ROOT, b"new.mkv", "fp", key())
    waiter.join(timeout=120)
    assert woke == [True]
    assert store.wait_for_work(0) is False  # the announcement was taken once


def test_nothing_queued_sends_no_wake_up(store, other):
    assert store.wait_for_work(0) is False
    other.enqueue(ROOT, b"a.mkv", "fp", key())
    assert store.wait_for_work(60) is True
    assert other.enqueue(ROOT, b"a.mkv", "fp", key()) is EnqueueOutcome.ALREADY_QUEUED
    assert store.wait_for_work(0.2) is False


def test_the_scan_lock_excludes_a_second_holder_until_released(store, other):
    with store.scan_lock("movies") as mine:
        assert mine is True
        with other.scan_lock("movies") as theirs:
            assert theirs is False
        with other.scan_lock("shows") as another_library:
            assert another_library is True
    with other.scan_lock("movies") as after:
        assert after is True


# -- errors and connection settings ----------------------------------------------------


def test_a_lock_held_past_the_busy_timeout_is_store_busy(postgres, database):
    store = open_store(dataclasses.replace(database, busy_timeout_seconds=0.2))
    try:
        with psycopg.connect(postgres.admin_url(dbname(database))) as holder:
            holder.execute("LOCK TABLE files IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreBusy):
                store.enqueue(ROOT, b"a.mkv", "fp", key())
            holder.rollback()
        assert store.enqueue(ROOT, b"a.mkv", "fp", key()) is EnqueueOutcome.QUEUED
    finally:
        store.close()


def test_an_unreachable_server_is_a_store_error(postgres, database):
    from tests.support.postgres import free_port

    port = free_port()
    url = database.url.replace(f":{postgres.port}/", f":{port}/")
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
        open_store(dataclasses.replace(database, url=url))


def test_connections_carry_a_statement_timeout_keepalives_and_the_node_name(postgres, store, database):
    rows = postgres.admin_sql(
        "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()", dbname(database)
    )
    assert ("vpod:node-a",) in rows
    with store.pool.read() as conn:  # type: ignore[attr-defined]
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[name]
            for name in ("statement_timeout", "idle_in_transaction_session_timeout", "lock_timeout")
        }
        params = conn.info.get_parameters()
    assert settings == {"statement_timeout": "30s", "idle_in_transaction_session_timeout": "1min", "lock_timeout": "5s"}
    assert (params["keepalives_idle"], params["keepalives_interval"], params["keepalives_count"]) == ("10", "5", "3")


# -- a database that goes away and comes back ----------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own: the test stops and restarts it."""
    with running_postgres() as server:
        yield server


def answering(read, deadline_seconds: float = 30.0):
    """``read()`` once the store answers again after a restart: StoreBusy (the pool is
    still reconnecting) is retried until a generous deadline, not timed."""
    import time

    from vpod.db.store import StoreBusy

    give_up = time.monotonic() + deadline_seconds
    while True:
        try:
            return read()
        except StoreBusy:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def test_the_store_carries_on_after_a_database_restart_and_waits_out_a_stop(own_server, tmp_path):
    database = own_server.database(tmp_path, busy_timeout_seconds=1.0)
    store = open_store(database, node="node-a")
    other = open_store(database, node="node-b")
    try:
        store.enqueue(ROOT, b"a.mkv", "fp", key(1))
        job = store.claim("w", "b", lease_seconds=LIVE)
        assert store.wait_for_work(0) is False  # listening
        own_server.restart("fast")
        # Every pooled connection was cut: each is checked before use and made again
        # (StoreBusy while the pool reconnects, a second or two after the server answers).
        assert answering(store.queue_depth) == 0 and store.renew_leases([job], LIVE) == {job.id}
        assert store.wait_for_work(0.5) is False  # finds its LISTEN connection cut, makes it again, waits on
        other.enqueue(ROOT, b"b.mkv", "fp", key(2))
        assert store.wait_for_work(60) is True
        own_server.stop("immediate")
        with pytest.raises(StoreError):  # StoreBusy: the database does not answer (not a hang, not a driver error)
            store.queue_depth()
        with pytest.raises(StoreError):
            store.renew_leases([job], LIVE)
        own_server.start()
        assert answering(store.queue_depth) == 1 and store.confirm_lease(job, LIVE)
    finally:
        store.close()
        other.close()


def test_an_upsert_that_waited_for_another_nodes_claim_leaves_the_claim(postgres, store, database):
    """The race the upsert's guard is for: this node reads a file as done (new content:
    queue it), while another node, holding the row, queues and claims it. The upsert
    waits for that row, then finds it in progress and leaves it: ALREADY_QUEUED."""
    store.enqueue(ROOT, b"a.mkv", "fp-old", key(1))
    job = store.claim("w", "b", lease_seconds=LIVE)
    store.finish(job, Outcome(FileProcessingResult(path=job.path, success=True), "fp-out", key(2)), "b")
    name = dbname(database)
    with psycopg.connect(postgres.admin_url(name)) as other_node:
        other_node.execute(
            "UPDATE files SET state = 'processing', lease_token = 'x', lease_until = 1e12 WHERE relpath = %s",
            (b"a.mkv",),
        )  # not committed yet: the row is locked
        outcome: list[EnqueueOutcome] = []
        racer = threading.Thread(target=lambda: outcome.append(store.enqueue(ROOT, b"a.mkv", "fp-new", key(3))))
        racer.start()
        wait_until_blocked(postgres, name, racer)
        other_node.commit()
        racer.join()
    assert outcome == [EnqueueOutcome.ALREADY_QUEUED]
    record = store.file_record(ROOT / "a.mkv")
    assert (record.state, record.fingerprint) == ("processing", "fp-old")


def wait_until_blocked(postgres: PostgresServer, name: str, thread: threading.Thread) -> None:
    """Until a session of database ``name`` waits for a lock (``thread`` is blocked on it)."""
    while not postgres.admin_sql(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", name
    ):
        assert thread.is_alive()
        time.sleep(0.05)


def test_two_nodes_naming_a_new_library_at_once_share_it(postgres, store, database):
    """Nodes started together both find no library "movies": the second to write it joins
    the first's instead of failing on the unique name."""
    name = dbname(database)
    with psycopg.connect(postgres.admin_url(name)) as first_node:
        first_node.execute("INSERT INTO libraries (name, created_at) VALUES ('movies', 0)")  # not committed yet
        changes: list = []
        second = threading.Thread(target=lambda: changes.extend(store.bind_libraries({Path("/b/movies"): "movies"})))
        second.start()
        wait_until_blocked(postgres, name, second)
        first_node.commit()
        second.join()
    assert [(c.name, c.path, c.change) for c in changes] == [("movies", "/b/movies", "moved")]
    assert [(lib.name, lib.path) for lib in store.libraries()] == [("movies", "/b/movies")]
