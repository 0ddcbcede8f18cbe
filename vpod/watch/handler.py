"""The watchdog event handler: filter, then hand off. It never blocks.

Events that mean "this file may have new content" (created, modified, closed after
write, moved in) go to the :class:`Stabilizer`; a folder created or moved in goes to
the scanner to be walked (watchdog reports a moved-in tree as ``created``, and files
written before its watch was set up would otherwise be missed); deleted and
moved-away paths are forgotten. What lies below a folder moved in is the walk's: the
synthetic events watchdog makes up for it (``is_synthetic``) are not routed as live
files, so those files are queued once, by the walk, with a debug ``file_queued``
(live files keep theirs at info). When the kernel's inotify queue overflowed, the events
of the root were lost (watchdog >= 7.1 says so with one ``events_lost`` event per
watch): the root is walked again (``events_lost`` callback).

The handler runs on the root's observer thread; an exception escaping it would end that
thread (watchdog does not catch it) and leave vpod deaf to the root. :meth:`dispatch`
therefore catches every error, logs it (``watch_handler_error``, with the traceback)
and goes on with the next event.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import structlog
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_EVENTS_LOST,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)

from vpod.watch.filters import PathFilter, fs_name
from vpod.watch.stabilizer import Stabilizer

_CONTENT_EVENTS = (EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED)
# watchdog's inotify emitter follows the event of a folder moved in (or moved within the
# root) with synthetic (``event.is_synthetic``) created or moved events for everything
# below it, listed by its own os.walk (watchdog.events.generate_sub_created_events and
# generate_sub_moved_events, called from watchdog/observers/inotify.py
# InotifyEmitter.build_and_queue_event, watchdog 7.1).
_LEFT_TO_THE_WALK = (EVENT_TYPE_CREATED, EVENT_TYPE_MOVED)


class WatchEventHandler(FileSystemEventHandler):
    """Routes one watch root's events.

    Args:
        root: the watch root this handler serves.
        path_filter: extension and ignore rules.
        stabilizer: receives candidate files.
        walk_folder: called with ``(root, folder)`` for folders created or moved in;
            must only enqueue the walk, not perform it.
        on_root_deleted: called with ``(root, moved)`` when the root folder itself is
            deleted (``moved`` False) or reported moved away (``moved`` True).
        events_lost: called with ``root`` when events of the root were lost (the inotify
            queue overflowed); must only enqueue a rescan, not perform it, and return
            False when one was waiting already (coalesced).
    """

    def __init__(
        self,
        root: Path,
        path_filter: PathFilter,
        stabilizer: Stabilizer,
        walk_folder: Callable[[Path, Path], None],
        on_root_deleted: Callable[[Path, bool], None],
        events_lost: Callable[[Path], bool] = lambda root: False,
    ) -> None:
        super().__init__()
        self.root = root
        self.filter = path_filter
        self.stabilizer = stabilizer
        self.walk_folder = walk_folder
        self.on_root_deleted = on_root_deleted
        self.events_lost = events_lost
        self.log = structlog.get_logger("vpod")

    def dispatch(self, event: FileSystemEvent) -> None:
        """watchdog's entry point (the observer thread): route ``event``; a failure is
        logged as ``watch_handler_error`` with the traceback, never raised, so the
        observer thread lives on and later events are still handled."""
        try:
            self.on_any_event(event)
        except Exception:  # a bug in vpod: the next event may well work
            self.log.exception(
                "watch_handler_error",
                root=str(self.root),
                kind=event.event_type,
                path=os.fsdecode(event.src_path),
                hint="a bug in vpod (please report it); watching goes on",
            )

    def on_any_event(self, event: FileSystemEvent) -> None:
        """watchdog's callback (its observer thread): route the event, never block."""
        kind = event.event_type
        if kind == EVENT_TYPE_EVENTS_LOST:
            queued = self.events_lost(self.root)
            self.log.warning(
                "watch_events_lost",
                root=str(self.root),
                rescan="queued" if queued else "coalesced",
                hint="the kernel's inotify queue overflowed (sysctl fs.inotify.max_queued_events);"
                " the folder is walked again for what was missed",
            )
            return
        src = fs_name(event.src_path)
        if event.is_synthetic and kind in _LEFT_TO_THE_WALK:
            # Made up by watchdog for what lies below a folder moved in or moved within the
            # root, right after that folder's own (real) event, which sent it to be walked:
            # the walk finds these files (a walk's file_queued is a debug line, its counts go
            # to scan_progress / scan_completed). What moved away is still forgotten.
            if kind == EVENT_TYPE_MOVED:
                self._gone(src)
            return
        if kind == EVENT_TYPE_MOVED:
            if src == self.root:
                # Not from watchdog's inotify emitter (it drops IN_MOVE_SELF; the daemon
                # finds such moves with WatchManager.displaced()), but should an
                # observer report it, the destination is no longer under this root.
                self.on_root_deleted(self.root, True)
                return
            self._gone(src)
            dest = fs_name(event.dest_path)
            if event.is_directory:
                self._folder(dest)
            else:
                self._file(dest)
        elif kind == EVENT_TYPE_DELETED:
            if src == self.root:
                self.on_root_deleted(self.root, False)
            self._gone(src)
        elif kind in _CONTENT_EVENTS:
            if event.is_directory:
                if kind == EVENT_TYPE_CREATED:
                    self._folder(src)
            else:
                self._file(src)

    def _file(self, path: Path) -> None:
        if self.filter.wants(path, self.root):
            self.stabilizer.notify(path)

    def _folder(self, path: Path) -> None:
        if self.filter.wants_folder(path, self.root):
            self.walk_folder(self.root, path)
            # A folder with a media extension ("x.mkv/") is reported like a bad file.
            if self.filter.has_media_extension(path.name):
                self.stabilizer.notify(path)

    def _gone(self, path: Path) -> None:
        self.stabilizer.forget(path)
