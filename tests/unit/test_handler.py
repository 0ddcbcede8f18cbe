"""WatchEventHandler: the root folder itself reported deleted or moved away; watchdog's
synthetic events below a folder moved in."""

from __future__ import annotations

import time
from pathlib import Path

from structlog.testing import capture_logs
from watchdog.events import DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileCreatedEvent, FileMovedEvent

from vpod.watch.handler import WatchEventHandler
from vpod.watch.observers import WatchManager


class _Stabilizer:
    def notify(self, path: Path) -> None:
        pass

    def forget(self, path: Path) -> None:
        pass


class _Filter:
    def wants(self, path: Path, root: Path) -> bool:
        return True

    def wants_folder(self, path: Path, root: Path) -> bool:
        return True

    def has_media_extension(self, name: str) -> bool:
        return name.endswith(".mkv")


def _handler(root: Path) -> tuple[WatchEventHandler, list[tuple[Path, bool]], list[Path]]:
    gone: list[tuple[Path, bool]] = []
    walked: list[Path] = []
    handler = WatchEventHandler(
        root, _Filter(), _Stabilizer(), walk_folder=lambda r, folder: walked.append(folder),  # type: ignore[arg-type]
        on_root_deleted=lambda r, moved: gone.append((r, moved)),
    )
    return handler, gone, walked


def test_root_moved_away_is_reported_and_its_destination_ignored(tmp_path):
    root = tmp_path / "inbox"
    handler, gone, walked = _handler(root)
    handler.dispatch(DirMovedEvent(str(root), str(tmp_path / "away")))
    assert gone == [(root, True)]
    assert walked == []  # the moved folder is not this root's any more


def test_root_deleted_is_reported_as_not_moved(tmp_path):
    handler, gone, _ = _handler(tmp_path)
    handler.dispatch(DirDeletedEvent(str(tmp_path)))
    assert gone == [(tmp_path, False)]


def test_subfolder_moved_within_root_is_walked(tmp_path):
    handler, gone, walked = _handler(tmp_path)
    handler.dispatch(DirMovedEvent(str(tmp_path / "a"), str(tmp_path / "b")))
    assert gone == [] and walked == [tmp_path / "b"]


class _FailingStabilizer:
    """Raises for one file name (a bug somewhere behind the handler), records the rest."""

    def __init__(self, bad_name: str) -> None:
        self.bad_name = bad_name
        self.notified: list[Path] = []

    def notify(self, path: Path) -> None:
        if path.name == self.bad_name:
            raise RuntimeError(f"injected failure for {path}")
        self.notified.append(path)

    def forget(self, path: Path) -> None:
        pass


def test_a_failing_event_is_logged_and_the_observer_thread_goes_on(tmp_path):
    # A real inotify observer and the real handler; only the stabilizer is a stand-in,
    # one that fails for one file the way a bug would.
    stabilizer = _FailingStabilizer("boom.mkv")
    manager = WatchManager(
        lambda root: WatchEventHandler(
            root, _Filter(), stabilizer, walk_folder=lambda r, f: None, on_root_deleted=lambda r, m: None  # type: ignore[arg-type]
        ),
        observer="inotify", poll_interval_seconds=1.0, recursive=True,
    )
    with capture_logs() as logs:
        assert manager.watch(tmp_path)
        try:
            (tmp_path / "boom.mkv").write_bytes(b"x")
            deadline = time.monotonic() + 10
            while not any(e["event"] == "watch_handler_error" for e in logs) and time.monotonic() < deadline:
                time.sleep(0.02)
            (tmp_path / "after.mkv").write_bytes(b"y")
            while tmp_path / "after.mkv" not in stabilizer.notified and time.monotonic() < deadline:
                time.sleep(0.02)
            assert manager.dead_observers() == []
        finally:
            manager.stop_all()
    errors = [e for e in logs if e["event"] == "watch_handler_error"]
    assert errors and errors[0]["root"] == str(tmp_path) and errors[0]["path"] == str(tmp_path / "boom.mkv")
    assert errors[0]["exc_info"] is True  # log.exception: the traceback goes to the log
    assert tmp_path / "after.mkv" in stabilizer.notified  # the observer thread lived on


def test_synthetic_events_below_a_folder_moved_in_are_left_to_its_walk(tmp_path):
    """watchdog follows a folder moved in (or moved within the root) with made-up events
    (``is_synthetic``) for what it holds: the folder's own event sends it to be walked,
    which finds them; they are not live files (their file_queued would be at info).
    A synthetic move still forgets its source; a synthetic deletion is a deletion."""
    class Recorder:
        def __init__(self) -> None:
            self.notified: list[Path] = []
            self.forgotten: list[Path] = []

        def notify(self, path: Path) -> None:
            self.notified.append(path)

        def forget(self, path: Path) -> None:
            self.forgotten.append(path)

    stabilizer = Recorder()
    walked: list[Path] = []
    handler = WatchEventHandler(
        tmp_path, _Filter(), stabilizer, walk_folder=lambda r, folder: walked.append(folder),  # type: ignore[arg-type]
        on_root_deleted=lambda r, moved: None,
    )
    handler.dispatch(DirCreatedEvent(str(tmp_path / "batch")))
    handler.dispatch(DirCreatedEvent(str(tmp_path / "batch" / "sub"), is_synthetic=True))
    handler.dispatch(FileCreatedEvent(str(tmp_path / "batch" / "sub" / "a.mkv"), is_synthetic=True))
    handler.dispatch(FileMovedEvent(str(tmp_path / "old" / "b.mkv"), str(tmp_path / "batch" / "b.mkv"), is_synthetic=True))
    handler.dispatch(DirDeletedEvent(str(tmp_path / "gone"), is_synthetic=True))
    assert walked == [tmp_path / "batch"]  # once, the subfolder included
    assert stabilizer.notified == []
    assert stabilizer.forgotten == [tmp_path / "old" / "b.mkv", tmp_path / "gone"]
    handler.dispatch(FileCreatedEvent(str(tmp_path / "batch" / "c.mkv")))  # a real event: a live file
    assert stabilizer.notified == [tmp_path / "batch" / "c.mkv"]
