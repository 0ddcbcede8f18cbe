"""The catch-up walk: files found on disk go to the stabilizer, with their ctime where it can be trusted."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from structlog.testing import capture_logs

from vpod.config import WatchConfig
from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import EnqueueOutcome
from vpod.watch.filters import PathFilter
from vpod.watch.scanner import Scanner
from vpod.watch.stabilizer import Stabilizer

SETTLE = 2.0


def test_walked_files_quiet_for_the_settle_time_are_ready_at_once_only_where_ctime_is_trusted(tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    for root in (local, remote):
        (root / "show").mkdir(parents=True)
        (root / "show" / "old.mkv").write_bytes(b"x")
    time.sleep(SETTLE + 0.5)  # the old files have now been quiet for longer than the settle time
    for root in (local, remote):
        (root / "show" / "new.mkv").write_bytes(b"y")

    batches: list[list[Path]] = []
    arrived = threading.Condition()

    def on_ready(batch):
        with arrived:
            batches.append([path for path, _ in batch])
            arrived.notify_all()

    stop = threading.Event()
    stabilizer = Stabilizer(SETTLE, on_ready, stop)
    thread = threading.Thread(target=stabilizer.run, daemon=True)
    thread.start()
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    scanner = Scanner(
        store, PathFilter.from_config(WatchConfig()), stabilizer, stop, recursive=True,
        trust_ctime=lambda root: root == local,  # remote stands for a polled network share
    )
    try:
        walked_at = time.monotonic()
        assert scanner.walk(local, local) == (2, 2)
        assert scanner.walk(remote, remote) == (2, 2)
        with arrived:
            assert arrived.wait_for(lambda: sum(map(len, batches)) == 4, timeout=30), batches
        done_at = time.monotonic()
    finally:
        stop.set()
        stabilizer.wake()
        thread.join(5)

    def batch_of(path: Path) -> int:
        return next(i for i, batch in enumerate(batches) if path in batch)

    # Trusted: the old file went at once, the new one after its settle time.
    assert batch_of(local / "show" / "old.mkv") < batch_of(local / "show" / "new.mkv")
    # Untrusted: both waited a settle time from the walk, and settled together.
    assert batch_of(remote / "show" / "old.mkv") == batch_of(remote / "show" / "new.mkv")
    assert done_at - walked_at >= SETTLE


def two_roots(tmp_path: Path) -> tuple[Path, Path]:
    """Roots ``a`` and ``b``, each with one media file ``x.mkv``."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        (root / "x.mkv").write_bytes(b"x")
    return a, b


