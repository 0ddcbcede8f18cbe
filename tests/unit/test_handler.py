"""WatchEventHandler: the root folder itself reported deleted or moved away."""

from __future__ import annotations

from pathlib import Path

from watchdog.events import DirDeletedEvent, DirMovedEvent

from vpod.watch.handler import WatchEventHandler


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
