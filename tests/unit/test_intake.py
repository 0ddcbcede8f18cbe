"""Intake: a batch of stable files becomes jobs in one transaction, one wake-up of the feeder."""

from __future__ import annotations

import os
from pathlib import Path

from vpod.db.pool import DaemonConnectionPool
from vpod.db.sqlite_store import SqliteStore
from structlog.testing import capture_logs

from vpod.db.store import EnqueueOutcome, Outcome
from vpod.fingerprint import fingerprint_path
from vpod.results import FileProcessingResult
from vpod.watch.intake import Intake, root_of


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
    store = SqliteStore(DaemonConnectionPool(tmp_path / "vpod.db"))
    woken: list[None] = []
    retried: list[Path] = []
    intake = Intake(store, lambda: (root,), policy_digest=lambda: "digest", follow_symlinks=False,
                    on_queued=lambda: woken.append(None), retry=retried.append)

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
    store = SqliteStore(DaemonConnectionPool(tmp_path / "vpod.db"))
    policy = {"digest": "policy-a"}
    intake = Intake(store, lambda: (root,), policy_digest=lambda: policy["digest"], follow_symlinks=False,
                    on_queued=lambda: None, retry=lambda path: None)
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
