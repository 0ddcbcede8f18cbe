"""The library identity marker (issue 14 item 3): a node claims and queues nothing of a
library whose folder on it is not proven to be that library, and infers nothing from it.

Real stores (SQLite through the factory), real folders; the checks run as the daemon
runs them (:class:`vpod.watch.library_id.LibraryMounts` with ``shared=True``: what a
node of a database server does).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Job
from vpod.feeder import Feeder
from vpod.fingerprint import StatKey
from vpod.watch.intake import Intake
from vpod.watch.library_id import ID_MARKER_NAME, LibraryIdentity, LibraryMounts


@pytest.fixture
def store(tmp_path):
    opened = open_store(DatabaseConfig(path=tmp_path / "v.db"))
    yield opened
    opened.close()


def mounts_for(store, names: dict[Path, str], **kw) -> tuple[LibraryMounts, list[list[Path]]]:
    store.bind_libraries(names)
    verified_again: list[list[Path]] = []
    mounts = LibraryMounts(store, lambda: names, node="node-a", on_verified=verified_again.append, **kw)
    return mounts, verified_again


def queue_one(store, root: Path, name: str = "film.mkv") -> None:
    store.enqueue(root, name.encode(), f"fp-{name}", StatKey(1, 1, 1, 1))


def test_a_library_folder_that_holds_files_gets_one_marker_naming_library_and_database(tmp_path, store):
    movies = tmp_path / "movies"
    movies.mkdir()
    (movies / "film.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {movies: "movies"})
    with capture_logs() as logs:
        mounts.check()
    assert mounts.verified() == {"movies"} and mounts.unverified() == {}
    marker = json.loads((movies / ID_MARKER_NAME).read_text())
    assert marker["database_id"] == store.database_id() and marker["name"] == "movies"
    assert marker["library_uid"] == next(lib.uid for lib in store.libraries() if lib.name == "movies")
    assert [e["event"] for e in logs if e["event"].startswith("library_")] == ["library_marker_written"]
    written = (movies / ID_MARKER_NAME).stat()
    mounts.check()  # written once: never rewritten
    assert (movies / ID_MARKER_NAME).stat().st_mtime_ns == written.st_mtime_ns


def test_a_nas_that_mounts_late_is_verified_without_a_restart_and_nothing_is_requeued(tmp_path, store):
    mountpoint = tmp_path / "nas"
    mountpoint.mkdir()
    (mountpoint / "film.mkv").write_bytes(b"x")
    mounts, verified_again = mounts_for(store, {mountpoint: "tv"})
    mounts.check()  # marked while mounted
    queue_one(store, mountpoint)
    depth = store.queue_depth()
    # The share goes away: an empty mount point, no marker.
    os.rename(mountpoint, tmp_path / "share")
    mountpoint.mkdir()
    with capture_logs() as logs:
        mounts.check()
    assert mounts.verified() == frozenset()
    [unverified] = [e for e in logs if e["event"] == "library_mount_unverified"]
    assert unverified["library"] == "tv" and "marked before" in unverified["reason"]
    assert ID_MARKER_NAME in unverified["hint"]
    assert not (mountpoint / ID_MARKER_NAME).exists()  # never a second marker in the empty mount point
    assert store.queue_depth() == depth and store.file_record(mountpoint / "film.mkv").state == "queued"
    mounts.check()
    assert verified_again == []
    # The share is mounted again (here: the folder comes back).
    mountpoint.rmdir()
    os.rename(tmp_path / "share", mountpoint)
    with capture_logs() as logs:
        mounts.check()
    assert mounts.verified() == {"tv"}
    assert [e["event"] for e in logs] == ["library_mount_verified"]
    assert verified_again == [[mountpoint]]  # walked for what came meanwhile


def test_a_missing_folder_or_a_marker_of_another_library_or_database_is_not_verified(tmp_path, store):
    missing, other_lib, other_db = tmp_path / "missing", tmp_path / "b", tmp_path / "c"
    for folder in (other_lib, other_db):
        folder.mkdir()
        (folder / "x.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {missing: "a", other_lib: "b", other_db: "c"})
    (other_lib / ID_MARKER_NAME).write_bytes(
        LibraryIdentity(store.database_id(), "f" * 32, "elsewhere", "node-b", 0.0).encode()
    )
    (other_db / ID_MARKER_NAME).write_bytes(LibraryIdentity("e" * 32, None, "c", "node-b", 0.0).encode())
    with capture_logs() as logs:
        mounts.check()
    assert mounts.verified() == frozenset()
    reasons = {e["library"]: e["reason"] for e in logs if e["event"] == "library_mount_unverified"}
    assert "missing" in reasons["a"]
    assert "another library" in reasons["b"] and "another vpod database" in reasons["c"]
    assert not (missing).exists()  # nothing made
    assert json.loads((other_lib / ID_MARKER_NAME).read_text())["name"] == "elsewhere"  # never overwritten


def test_an_empty_folder_of_a_library_with_files_is_not_verified_and_gets_no_marker(tmp_path, store):
    folder = tmp_path / "movies"
    folder.mkdir()
    store.bind_libraries({folder: "movies"})
    queue_one(store, folder)
    mounts, _ = mounts_for(store, {folder: "movies"})
    mounts.check()
    assert "empty" in mounts.unverified()["movies"] and not (folder / ID_MARKER_NAME).exists()


def test_an_empty_folder_is_never_verified_even_of_a_new_library_and_is_marked_at_its_first_file(tmp_path, store):
    """A NAS late to mount: its empty mount point must not count as the library, even
    while the library has no files yet (other nodes may queue some any moment)."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    mounts, verified_again = mounts_for(store, {folder: "inbox"})
    mounts.check()
    assert mounts.verified() == frozenset() and mounts.claim_libraries() == frozenset()
    assert "empty" in mounts.unverified()["inbox"] and not (folder / ID_MARKER_NAME).exists()
    (folder / "new.mkv").write_bytes(b"x")  # the first file: this node marks it, verifies it and walks it
    mounts.check()
    assert mounts.verified() == {"inbox"} and (folder / ID_MARKER_NAME).exists()
    assert verified_again == [[folder]]


