"""The stabilizer on real files: settle time, changes, writers, vanished files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vpod.watch.stabilizer import Stabilizer

SETTLE = 0.3


class Harness:
    def __init__(self, writers=lambda paths: set(), settle: float = SETTLE) -> None:
        self.ready: list[tuple[Path, float]] = []
        self.batches: list[list[Path]] = []
        self.gone: list[Path] = []
        self.stop = threading.Event()
        self.event = threading.Condition()
        self.stabilizer = Stabilizer(settle, self._ready, self.stop, on_gone=self.gone.append, writers=writers)
        self.thread = threading.Thread(target=self.stabilizer.run, daemon=True)
        self.thread.start()

    def _ready(self, batch):
        with self.event:
            now = time.monotonic()
            self.ready += [(path, now) for path, _ in batch]
            self.batches.append([path for path, _ in batch])
            self.event.notify_all()

    def wait_ready(self, count: int, timeout: float = 10) -> None:
        with self.event:
            assert self.event.wait_for(lambda: len(self.ready) >= count, timeout), self.ready

    def close(self) -> None:
        self.stop.set()
        self.stabilizer.wake()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.close()


def test_ready_after_settle(tmp_path, harness):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x" * 100)
    start = time.monotonic()
    harness.stabilizer.notify(path)
    harness.wait_ready(1)
    assert harness.ready[0][0] == path
    assert harness.ready[0][1] - start >= SETTLE
    assert harness.stabilizer.pending_count() == 0


def test_each_event_restarts_the_settle_time(tmp_path):
    # Writes 0.1 s apart against a 2 s settle time: even a badly overshot sleep on a
    # loaded machine stays well inside the settle time.
    settle = 2.0
    h = Harness(settle=settle)
    try:
        path = tmp_path / "a.mkv"
        with open(path, "wb") as handle:
            for _ in range(6):
                handle.write(b"x" * 100)
                handle.flush()
                last_event = time.monotonic()
                h.stabilizer.notify(path)
                time.sleep(0.1)
        h.wait_ready(1)
        assert h.ready[0][1] >= last_event + settle  # counted from the last event
        assert len(h.ready) == 1
    finally:
        h.close()


def test_unreported_growth_is_seen_by_stat(tmp_path, harness):
    """A writer whose events are missed (network FS): the size change alone delays readiness."""
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    harness.stabilizer.notify(path)
    deadline = time.monotonic() + SETTLE * 5
    while time.monotonic() < deadline:  # grow without telling the stabilizer
        with open(path, "ab") as handle:
            handle.write(b"y")
        time.sleep(SETTLE / 3)
        assert not harness.ready, "ready while the file was still growing"
    harness.wait_ready(1)


def test_vanished_file_is_dropped(tmp_path, harness):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    harness.stabilizer.notify(path)
    path.unlink()
    deadline = time.monotonic() + 5
    while not harness.gone and time.monotonic() < deadline:
        time.sleep(0.02)
    assert harness.gone == [path]
    assert harness.ready == []


def test_forget_drops_a_folder_and_its_files(tmp_path, harness):
    folder = tmp_path / "show"
    folder.mkdir()
    for name in ("a.mkv", "b.mkv"):
        (folder / name).write_bytes(b"x")
        harness.stabilizer.notify(folder / name)
    harness.stabilizer.forget(folder)
    assert harness.stabilizer.pending_count() == 0
    time.sleep(SETTLE * 2)
    assert harness.ready == []


def test_an_open_writer_delays_readiness(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    writing = {path}
    h = Harness(writers=lambda paths: {p for p in paths if p in writing})
    try:
        h.stabilizer.notify(path)
        time.sleep(SETTLE * 4)
        assert h.ready == []
        writing.clear()
        h.wait_ready(1)
    finally:
        h.close()


def test_many_files_settle_together(tmp_path, harness):
    paths = []
    for i in range(500):
        path = tmp_path / f"f{i}.mkv"
        path.write_bytes(b"x")
        paths.append(path)
        harness.stabilizer.notify(path)
    harness.wait_ready(500)
    assert sorted(p for p, _ in harness.ready) == sorted(paths)


def test_stop_ends_the_thread_promptly(tmp_path):
    h = Harness()
    h.stabilizer.notify(tmp_path / "never.mkv")
    h.close()


def test_settled_files_arrive_in_batches(tmp_path, harness):
    paths = [tmp_path / f"f{i}.mkv" for i in range(50)]
    for path in paths:
        path.write_bytes(b"x")
    harness.stabilizer.notify_many([(p, None) for p in paths])
    harness.wait_ready(50)
    assert len(harness.batches) < 50  # not one call per file
    assert sorted(p for batch in harness.batches for p in batch) == sorted(paths)


def test_a_file_quiet_since_long_ago_is_ready_without_a_new_settle_time(tmp_path):
    """changed_at (a walk's st_ctime) older than settle_seconds: the quiet time has passed."""
    old, new = tmp_path / "old.mkv", tmp_path / "new.mkv"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    h = Harness(settle=3600)
    try:
        h.stabilizer.notify_many([(old, time.time() - 7200), (new, time.time())])
        h.wait_ready(1, timeout=30)
        assert [p for p, _ in h.ready] == [old]  # new.mkv changed just now: it waits the full hour
        assert h.stabilizer.pending_count() == 1
    finally:
        h.close()


def test_a_change_time_in_the_future_counts_as_now(tmp_path):
    """A clock set back must not make a file look settled."""
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    start = time.monotonic()
    h = Harness()
    try:
        h.stabilizer.notify(path, changed_at=time.time() + 3600)
        h.wait_ready(1)
        assert h.ready[0][1] - start >= SETTLE
    finally:
        h.close()


def test_an_open_writer_delays_a_file_quiet_since_long_ago(tmp_path):
    busy, idle = tmp_path / "busy.mkv", tmp_path / "idle.mkv"
    busy.write_bytes(b"x")
    idle.write_bytes(b"y")
    h = Harness(writers=lambda paths: {p for p in paths if p == busy}, settle=3600)
    try:
        h.stabilizer.notify_many([(busy, time.time() - 7200), (idle, time.time() - 7200)])
        h.wait_ready(1, timeout=30)
        assert [p for p, _ in h.ready] == [idle]
        assert h.stabilizer.pending_count() == 1  # busy.mkv waits another settle time
    finally:
        h.close()


def _quiet_files(tmp_path, *names):
    """Real files whose ctime is older than SETTLE, with their lstat."""
    paths = [tmp_path / name for name in names]
    for path in paths:
        path.write_bytes(b"x")
    time.sleep(SETTLE + 0.2)
    return [(path, path.lstat()) for path in paths]


def test_walked_files_quiet_for_the_settle_time_are_handed_over_by_the_caller(tmp_path, harness):
    walked = _quiet_files(tmp_path, "a.mkv", "b.mkv")
    harness.stabilizer.notify_walked(walked, trust_ctime=True)
    # No wait: the walk's own thread handed them over before notify_walked returned.
    assert sorted(p for p, _ in harness.ready) == sorted(p for p, _ in walked)
    assert harness.stabilizer.pending_count() == 0


def test_walked_files_wait_when_ctime_is_not_trusted_or_recent(tmp_path, harness):
    walked = _quiet_files(tmp_path, "share.mkv")
    harness.stabilizer.notify_walked(walked, trust_ctime=False)  # a network share's clock
    recent = tmp_path / "recent.mkv"
    recent.write_bytes(b"y")
    harness.stabilizer.notify_walked([(recent, recent.lstat())], trust_ctime=True)
    assert harness.ready == []
    assert harness.stabilizer.pending_count() == 2
    harness.wait_ready(2)  # both after a settle time of their own


def test_a_walked_file_an_event_put_in_flux_keeps_waiting(tmp_path):
    h = Harness(settle=3600)
    try:
        (path, _), = walked = [(p, st) for p, st in _quiet_files(tmp_path, "a.mkv")]
        h.stabilizer.notify(path)  # a write event just now
        h.stabilizer.notify_walked(walked, trust_ctime=True)
        assert h.ready == []
        assert h.stabilizer.pending_count() == 1
    finally:
        h.close()


def test_a_walked_file_still_open_for_writing_waits(tmp_path):
    walked = _quiet_files(tmp_path, "busy.mkv", "idle.mkv")
    busy = walked[0][0]
    h = Harness(writers=lambda paths: {p for p in paths if p == busy})
    try:
        h.stabilizer.notify_walked(walked, trust_ctime=True)
        assert [p for p, _ in h.ready] == [walked[1][0]]
        assert h.stabilizer.pending_count() == 1  # busy.mkv waits another settle time
        time.sleep(3 * SETTLE)
        assert [p for p, _ in h.ready] == [walked[1][0]]  # and again, while it is open
    finally:
        h.close()


def test_a_file_the_database_refused_comes_back_after_the_given_wait(tmp_path, harness):
    """Intake's backoff: the file is handed over again after the wait, not the settle time."""
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x" * 100)
    start = time.monotonic()
    harness.stabilizer.notify_later([path], 1.0)
    harness.wait_ready(1)
    assert harness.ready[0][0] == path and harness.ready[0][1] - start >= 1.0
    assert harness.stabilizer.pending_count() == 0


def test_a_file_its_writer_says_is_done_goes_without_the_settle_time(tmp_path):
    # issue 16 item 2: a Sonarr/Radarr webhook says the import is complete. (A file still
    # open for writing then waits: tests/integration/test_webhooks.py.)
    h = Harness(settle=3600.0)
    try:
        done = tmp_path / "done.mkv"
        done.write_bytes(b"x" * 10)
        h.stabilizer.notify(done)  # its own events came first: an hour's settle time
        with done.open("ab") as f:
            f.write(b"more")  # a change the stabilizer has not looked at yet
        h.stabilizer.notify_done([done])
        h.stabilizer.notify(done)  # a late event of the import does not postpone it
        h.wait_ready(1)
        assert [path for path, _ in h.ready] == [done] and h.stabilizer.pending_count() == 0
    finally:
        h.close()


def test_in_flux_names_the_folders_of_files_waiting_to_settle(tmp_path):
    """A catch-up queues a folder in bulk only where no file of it is in flux (issue 15 item 1)."""
    stabilizer = Stabilizer(60.0, lambda batch: None, threading.Event())
    (tmp_path / "a").mkdir()
    assert not stabilizer.in_flux(str(tmp_path / "a"))
    stabilizer.notify(tmp_path / "a" / "x.mkv")
    assert stabilizer.in_flux(str(tmp_path / "a")) and stabilizer.in_flux(str(tmp_path / "a") + "/")
    assert not stabilizer.in_flux(str(tmp_path)) and not stabilizer.in_flux(str(tmp_path / "b"))
    stabilizer.forget(tmp_path / "a" / "x.mkv")
    assert not stabilizer.in_flux(str(tmp_path / "a"))
