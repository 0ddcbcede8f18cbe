"""The Store contract: one set of behavioural tests that every backend must pass.

Each test runs once per entry of :data:`BACKENDS`, through the same factory the daemon
uses (:func:`vpod.db.factory.open_store`) and only the :class:`~vpod.db.store.Store`
protocol: no SQL, no backend class. SQLite, and PostgreSQL on a real server (the
``postgres`` fixture, tests/support/postgres.py: a fresh database per test). What only
one backend has (SQLite's WAL, file modes, migrations of old schema versions; PostgreSQL's
SKIP LOCKED, NOTIFY, advisory locks, schema guard) is tested beside that backend
(tests/unit/test_store.py, tests/unit/test_pool.py, tests/unit/test_pg_store.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
import re
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.records import Conforming, RetryOutcome
from vpod.db.store import EnqueueEntry, EnqueueOutcome, Job, Outcome, Store, StoreBusy, StoreError, WalkedFolder
from vpod.errors import LeaseLost, VpodError
from vpod.fingerprint import StatKey, is_unread, unread
from vpod.media.model import Track
from vpod.outcomes import Reason
from vpod.results import BatchResult, FileProcessingResult

from tests.support.stores import own_a_row_and_exit

BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], DatabaseConfig]] = {
    "sqlite": lambda request, tmp_path: DatabaseConfig(path=tmp_path / "contract.db", busy_timeout_seconds=2.0),
    # A fresh database on the session's PostgreSQL server (tests/support/postgres.py).
    "postgresql": lambda request, tmp_path: request.getfixturevalue("postgres").database(tmp_path),
}
"""Each backend's ``[database]`` section for a fresh, empty store (``tmp_path``: a folder for it)."""

ROOT = Path("/library")
POLICY_A = "digest-of-policy-a"
POLICY_B = "digest-of-policy-b"


def key(n: int = 1) -> StatKey:
    return StatKey(size=100 + n, mtime_ns=n, inode=n, device=1)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend's name in turn."""
    return request.param


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> DatabaseConfig:
    """The ``[database]`` section of a fresh store of ``backend``."""
    return BACKENDS[backend](request, tmp_path)


@pytest.fixture
def store(database: DatabaseConfig) -> Iterator[Store]:
    opened = open_store(database)
    yield opened
    opened.close()


def claim(store: Store, worker: str = "w", batch_id: str = "b") -> Job:
    """The one job due now, started by ``worker``."""
    [job] = store.next_queued(1, ())
    assert store.start(job, worker, batch_id)
    return job


def done(store: Store, job: Job, fingerprint_after: str, stat: StatKey, policy_digest: str = POLICY_A) -> None:
    result = FileProcessingResult(path=job.path, success=True, changes=1)
    store.finish(job, Outcome(result, fingerprint_after, stat, policy_digest=policy_digest), "b1")


def fail(store: Store, job: Job, reason: str = "unreadable", *, permanent: bool = True, **outcome) -> None:
    result = FileProcessingResult(path=job.path, success=False, error=f"{job.path}: {reason}", reason=reason,
                                  permanent=permanent)
    store.finish(job, Outcome(result, **outcome), "b")


# -- errors ----------------------------------------------------------------------------


def test_the_store_errors_are_backend_neutral_vpod_errors():
    """Under vpod's error root (the CLI maps them to exit status 70), defined by no backend."""
    import vpod.errors

    assert issubclass(StoreError, VpodError) and issubclass(StoreBusy, StoreError)
    assert (StoreError, StoreBusy) == (vpod.errors.StoreError, vpod.errors.StoreBusy)


def test_writes_after_close_raise_store_error(database):
    store = open_store(database)
    store.close()
    with pytest.raises(StoreError):
        store.enqueue(ROOT, b"a.mkv", "fp", key())


# -- enqueue and dedupe ----------------------------------------------------------------


def test_queue_then_start_then_finish(store):
    assert store.enqueue(ROOT, b"a.mkv", "fp-a", key()) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"a.mkv", "fp-a", key()) is EnqueueOutcome.ALREADY_QUEUED
    [job] = store.next_queued(10, ())
    assert job.path == ROOT / "a.mkv" and job.fingerprint == "fp-a" and job.attempts == 0
    assert store.start(job, "worker-1", "b1")
    assert not store.start(job, "worker-2", "b1")  # one claim per file
    assert store.enqueue(ROOT, b"a.mkv", "fp-a", key()) is EnqueueOutcome.ALREADY_QUEUED
    done(store, job, "fp-a-out", key(2))
    assert store.queue_depth() == 0
    assert not store.start(job, "worker-2", "b1")  # finished: nothing to claim
    # vpod's own rewrite: the output fingerprint is recognized
    assert store.enqueue(ROOT, b"a.mkv", "fp-a-out", key(3)) is EnqueueOutcome.UNCHANGED
    # a copy or hard link of the output elsewhere, under the same policy
    assert store.enqueue(ROOT, b"copy.mkv", "fp-a-out", key(4), policy_digest=POLICY_A) is (
        EnqueueOutcome.SAME_CONTENT_DONE
    )
    # new content at the same path
    assert store.enqueue(ROOT, b"a.mkv", "fp-new", key(5)) is EnqueueOutcome.QUEUED


def test_a_walked_file_queued_unread_gets_the_same_content_rule_from_the_worker(store):
    """A folder walk queues a new path without reading it (issue 15 item 1): only while its
    path has no row and no done result of its size under its policy; the worker then reads
    it and the same-content rule is applied before any tool runs (read_content)."""
    def walked(relpath: bytes, size: int, digest: str = POLICY_A) -> EnqueueOutcome:
        [outcome] = store.enqueue_many([EnqueueEntry(ROOT, relpath, unread(size), key(size), digest)])
        return outcome

    assert walked(b"a/x.mkv", 50) is EnqueueOutcome.QUEUED
    assert walked(b"a/y.mkv", 50) is EnqueueOutcome.QUEUED
    assert walked(b"a/x.mkv", 50) is EnqueueOutcome.UNREAD  # a known path: the caller reads it
    assert store.queue_depth() == 2
    [first, second] = store.next_queued(10, ())
    assert is_unread(first.fingerprint) and is_unread(second.fingerprint)
    first = store.start(first, "w", "b1")
    assert first is not None
    # Read by the worker: nothing vouches yet, so the row takes the real content.
    assert store.read_content(first, "50:aaaa", key(50), POLICY_A) is False
    done(store, replace(first, fingerprint="50:aaaa"), "50:aaaa", key(50))  # conforming as found
    # The other copy, read only now, is vouched for by that result: done, claim ended.
    second = store.start(second, "w", "b1")
    assert second is not None
    assert store.read_content(second, "50:aaaa", key(51), POLICY_A) is True
    assert store.queue_depth() == 0 and not store.start(second, "w", "b2")
    assert store.enqueue(ROOT, b"a/y.mkv", "50:aaaa", key(51)) is EnqueueOutcome.UNCHANGED
    # A result of that size now exists under POLICY_A: a new path of that size is read first.
    assert walked(b"b/z.mkv", 50) is EnqueueOutcome.UNREAD
    assert walked(b"b/z.mkv", 50, POLICY_B) is EnqueueOutcome.QUEUED  # not under another policy
    assert walked(b"b/w.mkv", 500) is EnqueueOutcome.QUEUED  # nor at another size
    z = store.start(next(j for j in store.next_queued(10, ()) if j.relpath == b"b/z.mkv"), "w", "b3")
    assert z is not None
    assert store.read_content(z, "50:aaaa", key(52), POLICY_B) is False  # POLICY_A's result does not vouch


def _walked(dir_: bytes, *files: tuple[str, StatKey]) -> WalkedFolder:
    """A folder's rows as the child walker writes them (vpod.watch.walker)."""
    prefix = dir_.decode() + "/" if dir_ else ""
    rows = [
        [prefix + name, 0o100644, st.inode, st.device, st.size, st.mtime_ns, st.ctime_ns, dir_.decode()]
        for name, st in files
    ]
    return WalkedFolder(dir_, json.dumps(rows), len(rows))