def test_rescans_after_lost_events_are_coalesced_per_root(tmp_path: Path) -> None:
    # Many overflows of one root before its rescan starts: one walk. Another root, or a
    # loss once the walk has started, gets its own.
    a, b = two_roots(tmp_path)
    stop = threading.Event()
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    stabilizer = Stabilizer(SETTLE, lambda batch: None, stop)
    scanner = Scanner(store, PathFilter.from_config(WatchConfig()), stabilizer, stop, recursive=True)
    assert scanner.rescan(a) is True
    assert [scanner.rescan(a) for _ in range(50)] == [False] * 50
    assert scanner.rescan(b) is True

    with capture_logs() as logs:
        thread = threading.Thread(target=scanner.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while sum(e["event"] == "scan_completed" for e in logs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scanner.rescan(a) is True  # the first walk of a has started: a new loss needs a new walk
        while sum(e["event"] == "scan_completed" for e in logs) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        scanner.wake()
        thread.join(5)
    walks = [(e["root"], e["why"]) for e in logs if e["event"] == "scan_completed"]
    assert walks == [(str(a), "events_lost"), (str(b), "events_lost"), (str(a), "events_lost")]


class _OtherNodeScans:
    """A real store, as seen by a node while another node holds ``busy``'s scan lock (on
    PostgreSQL an advisory lock; SQLite has one node, so the other node is stood in for
    here). Records which libraries' locks were asked for."""

    def __init__(self, store, busy: str) -> None:
        self._store, self.busy, self.asked = store, busy, []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def scan_lock(self, library):
        import contextlib

        self.asked.append(library)
        return contextlib.nullcontext(library != self.busy)


def test_a_catch_up_walk_holds_its_library_scan_lock_and_is_skipped_while_another_node_walks(tmp_path: Path) -> None:
    """Issue 14 item 4: one node at a time walks a library to catch up."""
    a, b = two_roots(tmp_path)
    stop = threading.Event()
    stabilizer = Stabilizer(SETTLE, lambda batch: None, stop)
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    other = _OtherNodeScans(store, busy="lib-b")
    scanner = Scanner(
        other, PathFilter.from_config(WatchConfig()), stabilizer, stop, recursive=True,
        library_of={a: "lib-a", b: "lib-b"}.get,
    )
    thread = threading.Thread(target=scanner.run, daemon=True)
    try:
        with capture_logs() as logs:
            thread.start()
            scanner.request(a, a, catch_up=True)
            scanner.request(b, b, catch_up=True)
            deadline = time.monotonic() + 10
            while len([e for e in logs if e["event"] in ("scan_completed", "scan_skipped")]) < 2:
                assert time.monotonic() < deadline, logs
                time.sleep(0.01)
    finally:
        stop.set()
        scanner.wake()
        thread.join(5)
        store.close()
    assert other.asked == ["lib-a", "lib-b"]
    [walked] = [e for e in logs if e["event"] == "scan_completed"]
    assert (walked["root"], walked["candidates"], walked["why"]) == (str(a), 1, "catch_up")
    [skipped] = [e for e in logs if e["event"] == "scan_skipped"]
    assert skipped["library"] == "lib-b" and skipped["root"] == str(b)


def test_a_walk_reports_scan_progress_with_files_seen_and_queued(tmp_path: Path, monkeypatch) -> None:
    """Issue 15 item 1: at info level a walk says how far it got (every 5 s; every folder
    here), counting the new jobs among the files it handed to the intake itself."""
    import vpod.watch.scanner as scanner_module

    monkeypatch.setattr(scanner_module, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(scanner_module, "HANDOFF_BATCH", 1)  # each folder's files handed over before its report
    root = tmp_path / "lib"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        for i in range(2):
            (root / folder / f"e{i}.mkv").write_bytes(b"x")
    time.sleep(SETTLE + 0.5)  # quiet for the settle time by their ctime
    (root / "a" / "e0.mkv").touch()  # still settling: handed to the stabilizer's own thread
    stop = threading.Event()
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    walked: list[Path] = []

    def on_walked(batch):  # stands in for Intake.files_walked: the first file of each batch is new
        walked.extend(path for path, _ in batch)
        return {path: EnqueueOutcome.QUEUED if i == 0 else EnqueueOutcome.UNCHANGED for i, (path, _) in enumerate(batch)}

    stabilizer = Stabilizer(SETTLE, lambda batch: None, stop, on_walked=on_walked)
    scanner = Scanner(
        store, PathFilter.from_config(WatchConfig()), stabilizer, stop, recursive=True,
        trust_ctime=lambda root: True, library_of=lambda root: "lib",
    )
    with capture_logs() as logs:
        tally = scanner.tally(root, root, why="catch_up")
    progress = [e for e in logs if e["event"] == "scan_progress"]
    assert progress, logs
    assert all((e["root"], e["library"], e["why"], e["log_level"]) == (str(root), "lib", "catch_up", "info")
               for e in progress)
    assert progress[-1]["files_seen"] == 4
    assert (tally.seen, tally.candidates) == (4, 4)
    assert tally.queued == progress[-1]["queued"] == 2  # a batch per folder handed over at once, one new job in each
    assert root / "a" / "e0.mkv" not in walked  # waits for its settle time