def test_a_dry_run_writes_no_marker_and_claims_nothing_without_one(tmp_path, store):
    folder = tmp_path / "movies"
    folder.mkdir()
    (folder / "a.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {folder: "movies"}, read_only=True)
    mounts.check()
    assert mounts.verified() == frozenset() and "--dry-run" in mounts.unverified()["movies"]
    assert not (folder / ID_MARKER_NAME).exists()


def test_a_node_that_loses_the_race_to_mark_reads_the_winners_marker(tmp_path, store):
    """Two nodes marking at once: one O_EXCL create wins; the other finds the file, maybe
    still empty, waits for its content and is verified by it, writing nothing."""
    folder = tmp_path / "movies"
    folder.mkdir()
    (folder / "a.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {folder: "movies"})
    library = next(lib for lib in store.libraries() if lib.name == "movies")
    winner = LibraryIdentity(store.database_id(), library.uid, "movies", "node-b", 1.0)
    real_open = os.open

    def other_node_creates_it_first(path, flags, *args):
        if flags & os.O_EXCL and not (folder / ID_MARKER_NAME).exists():
            (folder / ID_MARKER_NAME).touch()  # created, not written yet
            threading.Timer(0.2, (folder / ID_MARKER_NAME).write_bytes, [winner.encode()]).start()
        return real_open(path, flags, *args)

    os.open = other_node_creates_it_first
    try:
        with capture_logs() as logs:
            mounts.check()
    finally:
        os.open = real_open
    assert mounts.verified() == {"movies"}, mounts.unverified()
    assert not [e for e in logs if e["event"] in ("library_marker_written", "library_mount_unverified")]
    assert json.loads((folder / ID_MARKER_NAME).read_text())["node"] == "node-b"


def test_a_deleted_marker_is_not_written_again_by_a_node_that_saw_it(tmp_path, store):
    folder = tmp_path / "movies"
    folder.mkdir()
    (folder / "film.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {folder: "movies"})
    mounts.check()
    queue_one(store, folder)
    (folder / ID_MARKER_NAME).unlink()  # a user tidying hidden files
    with capture_logs() as logs:
        mounts.check()
    assert mounts.verified() == frozenset() and not (folder / ID_MARKER_NAME).exists()
    [unverified] = [e for e in logs if e["event"] == "library_mount_unverified"]
    assert "marked before" in unverified["reason"] and "printf" in unverified["hint"]
    assert store.file_record(folder / "film.mkv").state == "queued"  # nothing requeued or forgotten


def test_a_file_gone_with_its_librarys_marker_did_not_vanish(tmp_path, store):
    """:meth:`LibraryMounts.lost`: a worker found a file gone. With the marker still there
    the file really vanished; with the marker gone too the share went away since the last
    check: the library is unverified at once (nothing more is claimed from it)."""
    mountpoint = tmp_path / "nas"
    mountpoint.mkdir()
    (mountpoint / "film.mkv").write_bytes(b"x")
    mounts, verified_again = mounts_for(store, {mountpoint: "tv"})
    mounts.check()
    (mountpoint / "film.mkv").unlink()  # deleted by the user: it vanished
    assert mounts.lost(mountpoint / "film.mkv") is None and mounts.verified() == {"tv"}
    assert mounts.lost(tmp_path / "elsewhere.mkv") is None
    os.rename(mountpoint, tmp_path / "share")  # the share is unmounted: an empty mount point
    mountpoint.mkdir()
    with capture_logs() as logs:
        reason = mounts.lost(mountpoint / "film.mkv")
    assert reason is not None and "gone" in reason
    assert mounts.verified() == frozenset() and mounts.claim_libraries() == frozenset()
    assert [e["event"] for e in logs] == ["library_mount_unverified"]
    mountpoint.rmdir()
    os.rename(tmp_path / "share", mountpoint)  # back
    mounts.check()
    assert mounts.verified() == {"tv"} and verified_again == [[mountpoint]]
    single, _ = mounts_for(store, {mountpoint: "tv"}, shared=False)
    single.check()
    assert single.lost(mountpoint / "film.mkv") is None  # SQLite: one machine, nothing to prove


def test_one_machine_sqlite_checks_nothing_and_writes_no_marker(tmp_path, store):
    folder = tmp_path / "movies"
    folder.mkdir()
    (folder / "a.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {folder: "movies", tmp_path / "gone": "gone"}, shared=False)
    mounts.check()
    assert mounts.verified() == {"movies", "gone"} and not (folder / ID_MARKER_NAME).exists()


def test_jobs_of_an_unverified_library_are_neither_handed_out_nor_queued(tmp_path, store):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "g.mkv").write_bytes(b"x")
    mounts, _ = mounts_for(store, {good: "good", bad: "bad"})
    for n in range(5):  # older than the good library's job: they must not block it
        queue_one(store, bad, f"b{n}.mkv")
    queue_one(store, good, "g.mkv")
    mounts.check()
    assert mounts.verified() == {"good"} and "bad" in mounts.unverified()
    stop, paused = threading.Event(), threading.Event()
    feeder = Feeder(store, stop, paused, libraries=mounts.claim_libraries)
    job = feeder.try_claim("worker-1")
    assert isinstance(job, Job) and (job.library, job.relpath) == ("good", b"g.mkv")
    assert not isinstance(feeder.try_claim("worker-2"), Job)
    store.release(job)
    assert store.queue_report().counts["queued"] == 6  # nothing requeued, forgotten or failed

    (bad / "new.mkv").write_bytes(b"y")
    intake = Intake(
        store, lambda: (good, bad), policy_digest=lambda root, path: None, follow_symlinks=False,
        on_queued=lambda: None, retry=lambda paths, delay: None, unverified=mounts.refusal,
    )
    assert intake.files_ready([(bad / "new.mkv", (bad / "new.mkv").stat())]) == {}
    assert store.file_record(bad / "new.mkv") is None


def test_a_library_from_before_markers_is_marked_only_where_its_own_files_are(tmp_path, store):
    """Upgrading: a library with files and no marker is marked by a node whose folder holds
    one of the files the database knows; a wrong folder (other files) is not marked."""
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    for folder in (right, wrong):
        (folder / "season 1").mkdir(parents=True)
    (right / "season 1" / "e1.mkv").write_bytes(b"x")
    (wrong / "season 1" / "other.mkv").write_bytes(b"x")
    store.bind_libraries({right: "tv"})
    store.enqueue(right, b"season 1/e1.mkv", "fp", StatKey(1, 1, 1, 1))
    wrong_node, _ = mounts_for(store, {wrong: "tv"})  # another node's path for "tv": the wrong folder
    wrong_node.check()
    assert "none of the first" in wrong_node.unverified()["tv"] and not (wrong / ID_MARKER_NAME).exists()
    right_node, _ = mounts_for(store, {right: "tv"})
    right_node.check()
    assert right_node.verified() == {"tv"} and (right / ID_MARKER_NAME).exists()


def test_what_the_claim_loop_passes_to_store_claim(tmp_path, store):
    folder = tmp_path / "movies"
    (folder).mkdir()
    (folder / "a.mkv").write_bytes(b"x")
    shared, _ = mounts_for(store, {folder: "movies", tmp_path / "gone": "gone"})
    shared.check()
    assert shared.claim_libraries() == {"movies"}
    single, _ = mounts_for(store, {folder: "movies"}, shared=False)
    single.check()
    assert single.claim_libraries() is None  # SQLite: every library with a folder here, as before