def test_a_walk_queues_new_folders_in_bulk_exactly_as_enqueue_many_queues_unread_files(store):
    """Store.enqueue_walked_new (issue 15 item 1, the catch-up's bulk path; SQLite): a file
    is queued, as enqueue_many queues an unread entry, only where its path has no row and no
    done result of its size is recorded under the digest; every other file (a queued row,
    another claim's processing row, a size a result has) is left as it is and named back."""
    if not store.bulk_walk:
        with pytest.raises(NotImplementedError):
            store.enqueue_walked_new(ROOT, [_walked(b"a", ("x.mkv", key(1)))], POLICY_A)
        return
    store.enqueue(ROOT, b"a/queued.mkv", "fp-queued", key(1))
    store.enqueue(ROOT, b"a/busy.mkv", "fp-busy", key(2))
    busy = store.start(next(j for j in store.next_queued(10, ()) if j.relpath == b"a/busy.mkv"), "other", "b0")
    assert busy is not None
    store.enqueue(ROOT, b"x/done.mkv", "fp-done", key(3))
    finished = store.start(next(j for j in store.next_queued(10, ()) if j.relpath == b"x/done.mkv"), "w", "b0")
    assert finished is not None
    done(store, finished, "77:abcd", StatKey(77, 1, 3, 1, 9))  # a result of 77 bytes under POLICY_A
    before = {p: store.file_record(ROOT / p) for p in ("a/queued.mkv", "a/busy.mkv", "x/done.mkv")}
    new, top, other_size = StatKey(10, 5, 50, 1, 6), StatKey(5, 7, 51, 1, 8), StatKey(78, 9, 52, 1, 10)
    left = store.enqueue_walked_new(ROOT, [
        _walked(b"a", ("new.mkv", new), ("queued.mkv", key(11)), ("busy.mkv", key(12))),
        _walked(b"b", ("twin.mkv", StatKey(77, 2, 53, 1, 11)), ("other.mkv", other_size)),
        _walked(b"", ("top \u00e9 \"q\".mkv", top)),
    ], POLICY_A)
    assert [sorted(names) for names in left] == [["busy.mkv", "queued.mkv"], ["twin.mkv"], []]
    assert {p: store.file_record(ROOT / p) for p in before} == before  # rows of any state left alone
    assert store.file_record(ROOT / "b/twin.mkv") is None  # read first, by the per-file rules
    # What enqueue_many writes for the same files, unread, under another root.
    other = Path("/other")
    assert store.enqueue_many([
        EnqueueEntry(other, b"a/new.mkv", unread(10), new, POLICY_A),
        EnqueueEntry(other, b"b/other.mkv", unread(78), other_size, POLICY_A),
        EnqueueEntry(other, "top \u00e9 \"q\".mkv".encode(), unread(5), top, POLICY_A),
    ]) == [EnqueueOutcome.QUEUED] * 3
    for relpath in ("a/new.mkv", "b/other.mkv", "top \u00e9 \"q\".mkv"):
        walked, listed = store.file_record(ROOT / relpath), store.file_record(other / relpath)
        assert walked is not None and listed is not None
        assert walked._replace(path="") == listed._replace(path=""), relpath
        assert walked.state == "queued" and is_unread(walked.fingerprint)
    assert store.known_stats(ROOT, b"a")[b"a/new.mkv"] == new
    assert store.queue_depth() == 1 + 3 + 3  # a/queued.mkv, the three walked, the three listed
    assert store.enqueue_walked_new(ROOT, [_walked(b"a", ("new.mkv", new))], None) == [["new.mkv"]]  # no twice


def test_read_content_needs_the_claim(store):
    assert store.enqueue_many([EnqueueEntry(ROOT, b"x.mkv", unread(7), key(7), POLICY_A)]) == [EnqueueOutcome.QUEUED]
    [job] = store.next_queued(1, ())
    mine = store.start(job, "w", "b1")
    assert mine is not None
    with pytest.raises(LeaseLost):
        store.read_content(replace(mine, lease="0" * 32), "7:bb", key(7), POLICY_A)


def test_start_is_a_compare_and_set_between_threads(store):
    """Workers racing for the same job: exactly one wins it."""
    store.enqueue(ROOT, b"race.mkv", "fp", key())
    [job] = store.next_queued(1, ())
    racers = 8
    barrier = threading.Barrier(racers)
    won: list[str] = []

    def race(name: str) -> None:
        barrier.wait()
        if store.start(job, name, "b"):
            won.append(name)

    threads = [threading.Thread(target=race, args=(f"worker-{i}",)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    record = store.file_record(job.path)
    assert record is not None and record.state == "processing" and record.worker == won[0] and record.attempts == 1


def test_permanent_failure_waits_for_new_content(store):
    store.enqueue(ROOT, b"bad.mkv", "fp-bad", key())
    fail(store, claim(store))
    assert store.enqueue(ROOT, b"bad.mkv", "fp-bad", key(9)) is EnqueueOutcome.FAILED_UNCHANGED
    assert store.enqueue(ROOT, b"bad.mkv", "fp-fixed", key(10)) is EnqueueOutcome.QUEUED


def test_transient_outcomes_can_be_queued_again(store):
    store.enqueue(ROOT, b"gone.mkv", "fp", key())
    job = claim(store)
    vanished = FileProcessingResult(path=job.path, success=False, skipped=True, reason="vanished", permanent=False)
    store.finish(job, Outcome(vanished), "b")
    assert store.file_record(job.path).state == "skipped"
    assert store.enqueue(ROOT, b"gone.mkv", "fp", key()) is EnqueueOutcome.QUEUED


def test_a_queued_file_whose_content_changed_takes_the_new_fingerprint(store):
    store.enqueue(ROOT, b"a.mkv", "fp-1", key(1))
    assert store.enqueue(ROOT, b"a.mkv", "fp-2", key(2)) is EnqueueOutcome.ALREADY_QUEUED
    [job] = store.next_queued(1, ())
    assert job.fingerprint == "fp-2"
    assert store.file_record(job.path).stat == key(2)


def test_container_change_records_the_new_name(store):
    store.enqueue(ROOT, b"movie.mp4", "fp-mp4", key(1))
    job = claim(store)
    result = FileProcessingResult(path=job.path, success=True, changes=1, final_path=ROOT / "movie.mkv")
    store.finish(job, Outcome(result, "fp-mkv", key(2), b"movie.mkv"), "b")
    assert store.enqueue(ROOT, b"movie.mkv", "fp-mkv", key(2)) is EnqueueOutcome.UNCHANGED
    renamed = store.file_record(ROOT / "movie.mkv")
    assert renamed is not None and renamed.state == "done" and renamed.stat == key(2)


def test_non_utf8_paths_round_trip(store):
    name = b"bad\xffname.mkv"
    store.enqueue(ROOT, name, "fp", key())
    [job] = store.next_queued(1, ())
    assert job.relpath == name
    assert os.fsencode(job.path) == b"/library/" + name
    assert store.file_record(job.path).path == "/library/bad\\xffname.mkv"


def test_enqueue_many_applies_the_enqueue_rules_to_each_file_in_order(store):
    assert store.enqueue(ROOT, b"waiting.mkv", "fp-w", key(1)) is EnqueueOutcome.QUEUED
    done(store, claim(store, "worker-1", "b1"), "fp-w-out", key(2))
    entries = [
        EnqueueEntry(ROOT, b"new.mkv", "fp-n", key(3)),
        EnqueueEntry(ROOT, b"new.mkv", "fp-n", key(3)),  # named twice in one batch
        EnqueueEntry(ROOT, b"copy-of-output.mkv", "fp-w-out", key(4)),
        EnqueueEntry(ROOT, b"waiting.mkv", "fp-w-out", key(5)),  # vpod's own rewrite
    ]
    assert store.enqueue_many(entries, policy_digest=POLICY_A) == [
        EnqueueOutcome.QUEUED,
        EnqueueOutcome.ALREADY_QUEUED,
        EnqueueOutcome.SAME_CONTENT_DONE,
        EnqueueOutcome.UNCHANGED,
    ]
    assert [j.relpath for j in store.next_queued(10, ())] == [b"new.mkv"]


def test_enqueue_many_of_nothing(store):
    assert store.enqueue_many([]) == []


def test_a_twin_counts_only_under_the_policy_it_was_judged_by(store):
    """Content vpod left at one path vouches for a copy at another path only while the
    same policy is in force; after a policy change the copy is queued."""
    store.enqueue(ROOT, b"w4/x.mkv", "fp-base", key(1), policy_digest=POLICY_A)
    job = claim(store)
    conforming = FileProcessingResult(path=job.path, success=True, changes=0)
    store.finish(job, Outcome(conforming, "fp-base", key(1), policy_digest=POLICY_A), "b")

    assert store.enqueue(ROOT, b"w2/y.mkv", "fp-base", key(2), policy_digest=POLICY_A) is (
        EnqueueOutcome.SAME_CONTENT_DONE
    )
    assert store.enqueue(ROOT, b"w2/z.mkv", "fp-base", key(3), policy_digest=POLICY_B) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"w2/unknown.mkv", "fp-base", key(4)) is EnqueueOutcome.QUEUED  # no digest given
    assert [j.relpath for j in store.next_queued(10, ())] == [b"w2/z.mkv", b"w2/unknown.mkv"]
    # The twin is recorded as judged under the policy that matched, so it vouches for
    # further copies under that policy too; and the path vpod left keeps its rule.
    twin = store.file_record(ROOT / "w2" / "y.mkv")
    assert (twin.state, twin.policy_digest, twin.result_fingerprint) == ("done", POLICY_A, "fp-base")
    assert store.enqueue(ROOT, b"w4/x.mkv", "fp-base", key(5), policy_digest=POLICY_B) is EnqueueOutcome.UNCHANGED


def test_a_result_under_the_new_policy_vouches_for_later_copies(store):
    store.enqueue(ROOT, b"a.mkv", "fp-in", key(1), policy_digest=POLICY_B)
    done(store, claim(store), "fp-out", key(2), policy_digest=POLICY_B)
    assert store.enqueue(ROOT, b"copy.mkv", "fp-out", key(3), policy_digest=POLICY_A) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"copy2.mkv", "fp-out", key(4), policy_digest=POLICY_B) is (
        EnqueueOutcome.SAME_CONTENT_DONE
    )


