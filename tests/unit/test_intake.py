"""Intake: a batch of stable files becomes jobs in one transaction, one wake-up of the feeder."""

from __future__ import annotations

import os
from pathlib import Path

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from structlog.testing import capture_logs
from support.clock import FakeClock

from vpod.db.store import EnqueueOutcome, Outcome
from vpod.fingerprint import fingerprint_path
from vpod.results import FileProcessingResult
from vpod.watch.intake import WRITE_RETRY_MAX_SECONDS, Intake, root_of


def test_a_batch_is_queued_together(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    movie = root / "movie.mkv"
    movie.write_bytes(b"x" * 100)
    fifo = root / "pipe.mkv"
    os.mkfifo(fifo)
    gone = root / "gone.mkv"
    gone.write_bytes(b"y")
    gone_stat = gone.stat()
    gone.unlink()
    outside = tmp_path / "elsewhere.mkv"
    outside.write_bytes(b"z")
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    woken: list[None] = []
    retried: list[Path] = []
    intake = Intake(store, lambda: (root,), policy_digest=lambda root, path: "digest", follow_symlinks=False,
                    on_queued=lambda: woken.append(None), retry=lambda paths, delay: retried.extend(paths))

    outcomes = intake.files_ready(
        [(movie, movie.stat()), (fifo, os.lstat(fifo)), (gone, gone_stat), (outside, outside.stat())]
    )

    assert outcomes == {movie: EnqueueOutcome.QUEUED, fifo: EnqueueOutcome.QUEUED}
    assert len(woken) == 1 and retried == []
    assert sorted(job.relpath for job in store.next_queued(10, ())) == [b"movie.mkv", b"pipe.mkv"]
    # The same bytes again are recognized, one file at a time too.
    assert intake.file_ready(movie, movie.stat()) is EnqueueOutcome.ALREADY_QUEUED


def test_root_of_picks_the_innermost_root_by_whole_folder_names() -> None:
    roots = (Path("/srv/media"), Path("/srv/media/anime"), Path("/srv/med"))
    assert root_of(Path("/srv/media/anime/a.mkv"), roots) == Path("/srv/media/anime")
    assert root_of(Path("/srv/media/film/b.mkv"), roots) == Path("/srv/media")
    assert root_of(Path("/srv/mediathek/c.mkv"), roots) is None
    assert root_of(Path("/srv/med/d.mkv"), roots) == Path("/srv/med")
    assert root_of(Path("/x.mkv"), (Path("/"),)) == Path("/")


def test_a_copy_is_judged_under_the_policy_in_force_when_it_settles(tmp_path: Path) -> None:
    """The digest is read per batch (a reload changes it); a copy skipped as already
    handled says so at info level, the ordinary "unchanged" stays at debug level."""
    root = tmp_path / "inbox"
    root.mkdir()
    original, copy, later = root / "x.mkv", root / "y.mkv", root / "z.mkv"
    for path in (original, copy, later):
        path.write_bytes(b"same bytes" * 100)
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    policy = {"digest": "policy-a"}
    intake = Intake(store, lambda: (root,), policy_digest=lambda root, path: policy["digest"], follow_symlinks=False,
                    on_queued=lambda: None, retry=lambda paths, delay: None)
    intake.file_ready(original, original.stat())
    [job] = store.next_queued(1, ())
    store.start(job, "w", "b")
    fingerprint, stat_key = fingerprint_path(original)
    conforming = FileProcessingResult(path=original, success=True)
    store.finish(job, Outcome(conforming, fingerprint, stat_key, policy_digest="policy-a"), "b")

    with capture_logs() as logs:
        assert intake.file_ready(copy, copy.stat()) is EnqueueOutcome.SAME_CONTENT_DONE
        assert intake.file_ready(original, original.stat()) is EnqueueOutcome.UNCHANGED
        policy["digest"] = "policy-b"  # SIGHUP with another policy
        assert intake.file_ready(later, later.stat()) is EnqueueOutcome.QUEUED
    levels = {(e["event"], e.get("outcome"), e["log_level"]) for e in logs}
    assert ("file_not_queued", "same_content_done", "info") in levels
    assert ("file_not_queued", "unchanged", "debug") in levels
    assert ("file_queued", None, "info") in levels


def test_a_database_that_refuses_writes_is_asked_less_and_less_often(tmp_path: Path) -> None:
    """The database cannot be written (closed here; a full disk fails the same way): one
    warning per try, each wait twice the last up to a cap, files settling meanwhile wait
    along without a try or a line of their own, and the first success says so."""
    root = tmp_path / "inbox"
    root.mkdir()
    files = [root / f"{n}.mkv" for n in range(3)]
    for n, path in enumerate(files):
        path.write_bytes(bytes([n]) * 100)
    db = tmp_path / "vpod.db"
    broken = open_store(DatabaseConfig(path=db))
    broken.close()  # every write now raises StoreError
    clock = FakeClock(1000.0)
    retried: list[tuple[list[Path], float]] = []
    intake = Intake(broken, lambda: (root,), policy_digest=lambda root, path: "digest", follow_symlinks=False,
                    on_queued=lambda: None, retry=lambda paths, delay: retried.append((list(paths), delay)),
                    clock=clock)
    with capture_logs() as logs:
        assert intake.files_ready([(files[0], files[0].stat())]) == {}
        clock.now += 1.0
        assert intake.files_ready([(files[1], files[1].stat())]) == {}  # joins the wait: 1 s left
        waits = []
        for _ in range(10):
            clock.now += retried[-1][1]
            intake.files_ready([(files[0], files[0].stat()), (files[1], files[1].stat())])
            waits.append(retried[-1][1])
        intake.store = open_store(DatabaseConfig(path=db))  # writable again
        clock.now += retried[-1][1]
        outcomes = intake.files_ready([(p, p.stat()) for p in files])
    assert retried[0] == ([files[0]], 2.0) and retried[1] == ([files[1]], 1.0)
    assert waits == [4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, WRITE_RETRY_MAX_SECONDS, 300.0, 300.0]
    warnings = [e for e in logs if e["event"] == "queue_write_failed"]
    assert [(e["attempt"], e["files"], e["retry_in_seconds"]) for e in warnings[:3]] == [
        (1, 1, 2.0), (2, 2, 4.0), (3, 2, 8.0)
    ]
    assert len(warnings) == 11 and "closed" in warnings[0]["error"]  # one per try, none for the file that joined
    assert set(outcomes.values()) == {EnqueueOutcome.QUEUED}
    [recovered] = [e for e in logs if e["event"] == "queue_write_recovered"]
    assert recovered["failed_tries"] == 11 and recovered["files"] == 3
    assert recovered["failed_for_seconds"] == clock.now - 1000.0
    intake.store = broken  # the episode is over: the next failure waits 2 s again
    extra = root / "late.mkv"
    extra.write_bytes(b"late")
    with capture_logs() as logs:
        intake.files_ready([(extra, extra.stat())])
    assert retried[-1] == ([extra], 2.0) and [e["attempt"] for e in logs if e["event"] == "queue_write_failed"] == [1]


def test_two_nodes_seeing_one_new_file_make_one_job(tmp_path: Path) -> None:
    """Issue 14 item 4: two watchers (two nodes, two connections to one database) hand in
    the same stable file at once: the store's upsert on (library, path) makes one row."""
    import threading

    root = tmp_path / "inbox"
    root.mkdir()
    movie = root / "movie.mkv"
    movie.write_bytes(b"x" * 100)
    stores = [open_store(DatabaseConfig(path=tmp_path / "vpod.db", busy_timeout_seconds=10)) for _ in range(2)]
    intakes = [
        Intake(store, lambda: (root,), policy_digest=lambda root, path: "digest", follow_symlinks=False,
               on_queued=lambda: None, retry=lambda paths, delay: None)
        for store in stores
    ]
    outcomes: list[dict[Path, EnqueueOutcome]] = []
    start = threading.Barrier(2)

    def hand_in(intake: Intake) -> None:
        start.wait()
        outcomes.append(intake.files_ready([(movie, movie.stat())]))

    threads = [threading.Thread(target=hand_in, args=(intake,)) for intake in intakes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(o[movie].value for o in outcomes) == ["already_queued", "queued"]
    assert [job.relpath for job in stores[0].next_queued(10, ())] == [b"movie.mkv"]
    for store in stores:
        store.close()


def test_a_walked_batch_asks_the_policy_per_folder_unless_a_rule_goes_by_name(tmp_path: Path) -> None:
    """A walk hands over text (no Path per file) and the policy digest is asked once per
    folder of a batch, except in a library whose rules choose by name: there a copy of
    handled content is judged under its own policy, whatever came first in its folder."""
    from vpod.config import config_from_data
    from vpod.policy.selection import PolicySelector

    series = tmp_path / "series"
    folder = series / "Anime"
    folder.mkdir(parents=True)
    data = {
        "watch": {"libraries": {"series": str(series)}},
        "policy": {"audio_languages": ["eng"]},
        "policies": {"anime": {"audio_languages": ["jpn"]}, "kids": {"audio_languages": ["ger"]}},
    }
    by_rule = config_from_data(
        {**data, "libraries": {"series": {"policy": "anime", "rules": [{"match": "**/*.kids.mkv", "policy": "kids"}]}}},
        source=tmp_path / "a.toml",
    )
    plain = config_from_data({**data, "libraries": {"series": {"policy": "anime"}}}, source=tmp_path / "b.toml")
    original, copy, kids = folder / "a.mkv", folder / "b.mkv", folder / "c.kids.mkv"
    for path in (original, copy, kids):
        path.write_bytes(b"same bytes" * 100)
    for config in (by_rule, plain):
        selector = PolicySelector.from_config(config)
        asked: list[Path] = []
        store = open_store(DatabaseConfig(path=tmp_path / f"{id(config)}.db"))

        def digest(root: Path, path: Path) -> str | None:
            asked.append(path)
            return selector.digest(path, root=root)

        intake = Intake(store, lambda: (series,), policy_digest=digest, follow_symlinks=False,
                        on_queued=lambda: None, retry=lambda paths, delay: None, by_name=selector.by_name)
        intake.file_ready(original, original.stat())
        [job] = store.next_queued(1, ())
        store.start(job, "w", "b")
        fingerprint, stat_key = fingerprint_path(original)
        done = FileProcessingResult(path=original, success=True)
        store.finish(job, Outcome(done, fingerprint, stat_key, policy_digest=selector.digest(original)), "b")
        asked.clear()

        outcomes = intake.files_walked([(str(copy), copy.stat()), (str(kids), kids.stat())])

        if config is by_rule:
            assert outcomes == {str(copy): EnqueueOutcome.SAME_CONTENT_DONE, str(kids): EnqueueOutcome.QUEUED}
            assert asked == [copy, kids]
        else:  # no rule by name: the folder's policy judges both, asked once
            assert outcomes == {str(copy): EnqueueOutcome.SAME_CONTENT_DONE, str(kids): EnqueueOutcome.SAME_CONTENT_DONE}
            assert asked == [copy]