def test_a_failure_records_no_policy_digest(store):
    store.enqueue(ROOT, b"bad.mkv", "fp-bad", key(1), policy_digest=POLICY_A)
    fail(store, claim(store), policy_digest=POLICY_A)
    record = store.file_record(ROOT / "bad.mkv")
    assert (record.state, record.reason, record.permanent) == ("failed", "unreadable", True)
    assert (record.result_fingerprint, record.policy_digest) == (None, None)


def test_each_entry_is_judged_under_its_own_policy_digest(store):
    """The policy is chosen per path ([libraries] rules, folder files): a twin vouches for
    an entry only under the digest of that entry's policy."""
    store.enqueue(ROOT, b"anime/x.mkv", "fp-in", key(1), policy_digest=POLICY_A)
    done(store, claim(store), "fp-out", key(2), policy_digest=POLICY_A)
    entries = [
        EnqueueEntry(ROOT, b"anime/copy.mkv", "fp-out", key(3), POLICY_A),
        EnqueueEntry(ROOT, b"kids/copy.mkv", "fp-out", key(4), POLICY_B),
        EnqueueEntry(ROOT, b"kids/other.mkv", "fp-out", key(5)),  # none of its own: the batch's
    ]
    assert store.enqueue_many(entries, policy_digest=POLICY_A) == [
        EnqueueOutcome.SAME_CONTENT_DONE, EnqueueOutcome.QUEUED, EnqueueOutcome.SAME_CONTENT_DONE,
    ]


def test_the_policy_that_judged_a_file_is_recorded_with_why(store):
    store.enqueue(ROOT, b"anime/a.mkv", "fp", key(1))
    job = claim(store)
    result = FileProcessingResult(path=job.path, success=False, error="x", reason="unreadable", permanent=True)
    why = '[libraries.series] rules[0]: "anime/**" matches "anime/a.mkv"'
    store.finish(job, Outcome(result, policy_digest=POLICY_A, policy_name="anime", policy_why=why), "b")
    record = store.file_record(ROOT / "anime" / "a.mkv")
    assert (record.policy_name, record.policy_why) == ("anime", why)
    assert [f.policy for f in store.queue_report().last_failures] == ["anime"]


def skip_hardlinked(
    store: Store, job: Job, fingerprint_after: str, policy_digest: str, reason: str = "hardlinked"
) -> None:
    """The outcome of a hard-linked file: the header part applied, the rest skipped (or
    another permanent skip of part of a plan: ``not_smaller``)."""
    result = FileProcessingResult(path=job.path, success=False, skipped=True, reason=reason, changes=2,
                                  error=f"{job.path}: has 2 hard links", permanent=True)
    store.finish(job, Outcome(result, fingerprint_after, key(9), policy_digest=policy_digest), "b")


def test_a_hardlinked_skip_is_done_only_for_the_policy_that_judged_it(store):
    """Not queued again for its own content under the same policy (never requeued forever),
    queued under another (a policy change re-judges it), and never a twin for a copy:
    only part of its plan was applied."""
    store.enqueue(ROOT, b"linked.mkv", "fp-in", key(1), policy_digest=POLICY_A)
    skip_hardlinked(store, claim(store), "fp-headers", POLICY_A)
    assert store.enqueue(ROOT, b"linked.mkv", "fp-headers", key(9), policy_digest=POLICY_A) is EnqueueOutcome.UNCHANGED
    assert store.enqueue(ROOT, b"copy.mkv", "fp-headers", key(3), policy_digest=POLICY_A) is EnqueueOutcome.QUEUED
    assert store.enqueue(ROOT, b"linked.mkv", "fp-headers", key(9), policy_digest=POLICY_B) is EnqueueOutcome.QUEUED
    assert sorted(j.relpath for j in store.next_queued(10, ())) == [b"copy.mkv", b"linked.mkv"]


def test_a_not_smaller_skip_is_not_encoded_again_under_its_policy_but_is_under_another(store):
    """keep_if_larger (issue 18): the content vpod left after discarding a transcode is
    handled under the policy that judged it, and judged again under another."""
    store.enqueue(ROOT, b"small.mkv", "fp-in", key(1), policy_digest=POLICY_A)
    job = claim(store)
    result = FileProcessingResult(path=job.path, success=False, skipped=True, reason="not_smaller", changes=1,
                                  error=f"{job.path}: the transcode saved 1.0 %", permanent=True)
    store.finish(job, Outcome(result, "fp-left", key(9), policy_digest=POLICY_A), "b")
    assert store.enqueue(ROOT, b"small.mkv", "fp-left", key(9), policy_digest=POLICY_A) is EnqueueOutcome.UNCHANGED
    assert store.enqueue(ROOT, b"small.mkv", "fp-left", key(9), policy_digest=POLICY_B) is EnqueueOutcome.QUEUED


def test_requeue_hardlinked_takes_the_files_a_changed_policy_judges_differently(store):
    for name, digest in ((b"a.mkv", POLICY_A), (b"b.mkv", POLICY_B)):
        store.enqueue(ROOT, name, f"fp-{name!r}", key(1))
        skip_hardlinked(store, claim(store), f"out-{name!r}", digest)
    asked: list[tuple[str, Path, bytes]] = []

    def digest_of(library: str, folder: Path, relpath: bytes) -> str:
        asked.append((library, folder, relpath))
        return POLICY_A  # the policy now: a.mkv's, not b.mkv's

    assert store.requeue_hardlinked(digest_of) == [ROOT / "b.mkv"]
    assert sorted(relpath for _, _, relpath in asked) == [b"a.mkv", b"b.mkv"]
    assert {folder for _, folder, _ in asked} == {ROOT}
    [job] = store.next_queued(10, ())
    assert job.relpath == b"b.mkv" and job.attempts == 0
    assert store.requeue_hardlinked(digest_of) == []  # b.mkv is queued now; a.mkv stays done for policy A


def test_requeue_takes_not_smaller_skips_a_changed_policy_judges_differently_and_only_when_asked(store):
    # A file whose video encode was not smaller is done for that policy only: another
    # policy (say a lower crf) may encode it (issue 18, keep_if_larger).
    for name, digest in ((b"a.mkv", POLICY_A), (b"b.mkv", POLICY_B)):
        store.enqueue(ROOT, name, f"fp-{name!r}", key(1))
        skip_hardlinked(store, claim(store), f"out-{name!r}", digest, reason="not_smaller")

    def digest_of(library: str, folder: Path, relpath: bytes) -> str:
        return POLICY_A

    assert store.requeue_hardlinked(digest_of) == []  # hardlinked skips only
    assert store.requeue_hardlinked(digest_of, Reason.NOT_SMALLER) == [ROOT / "b.mkv"]
    [job] = store.next_queued(10, ())
    assert job.relpath == b"b.mkv" and job.attempts == 0


def test_known_stats_per_folder(store):
    store.enqueue(ROOT, b"show/s1/e1.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"show/s1/e2.mkv", "fp2", key(2))
    store.enqueue(ROOT, b"top.mkv", "fp3", key(3))
    assert store.known_stats(ROOT, b"show/s1") == {b"show/s1/e1.mkv": key(1), b"show/s1/e2.mkv": key(2)}
    assert store.known_stats(ROOT, b"") == {b"top.mkv": key(3)}


def test_known_stats_leave_out_what_needs_a_new_look(store):
    """A transient failure is looked at again by the next scan; a permanent one is not."""
    store.enqueue(ROOT, b"transient.mkv", "fp1", key(1))
    fail(store, claim(store), "vanished", permanent=False)
    store.enqueue(ROOT, b"permanent.mkv", "fp2", key(2))
    fail(store, claim(store))
    assert store.known_stats(ROOT, b"") == {b"permanent.mkv": key(2)}


def test_known_stats_keep_the_ctime_and_a_row_without_one_says_so(store):
    """ctime is recorded with the other stat fields; a key written without one reads back as None."""
    with_ctime = StatKey(size=10, mtime_ns=1, inode=2, device=3, ctime_ns=4)
    store.enqueue(ROOT, b"new.mkv", "fp1", with_ctime)
    store.enqueue(ROOT, b"old.mkv", "fp2", key(2))
    assert store.known_stats(ROOT, b"") == {b"new.mkv": with_ctime, b"old.mkv": key(2)}
    assert store.known_stats(ROOT, b"")[b"old.mkv"].ctime_ns is None


def test_conforming_stats_are_the_done_files_with_the_stat_after_the_change_and_the_digest(store):
    """Only done rows with a ctime and a policy digest: what the stat alone may prove conforming."""
    before, after = StatKey(10, 1, 2, 3, 4), StatKey(11, 5, 6, 3, 7)
    store.enqueue(ROOT, b"s/done.mkv", "fp-done", before)
    done(store, claim(store), "fp-done-after", after, POLICY_B)
    store.enqueue(ROOT, b"s/no-ctime.mkv", "fp-old", key(2))
    done(store, claim(store), "fp-old-after", key(3))  # a key as an older vpod recorded it
    store.enqueue(ROOT, b"s/failed.mkv", "fp-failed", before)
    fail(store, claim(store))
    store.enqueue(ROOT, b"s/queued.mkv", "fp-queued", before)
    assert store.conforming_stats(ROOT, b"s") == {b"s/done.mkv": Conforming(after, POLICY_B)}
    assert store.conforming_stats(ROOT, b"") == {}
    # Named again by vpod process: queued, so no longer conforming until it is done again.
    assert store.job_for_path(ROOT, b"s/done.mkv", "fp-done-after", StatKey(11, 5, 6, 3, 8)) is not None
    assert store.conforming_stats(ROOT, b"s") == {}
    assert store.known_stats(ROOT, b"s")[b"s/done.mkv"] == StatKey(11, 5, 6, 3, 8)


def test_conforming_stats_include_a_file_kept_as_not_smaller_with_its_reason(store):
    """A file skipped for good as not_smaller (its video encode was not smaller) is handled
    under the policy that judged it: vpod process run again leaves it alone too. A
    not_smaller skip that is not permanent, or another permanent skip, is not."""
    before, after = StatKey(10, 1, 2, 3, 4), StatKey(11, 5, 6, 3, 7)
    store.enqueue(ROOT, b"small.mkv", "fp-small", before)
    job = claim(store)
    kept = FileProcessingResult(path=job.path, success=False, skipped=True, reason=Reason.NOT_SMALLER, permanent=True)
    store.finish(job, Outcome(kept, "fp-small-after", after, policy_digest=POLICY_A), "b1")
    store.enqueue(ROOT, b"linked.mkv", "fp-linked", before)
    job = claim(store)
    linked = FileProcessingResult(path=job.path, success=False, skipped=True, reason=Reason.HARDLINKED, permanent=True)
    store.finish(job, Outcome(linked, "fp-linked", before, policy_digest=POLICY_A), "b1")
    assert store.conforming_stats(ROOT, b"") == {b"small.mkv": Conforming(after, POLICY_A, None, "not_smaller")}


def test_a_result_without_a_stat_keeps_the_recorded_ctime(store):
    """A failure records no stat: the one recorded at queueing stays whole, ctime included."""
    queued = StatKey(10, 1, 2, 3, 4)
    store.enqueue(ROOT, b"a.mkv", "fp", queued)
    fail(store, claim(store))  # permanent
    assert store.known_stats(ROOT, b"") == {b"a.mkv": queued}


def test_a_remux_to_a_new_name_records_the_stat_after_it_at_the_new_name(store):
    store.enqueue(ROOT, b"a.mp4", "fp", StatKey(10, 1, 2, 3, 4))
    job = claim(store)
    after = StatKey(9, 5, 6, 3, 7)
    result = FileProcessingResult(path=job.path, success=True, changes=1)
    store.finish(job, Outcome(result, "fp-after", after, b"a.mkv", policy_digest=POLICY_A), "b1")
    assert store.conforming_stats(ROOT, b"")[b"a.mkv"] == Conforming(after, POLICY_A)


def test_next_queued_excludes_and_limits(store):
    for i in range(5):
        store.enqueue(ROOT, f"f{i}.mkv".encode(), f"fp{i}", key(i))
    first = store.next_queued(2, ())
    assert [j.relpath for j in first] == [b"f0.mkv", b"f1.mkv"]
    rest = store.next_queued(10, [j.id for j in first])
    assert [j.relpath for j in rest] == [b"f2.mkv", b"f3.mkv", b"f4.mkv"]


def test_file_record_of_an_unknown_path(store):
    assert store.file_record(ROOT / "never.mkv") is None
    assert store.file_record(Path("/")) is None


# -- retry -----------------------------------------------------------------------------


def test_retry_later_is_not_due_yet(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    job = claim(store)
    result = FileProcessingResult(path=job.path, success=False, error="busy", reason="timeout", permanent=False)
    store.retry_later(job, result, 60, "b")
    assert store.next_queued(10, ()) == []
    assert store.queue_depth() == 1
    assert store.next_due_at() > time.time() + 50
    record = store.file_record(job.path)
    assert (record.state, record.reason, record.error, record.worker) == ("queued", "timeout", "busy", None)


def test_an_uncounted_retry_gives_the_attempt_back(store):
    """Waiting for free space does not use up max_attempts; other retries do."""
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    for counted, attempts in ((False, 1), (False, 1), (True, 2)):
        job = claim(store)
        result = FileProcessingResult(path=job.path, success=False, reason="insufficient_space", permanent=False)
        store.retry_later(job, result, 0, "b", counted=counted)
        [job] = store.next_queued(1, ())
        assert job.attempts + 1 == attempts


def test_next_due_at_ignores_jobs_due_now(store):
    """Jobs due now are in the feeder's hands; only future retries set a wake-up time."""
    assert store.next_due_at() is None
    store.enqueue(ROOT, b"now.mkv", "fp", key())
    assert store.next_due_at() is None


def test_retry_paths_and_retry_all_failed(store):
    for name in (b"failed.mkv", b"skipped.mkv", b"done.mkv", b"failed2.mkv"):
        store.enqueue(ROOT, name, "fp-" + name.decode(), key())
    fail(store, claim(store))
    skipped = claim(store)
    store.finish(skipped, Outcome(FileProcessingResult(path=skipped.path, success=False, skipped=True,
                                                       reason="not_media", permanent=True)), "b")
    done(store, claim(store), "fp-out", key(2))
    fail(store, claim(store), "probe_failed")
    outcomes = store.retry_paths([ROOT / "failed.mkv", ROOT / "skipped.mkv", ROOT / "done.mkv", ROOT / "nope.mkv"])
    assert outcomes == {
        ROOT / "failed.mkv": RetryOutcome.REQUEUED,
        ROOT / "skipped.mkv": RetryOutcome.REQUEUED,
        ROOT / "done.mkv": RetryOutcome.NOT_FAILED,
        ROOT / "nope.mkv": RetryOutcome.UNKNOWN,
    }
    again = store.file_record(ROOT / "failed.mkv")
    assert (again.state, again.attempts, again.reason, again.permanent) == ("queued", 0, None, False)
    assert store.retry_all_failed() == 1  # failed2.mkv: the others are queued or done
    assert sorted(j.relpath for j in store.next_queued(10, ())) == [b"failed.mkv", b"failed2.mkv", b"skipped.mkv"]


# -- crashes and explicit runs (vpod process) -------------------------------------------


def test_interrupted_jobs_are_requeued_with_their_pending_plan(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    job = claim(store)
    store.note_plan(job, ["track 1: set default flag off"])
    assert store.requeue_interrupted() == 1
    [again] = store.next_queued(1, ())
    assert again.pending_actions == ("track 1: set default flag off",)
    assert again.attempts == 1


def test_requeue_after_a_crash_spares_another_front_ends_rows(store, database):
    """A starting daemon requeues the rows of no owner or of a dead daemon; a live
    ``vpod process``'s rows and a dead one's (left to :meth:`abandon_dead_owners`) stay."""
    store.enqueue(ROOT, b"daemon.mkv", "fp1", key(1))
    claim(store, "worker-1")  # no owner record: a daemon of before schema 6
    own_a_row_and_exit(database, ROOT, b"dead-process.mkv")
    other = open_store(database)
    other.register_owner("process")
    assert other.start(other.job_for_path(ROOT, b"process.mkv", "fp2", key(2)), "process-4242_0", "b")
    store.register_owner("daemon")
    assert store.requeue_interrupted() == 1
    assert store.file_record(ROOT / "daemon.mkv").state == "queued"
    assert store.file_record(ROOT / "process.mkv").state == "processing"
    assert store.file_record(ROOT / "dead-process.mkv").state == "processing"
    other.close()


def test_a_pending_plan_keeps_the_queued_fingerprint(store):
    """After an interrupted attempt, the file's new content (vpod's own change) must not
    replace the queued fingerprint: the redo compares them to count the change once."""
    store.enqueue(ROOT, b"a.mkv", "fp-before", key(1))
    job = claim(store)
    store.note_plan(job, ["reorder tracks to 0, 2, 1"])
    store.requeue_interrupted()
    assert store.enqueue(ROOT, b"a.mkv", "fp-after", key(2)) is EnqueueOutcome.ALREADY_QUEUED
    [again] = store.next_queued(1, ())
    assert again.fingerprint == "fp-before" and again.pending_actions


def test_finish_clears_the_pending_plan(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    job = claim(store)
    store.note_plan(job, ["set language"])
    done(store, job, "fp-out", key(2))
    again = store.job_for_path(ROOT, b"a.mkv", "fp-out", key(2))
    assert again is not None and again.pending_actions == ()


def test_a_named_path_becomes_a_queued_job(store):
    job = store.job_for_path(ROOT, b"a/x.mkv", "fp", key())
    assert job is not None and job.path == ROOT / "a" / "x.mkv" and job.attempts == 0
    record = store.file_record(job.path)
    assert (record.state, record.attempts, record.reason, record.worker) == ("queued", 0, None, None)
    assert store.start(job, "process-1_0", "b1")


def test_a_named_path_done_or_failed_is_queued_again_with_fresh_attempts(store):
    job = store.job_for_path(ROOT, b"x.mkv", "fp", key())
    store.start(job, "w", "b1")
    fail(store, job)
    assert store.file_record(job.path).attempts == 1
    again = store.job_for_path(ROOT, b"x.mkv", "fp", key())
    assert again is not None and again.id == job.id
    record = store.file_record(job.path)
    assert (record.state, record.attempts, record.reason, record.worker) == ("queued", 0, None, None)
    store.start(again, "w", "b2")
    done(store, again, "fp-after", key(2))
    assert store.job_for_path(ROOT, b"x.mkv", "fp-after", key(2)) is not None  # done: explicit runs redo it


def test_a_named_path_in_progress_is_left_alone(store):
    assert store.enqueue(ROOT, b"busy.mkv", "fp", key()) is EnqueueOutcome.QUEUED
    claim(store, "worker-1", "daemon-batch")
    assert store.job_for_path(ROOT, b"busy.mkv", "fp", key()) is None
    record = store.file_record(ROOT / "busy.mkv")
    assert (record.state, record.attempts, record.worker) == ("processing", 1, "worker-1")


def test_rows_of_a_dead_owner_are_released(store, database):
    own_a_row_and_exit(database, ROOT, b"dead.mkv")
    own_a_row_and_exit(database, ROOT, b"daemon.mkv", kind="daemon")
    store.register_owner("process")
    assert store.start(store.job_for_path(ROOT, b"live.mkv", "fp", key()), "process-1_1", "b")
    assert store.abandon_dead_owners() == [ROOT / "dead.mkv"]
    record = store.file_record(ROOT / "dead.mkv")
    assert (record.state, record.attempts, record.reason, record.permanent, record.worker) == (
        "failed", 1, "interrupted", False, None
    )
    assert store.file_record(ROOT / "live.mkv").state == "processing"
    assert store.file_record(ROOT / "daemon.mkv").state == "processing"  # requeued when a daemon starts
    assert store.abandon_dead_owners() == []
    assert store.job_for_path(ROOT, b"dead.mkv", "fp", key()) is not None


# -- libraries by name, owner records ---------------------------------------------------

OLD, NEW = Path("/srv/movies"), Path("/mnt/big/movies")


def handled(store, root: Path, relpath: bytes) -> None:
    assert store.enqueue(root, relpath, "fp-in", key()) is EnqueueOutcome.QUEUED
    [job] = store.next_queued(1, ())
    assert store.start(job, "worker-1", "b")
    result = FileProcessingResult(path=job.path, success=True, changes=1)
    store.finish(job, Outcome(result, "fp-out", key(), policy_digest="p"), "b")


def test_a_library_that_moves_keeps_its_files(store):
    store.bind_libraries({OLD: "movies"})
    handled(store, OLD, b"a.mkv")
    [change] = store.bind_libraries({NEW: "movies"})
    assert (change.name, change.path, change.change, change.previous) == ("movies", str(NEW), "moved", str(OLD))
    # the same file, found at the new folder: vpod left it so, nothing to do
    assert store.enqueue(NEW, b"a.mkv", "fp-out", key()) is EnqueueOutcome.UNCHANGED
    assert store.known_stats(NEW, b"") == {b"a.mkv": key()}
    assert store.known_stats(OLD, b"") == {}
    assert [(lib.name, lib.path, lib.files) for lib in store.libraries()] == [("movies", str(NEW), 1)]
    assert store.bind_libraries({NEW: "movies"}) == []  # the same binding again: nothing changes


def test_a_renamed_library_keeps_its_files(store):
    store.bind_libraries({OLD: "movies"})
    handled(store, OLD, b"a.mkv")
    [change] = store.bind_libraries({OLD: "films"})
    assert (change.change, change.previous) == ("renamed", "movies")
    assert store.enqueue(OLD, b"a.mkv", "fp-out", key()) is EnqueueOutcome.UNCHANGED
    [job] = [j for j in [store.job_for_path(OLD, b"a.mkv", "fp-out", key())] if j]
    assert job.library == "films" and job.path == OLD / "a.mkv"


def test_a_folder_outside_every_library_is_named_by_its_path(store):
    job = store.job_for_path(Path("/home/u/Downloads"), b"x.mkv", "fp", key())
    assert job is not None and job.library == "/home/u/Downloads"
    # once configured under a name, the folder's files keep their rows
    [change] = store.bind_libraries({Path("/home/u/Downloads"): "Downloads"})
    assert change.change == "renamed"
    assert store.job_for_path(Path("/home/u/Downloads"), b"x.mkv", "fp", key()).id == job.id


def test_owner_alive_is_a_store_question(store, database):
    me = store.register_owner("process")
    assert (me.kind, me.pid) == ("process", os.getpid()) and me.pid_start
    assert store.owner_alive(me.id)
    dead = own_a_row_and_exit(database, OLD, b"x.mkv")
    assert not store.owner_alive(dead)  # its pid is gone on this host
    assert not store.owner_alive(12345678)  # no record
    store.end_owner()
    assert not store.owner_alive(me.id)


def test_a_stale_heartbeat_is_a_dead_owner_even_with_a_live_pid(store, database):
    me = store.register_owner("process", heartbeat_seconds=0.01)
    other = open_store(database)  # judges from outside this owner
    time.sleep(0.05)  # more than 3 heartbeats missed
    assert not other.owner_alive(me.id)
    store.heartbeat()
    assert other.owner_alive(me.id)
    other.close()


def test_a_crashed_daemons_rows_are_requeued_and_a_dead_process_rows_released(store, database):
    daemon = own_a_row_and_exit(database, OLD, b"d.mkv", "daemon")
    process = own_a_row_and_exit(database, OLD, b"p.mkv")
    assert not store.owner_alive(daemon) and not store.owner_alive(process)
    # Another node's name: a daemon of this host's node would release it at registration
    # (test_a_restarted_node_releases_its_previous_incarnation_at_once).
    store.register_owner("daemon", node="another-node")
    assert store.requeue_interrupted() == 1  # the daemon's row: queued again
    assert [j.relpath for j in store.next_queued(5, ())] == [b"d.mkv"]
    assert store.abandon_dead_owners() == [OLD / "p.mkv"]
    report = store.queue_report()
    assert report.counts["failed"] == 1 and report.counts["processing"] == 0
    assert "vpod process (pid" in report.last_failures[0].error


# -- batches, temp files, progress, the status report ----------------------------------


def test_batches_are_reported_newest_first(store):
    for n in (1, 2, 3):
        batch = BatchResult(batch_id=f"b-{n}", started_at=float(n), ended_at=n + 0.5, total_files=2,
                            stopped_early=n == 3)
        batch.results.append(FileProcessingResult(path=ROOT / "a.mkv", success=True))
        batch.results.append(FileProcessingResult(path=ROOT / "b.mkv", success=False, reason="unreadable"))
        store.record_batch(batch, "daemon" if n < 3 else "process")
    report = store.queue_report(batches=2)
    assert [b.batch_id for b in report.last_batches] == ["b-3", "b-2"]
    newest = report.last_batches[0]
    assert (newest.source, newest.total_files, newest.success_count, newest.fail_count, newest.skipped_count) == (
        "process", 2, 1, 1, 0
    )
    assert newest.stopped_early and (newest.started_at, newest.ended_at) == (3.0, 3.5)


def test_the_web_reads(store):
    """Issue 17: the listing by id (paged, by state and library), a file's attempts, the
    last batches with their unchanged count, the outcomes per hour."""
    for name in (b"a.mkv", b"b.mkv", "c\xff.mkv".encode("latin-1")):
        store.enqueue(ROOT, name, f"fp-{name!r}", key())
    jobs = {}
    for _ in range(3):
        job = claim(store, "w", "b1")
        jobs[job.relpath] = job
    now = time.time()
    result = FileProcessingResult(path=jobs[b"a.mkv"].path, success=True, changes=1, started_at=now, duration_seconds=2.0)
    store.finish(jobs[b"a.mkv"], Outcome(result), "b1")
    for name in (b"b.mkv", b"c\xff.mkv"):
        result = FileProcessingResult(path=jobs[name].path, success=False, error="tool_failed: exit 2",
                                      reason="tool_failed", permanent=True, started_at=now, duration_seconds=1.0)
        store.finish(jobs[name], Outcome(result), "b1")
    batch = BatchResult(batch_id="b1", started_at=time.time(), ended_at=time.time(), total_files=3)
    store.record_batch(batch, "daemon")

    everything = store.list_files()
    assert [f.path for f in everything] == [str(ROOT / "a.mkv"), str(ROOT / "b.mkv"), "/library/c\\xff.mkv"]
    failed = store.list_files(state="failed", limit=1)
    assert [f.path for f in failed] == [str(ROOT / "b.mkv")] and failed[0].reason == "tool_failed"
    assert "tool_failed" in (failed[0].error or "") and failed[0].library == everything[0].library
    rest = store.list_files(state="failed", limit=1, after=failed[0].id)
    assert [f.path for f in rest] == ["/library/c\\xff.mkv"]
    assert store.list_files(state="failed", after=rest[0].id) == []
    assert store.list_files(library="no-such-library") == []

    found, attempts = store.file_attempts(failed[0].id)
    assert found == failed[0] and [a.status for a in attempts] == ["failed"] and attempts[0].reason == "tool_failed"
    assert store.file_attempts(10**9) == (None, [])
    [recent] = store.recent_batches(5)
    assert recent.batch_id == "b1"
    hours = store.hourly_history(time.time() - 7200, time.time())
    assert len(hours) == 3 and sum(h.done + h.unchanged for h in hours) == 1 and sum(h.failed for h in hours) == 2
    # fix17: files by state per library (the page's "Files by library"), and a file's
    # path by id (retry by id: the raw bytes, not the \xNN text two names may share).
    assert store.library_counts() == {everything[0].library: {"done": 1, "failed": 2}}
    assert store.file_path(rest[0].id) == Path(os.fsdecode(b"/library/c\xff.mkv"))
    assert store.file_path(failed[0].id) == ROOT / "b.mkv" and store.file_path(10**9) is None


def test_temp_registry(store, tmp_path):
    path = tmp_path / ".vpod-tmp-1.mkv"
    odd = Path(os.fsdecode(b"/library/.vpod-tmp-\xff.mkv"))
    store.register_temp(path)
    store.register_temp(odd)
    assert sorted(store.pending_temps()) == sorted([path, odd])
    store.forget_temp(path)
    assert store.pending_temps() == [odd]
    store.forget_temp(odd)
    assert store.pending_temps() == []


def test_progress_notes_show_in_the_report_until_the_next_start(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    job = claim(store, "worker-1", "b7")
    [shown] = store.queue_report().in_progress
    assert (shown.path, shown.worker, shown.batch_id, shown.attempt) == ("/library/a.mkv", "worker-1", "b7", 1)
    assert shown.progress_percent is None and shown.eta_seconds is None
    store.note_progress(job, 42.5, 3600.0)
    [shown] = store.queue_report().in_progress
    assert shown.progress_percent == 42.5 and 3590 < shown.eta_seconds <= 3600
    store.retry_later(job, FileProcessingResult(path=job.path, success=False, reason="timeout", permanent=False), 0, "b7")
    store.start(store.next_queued(1, ())[0], "worker-2", "b8")
    [shown] = store.queue_report().in_progress
    assert shown.worker == "worker-2" and shown.progress_percent is None


def test_the_status_report_counts_states_and_lists_failures_newest_first(store):
    for name in (b"f1.mkv", b"f2.mkv", b"d.mkv", b"p.mkv", b"q.mkv"):  # claimed in this order
        store.enqueue(ROOT, name, "fp-" + name.decode(), key())
    assert store.ping() == 5
    fail(store, claim(store), "unreadable")
    fail(store, claim(store), "probe_failed", permanent=False)
    done(store, claim(store), "fp-out", key(2))
    claim(store)
    report = store.queue_report(failures=5)
    assert report.counts == {"queued": 1, "processing": 1, "done": 1, "failed": 2, "skipped": 0}
    assert report.queue_depth == 1 == store.queue_depth() == store.ping()
    assert [(f.path, f.reason, f.attempts) for f in report.last_failures] == [
        ("/library/f2.mkv", "probe_failed", 1), ("/library/f1.mkv", "unreadable", 1),
    ]
    assert report.last_failures[0].error == "/library/f2.mkv: probe_failed"
    assert [f.path for f in store.queue_report(failures=1).last_failures] == ["/library/f2.mkv"]


def test_the_status_report_lists_files_waiting_for_free_space_soonest_first(store):
    """``vpod status`` says why a queued file does not start: its last try found too little
    free space (an uncounted retry, reason ``insufficient_space``). Other retries and
    files due now are not listed; ``failures`` limits the list."""
    for name in (b"late.mkv", b"soon.mkv", b"timeout.mkv", b"new.mkv"):  # claimed in this order
        store.enqueue(ROOT, name, "fp-" + name.decode(), key())
    before = time.time()
    for delay in (600, 60):
        job = claim(store)
        result = FileProcessingResult(path=job.path, success=False, error=f"{job.path}: needs 5 bytes, 1 free",
                                      reason="insufficient_space", permanent=False)
        store.retry_later(job, result, delay, "b", counted=False)
    job = claim(store)
    store.retry_later(job, FileProcessingResult(path=job.path, success=False, error="slow", reason="timeout",
                                                permanent=False), 30, "b")
    waiting = store.queue_report().waiting_for_space
    assert [(w.path, w.error) for w in waiting] == [
        ("/library/soon.mkv", "/library/soon.mkv: needs 5 bytes, 1 free"),
        ("/library/late.mkv", "/library/late.mkv: needs 5 bytes, 1 free"),
    ]
    assert before + 60 <= waiting[0].retry_at < before + 600 <= waiting[1].retry_at
    assert [w.path for w in store.queue_report(failures=1).waiting_for_space] == ["/library/soon.mkv"]
    job = claim(store)  # new.mkv, due now
    assert job.path == ROOT / "new.mkv" and len(store.queue_report().waiting_for_space) == 2


def test_texts_naming_an_undecodable_file_come_back_as_valid_utf8(store):
    """Errors name the file; a non-UTF-8 name reaches them as lone surrogates. Every text
    is stored with the byte shown as ``\\xNN``, and the write succeeds."""
    relpath = b"bad\nname\xff.mkv"
    shown = "/library/bad\nname\\xff.mkv"
    path = ROOT / os.fsdecode(relpath)
    store.enqueue(ROOT, relpath, "fp", key())
    job = claim(store)
    busy = FileProcessingResult(path=path, success=False, error=f"{path}: locked", reason="locked", permanent=False)
    store.retry_later(job, busy, 0, "b")
    assert store.file_record(path).error == f"{shown}: locked"
    job = claim(store)
    failed = FileProcessingResult(path=path, success=False, error=f"{path}: not media", reason="unreadable")
    title = os.fsdecode(b"caf\xe9")  # a Latin-1 track title, as surrogateescape decodes it
    store.finish(job, Outcome(failed, tracks=[Track(0, "audio", "AAC", title=title)]), "b")
    store.set_daemon_info(paused_path=str(path), paused_error=failed.error)
    record = store.file_record(path)
    assert (record.state, record.reason, record.error) == ("failed", "unreadable", f"{shown}: not media")
    assert store.daemon_info()["paused_path"] == shown
    assert store.daemon_info()["paused_error"] == f"{shown}: not media"
    assert store.queue_report().last_failures[0].error == f"{shown}: not media"


# -- the daemon's record and the store's identity ---------------------------------------


def test_daemon_info_is_written_as_text_and_none_deletes(store):
    assert store.daemon_info() == {}
    store.set_daemon_info(pid=4242, state="running", started_at=1.5)
    store.set_daemon_info(state="paused", paused_path="/library/a.mkv")
    assert store.daemon_info() == {"pid": "4242", "state": "paused", "started_at": "1.5", "paused_path": "/library/a.mkv"}
    store.set_daemon_info(paused_path=None, absent=None)
    assert store.daemon_info() == {"pid": "4242", "state": "paused", "started_at": "1.5"}


def test_the_daemon_record_and_the_queue_survive_a_reopen(database):
    first = open_store(database)
    first.set_daemon_info(state="stopped")
    first.enqueue(ROOT, b"a.mkv", "fp", key())
    identity = first.database_id()
    first.close()
    again = open_store(database)
    try:
        assert again.daemon_info() == {"state": "stopped"}
        assert [j.relpath for j in again.next_queued(10, ())] == [b"a.mkv"]
        assert again.database_id() == identity
    finally:
        again.close()


def test_database_identity_is_random_and_stable(store, backend, tmp_path, request):
    identity = store.database_id()
    assert re.fullmatch(r"[0-9a-f]{32}", identity)
    assert store.database_id() == identity
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = open_store(BACKENDS[backend](request, other_dir))
    try:
        assert other.database_id() != identity
    finally:
        other.close()


def test_a_store_says_where_it_lives_and_that_it_is_writable(store):
    assert store.location
    store.check_writable()
    assert store.daemon_info() == {} and store.queue_depth() == 0  # the check wrote nothing


def test_only_the_store_package_names_a_backend():
    """Callers reach a backend through the factory and the protocol only: no module
    outside vpod/db/ imports the SQLite backend, its pool, its schema or sqlite3."""
    package = Path(__file__).resolve().parents[2] / "vpod"
    backend = re.compile(r"^\s*(from|import)\s+(sqlite3|vpod\.db\.(sqlite_store|pool|schema))\b", re.M)
    offenders = [
        str(module.relative_to(package))
        for module in package.rglob("*.py")
        if module.parent != package / "db" and backend.search(module.read_text())
    ]
    assert offenders == []


# -- claims and leases (docs/architecture.md "Claims and leases") -----------------------
#
# No sleeps: a lease of 0 seconds has ended by the next statement (``lease_until`` is at
# or before the database clock then), a lease of an hour lasts through any test.

LIVE = 3600.0
ENDED = 0.0


@pytest.fixture
def other(database: DatabaseConfig) -> Iterator[Store]:
    """A second store on the same database: another node (or another incarnation)."""
    opened = open_store(database)
    yield opened
    opened.close()


def test_claim_takes_the_oldest_due_job_with_a_fresh_lease(store):
    store.enqueue(ROOT, b"first.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"second.mkv", "fp2", key(2))
    first = store.claim("worker-1", "b1", lease_seconds=LIVE)
    second = store.claim("worker-2", "b1", lease_seconds=LIVE)
    assert first is not None and second is not None
    assert (first.relpath, second.relpath) == (b"first.mkv", b"second.mkv")
    assert first.path == ROOT / "first.mkv" and first.fingerprint == "fp1" and first.library
    assert first.attempts == 0  # attempts made before this claim, as next_queued reports them
    assert re.fullmatch(r"[0-9a-f]{32}", first.lease) and first.lease != second.lease
    assert store.claim("worker-3", "b1", lease_seconds=LIVE) is None  # nothing else is due
    assert store.file_record(first.path).state == "processing"
    assert not store.start(first, "worker-3", "b1")  # claimed: nobody starts it again


def test_claim_leaves_jobs_not_due_yet_and_libraries_not_named(store, tmp_path):
    store.enqueue(ROOT, b"later.mkv", "fp1", key(1))
    job = store.claim("w", "b", lease_seconds=LIVE)
    store.retry_later(job, FileProcessingResult(path=job.path, success=False, error="busy"), 3600, "b")
    assert store.claim("w", "b", lease_seconds=LIVE) is None  # due in an hour
    other_root = tmp_path / "shows"
    store.bind_libraries({ROOT: "movies", other_root: "shows"})
    store.enqueue(other_root, b"s.mkv", "fp2", key(2))
    assert store.claim("w", "b", libraries=["movies"], lease_seconds=LIVE) is None
    assert store.claim("w", "b", libraries=[], lease_seconds=LIVE) is None  # no library verified
    claimed = store.claim("w", "b", libraries=["shows"], lease_seconds=LIVE)
    assert claimed is not None and claimed.library == "shows" and claimed.relpath == b"s.mkv"


def test_claim_passes_over_the_excluded_jobs_and_their_ended_leases(store):
    """A node keeps off the files it must leave to the others (its tool hung on them):
    queued or with an ended lease, an excluded job is not claimed; the others are."""
    store.enqueue(ROOT, b"hung.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"next.mkv", "fp2", key(2))
    hung = store.claim("w", "b", lease_seconds=ENDED)  # its lease ended: claimable again
    assert hung is not None and hung.relpath == b"hung.mkv"
    taken = store.claim("w", "b", lease_seconds=LIVE, exclude=[hung.id])
    assert taken is not None and taken.relpath == b"next.mkv"
    assert store.claim("w", "b", lease_seconds=LIVE, exclude={hung.id, 999_999}) is None
    store.retry_later(store.claim("w", "b", lease_seconds=LIVE), FileProcessingResult(
        path=hung.path, success=False, error="hung"), 0, "b")  # queued and due now
    assert store.claim("w", "b", lease_seconds=LIVE, exclude=[hung.id]) is None
    again = store.claim("w", "b", lease_seconds=LIVE, exclude=[])
    assert again is not None and again.id == hung.id


def test_claim_takes_an_ended_lease_before_younger_queued_rows(store):
    """Queued rows and rows whose lease ended are both claimable; an ended lease older
    than the queued rows goes first (SQLite asks each state on its own index, then takes
    the older; PostgreSQL takes an ended lease first)."""
    for name in (b"a.mkv", b"b.mkv", b"c.mkv"):
        store.enqueue(ROOT, name, name.decode(), key(len(name)))
    a = store.claim("w", "b", lease_seconds=LIVE)
    b = store.claim("w", "b", lease_seconds=ENDED)
    assert (a.relpath, b.relpath) == (b"a.mkv", b"b.mkv")
    assert store.claim("w", "b", lease_seconds=LIVE).id == b.id
    assert store.claim("w", "b", lease_seconds=LIVE).relpath == b"c.mkv"
    assert store.claim("w", "b", lease_seconds=LIVE) is None


def test_a_live_lease_is_not_claimed_by_another_node(store, other):
    store.register_owner("daemon", node="node-a")
    other.register_owner("daemon", node="node-b")
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    assert store.claim("w", "b", lease_seconds=LIVE) is not None
    assert other.claim("w", "b", lease_seconds=LIVE) is None


def test_an_ended_lease_is_claimed_again_and_fences_the_first_claim(store, other):
    """The first claim's lease ended (its node froze or lost the database): another node
    claims the file with a new token, and every write that names the old token fails."""
    store.register_owner("daemon", node="node-a")
    other.register_owner("daemon", node="node-b")
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    stale = store.claim("w", "b", lease_seconds=ENDED)
    taken = other.claim("w", "b", lease_seconds=LIVE)
    assert taken is not None and taken.id == stale.id and taken.lease != stale.lease
    assert taken.attempts == 1  # the first claim's attempt counts
    assert not store.confirm_lease(stale, LIVE)
    assert store.renew_leases([stale], LIVE) == set()
    store.note_plan(stale, ["set default"])  # ignored: not this claim's row any more
    store.note_progress(stale, 50.0, 10.0)
    with pytest.raises(LeaseLost):
        done(store, stale, "fp-out", key(2))
    with pytest.raises(LeaseLost):
        store.retry_later(stale, FileProcessingResult(path=stale.path, success=False, error="x"), 5, "b")
    store.release(stale)  # ignored too
    assert store.file_record(stale.path).state == "processing"
    [progress] = other.queue_report().in_progress
    assert progress.progress_percent is None  # the stale note did not land on the new claim
    assert other.confirm_lease(taken, LIVE)
    done(other, taken, "fp-out", key(2))
    record = store.file_record(taken.path)
    assert (record.state, record.result_fingerprint) == ("done", "fp-out")


def test_renewing_keeps_a_lease_and_reports_what_was_lost(store, other):
    store.enqueue(ROOT, b"kept.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"lost.mkv", "fp2", key(2))
    kept = store.claim("w1", "b", lease_seconds=ENDED)
    assert store.renew_leases([kept], LIVE) == {kept.id}  # ended, but nobody took it: still ours
    lost = store.claim("w2", "b", lease_seconds=ENDED)
    assert lost.id != kept.id  # the renewed lease lasts
    taken = other.claim("w", "b", lease_seconds=LIVE)
    assert taken is not None and taken.id == lost.id  # the renewed one was not claimable
    assert store.renew_leases([kept, lost], LIVE) == {kept.id}
    assert store.renew_leases([], LIVE) == set()


def test_confirm_lease_is_the_compare_and_set_before_a_replace(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key(1))
    store.enqueue(ROOT, b"b.mkv", "fp2", key(2))
    live = store.claim("w", "b", lease_seconds=LIVE)
    ended = store.claim("w", "b", lease_seconds=ENDED)
    assert store.confirm_lease(live, LIVE)
    assert not store.confirm_lease(ended, LIVE)  # ended, even though nobody took it yet
    assert store.confirm_lease(Job(live.id, ROOT, b"a.mkv", "fp", 0), LIVE)  # no lease: not fenced


def test_confirming_extends_the_lease(store, other):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    job = store.claim("w", "b", lease_seconds=LIVE)
    assert store.confirm_lease(job, LIVE)
    assert other.claim("w", "b", lease_seconds=LIVE) is None


def test_release_gives_the_job_back_with_its_attempt(store):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    job = store.claim("w", "b", lease_seconds=LIVE)
    store.release(job)
    record = store.file_record(job.path)
    assert (record.state, record.attempts) == ("queued", 0)
    again = store.claim("w", "b", lease_seconds=LIVE)
    assert again is not None and again.attempts == 0 and again.lease != job.lease
    with pytest.raises(LeaseLost):
        done(store, job, "fp-out", key(2))  # the released claim is over


def test_start_claims_a_named_job_with_a_lease(store, other):
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    [job] = store.next_queued(1, ())
    assert job.lease is None
    started = store.start(job, "process-1", "b", lease_seconds=LIVE)
    assert started is not None and re.fullmatch(r"[0-9a-f]{32}", started.lease)
    assert (started.id, started.attempts) == (job.id, 0)
    assert other.claim("w", "b", lease_seconds=LIVE) is None
    assert store.confirm_lease(started, LIVE)
    done(store, started, "fp-out", key(2))
    assert store.file_record(job.path).state == "done"


def test_racing_claims_never_share_a_job(store, other):
    """Eight workers on two stores claim three jobs: three claims, three different files."""
    for n in range(3):
        store.enqueue(ROOT, f"{n}.mkv".encode(), f"fp{n}", key(n))
    racers = 8
    barrier = threading.Barrier(racers)
    won: list[Job] = []

    def race(index: int) -> None:
        barrier.wait()
        job = (store if index % 2 else other).claim(f"worker-{index}", "b", lease_seconds=LIVE)
        if job is not None:
            won.append(job)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(j.relpath for j in won) == [b"0.mkv", b"1.mkv", b"2.mkv"]


def test_a_restarted_node_releases_its_previous_incarnation_at_once(store, other, database):
    """The new daemon of node-a queues node-a's rows again without waiting for their
    leases; node-b's claim stays, and the old incarnation's writes are fenced."""
    store.register_owner("daemon", node="node-a")
    other.register_owner("daemon", node="node-b")
    store.enqueue(ROOT, b"a.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"b.mkv", "fp2", key(2))
    old = store.claim("w", "b", lease_seconds=LIVE)
    kept = other.claim("w", "b", lease_seconds=LIVE)
    restarted = open_store(database)
    try:
        assert restarted.register_owner("daemon", node="node-a").released == 1
        assert restarted.file_record(old.path).state == "queued"
        assert restarted.file_record(kept.path).state == "processing"
        again = restarted.claim("w", "b", lease_seconds=LIVE)
        assert again is not None and again.id == old.id
        with pytest.raises(LeaseLost):
            done(store, old, "fp-out", key(3))
        assert [n.node for n in restarted.nodes()][0] == "node-a"
        assert "node-b" in [n.node for n in restarted.nodes()]
    finally:
        restarted.close()


def test_nodes_report_each_daemon_and_what_it_does(store, other):
    store.register_owner("daemon", node="node-a", version="1.2.3", workers=2)
    other.register_owner("daemon", node="node-b", version="1.2.4", workers=1)
    store.enqueue(ROOT, b"a.mkv", "fp", key())
    store.claim("w", "b", lease_seconds=LIVE)
    other.heartbeat(workers=4)
    nodes = store.nodes()
    assert [n.node for n in nodes] == ["node-a", "node-b"]  # this node first
    a, b = nodes
    assert (a.version, a.workers, a.doing) == ("1.2.3", 2, (str(ROOT / "a.mkv"),))
    assert (b.version, b.workers, b.doing) == ("1.2.4", 4, ())
    assert a.pid == os.getpid() and a.alive and b.alive
    assert a.heartbeat_age_seconds >= 0 and a.clock_offset_seconds is not None
    assert abs(b.clock_offset_seconds) < 2  # one machine: the clocks agree
    assert [n.node for n in other.nodes()] == ["node-b", "node-a"]
    other.end_owner()
    assert [n.node for n in store.nodes()] == ["node-a"]


def test_pending_temps_leave_out_the_temps_of_a_live_claim(store, other):
    store.enqueue(ROOT, b"live.mkv", "fp1", key(1))
    store.enqueue(ROOT, b"gone.mkv", "fp2", key(2))
    live = store.claim("w", "b", lease_seconds=LIVE)
    gone = store.claim("w", "b", lease_seconds=ENDED)
    store.register_temp(ROOT / ".vpod-tmp-live.mkv", live)
    store.register_temp(ROOT / ".vpod-tmp-gone.mkv", gone)
    store.register_temp(ROOT / ".vpod-tmp-none.mkv")
    assert sorted(other.pending_temps()) == [ROOT / ".vpod-tmp-gone.mkv", ROOT / ".vpod-tmp-none.mkv"]
    done(store, live, "fp-out", key(3))  # the claim is over: its temp is a leftover now
    assert ROOT / ".vpod-tmp-live.mkv" in other.pending_temps()


def test_every_library_has_its_own_identity(store, tmp_path):
    store.bind_libraries({tmp_path / "movies": "movies", tmp_path / "shows": "shows"})
    store.enqueue(ROOT, b"a.mkv", "fp", key())  # an ad-hoc library, made by the queue
    uids = [library.uid for library in store.libraries()]
    assert len(uids) == 3 and len(set(uids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", uid) for uid in uids)
