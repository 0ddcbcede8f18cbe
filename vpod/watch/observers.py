"""One watchdog observer per watch root: inotify where it works, polling where it cannot.

inotify only reports changes made through the local kernel, so a folder on a
network filesystem (NFS, SMB/CIFS, sshfs and other FUSE mounts) is polled under
``observer = "auto"``: writes made by other hosts would otherwise never be seen
(inotify(7), "Limitations and caveats").

A root whose inotify queue overflows again and again is polled instead. After an overflow
(``IN_Q_OVERFLOW``) watchdog (7.1) rebuilds a recursive root's watches: it removes every
watch and adds it again, and each removal queues an ``IN_IGNORED`` event (inotify(7)). A
tree with more folders than ``fs.inotify.max_queued_events`` therefore overflows the
queue with those alone, which makes watchdog rebuild again, forever: a busy loop that
reports lost events many times a second, whatever vpod does (measured: 60 folders, a
queue of 16: about 450 losses per second with no vpod at all). vpod breaks the loop
(:meth:`WatchManager.events_lost`, :meth:`WatchManager.poll_overflowing`).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

try:
    from watchdog.observers.inotify import InotifyObserver

    from vpod.watch.inotify_budget import watches_exhausted
except ImportError:  # not Linux
    InotifyObserver = None  # type: ignore[assignment,misc]

NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre", "davfs", "sshfs"}
)
OBSERVER_THREAD_PREFIX = "vpod-watch "
"""Name prefix of the observer threads (``vpod-watch /srv/inbox``): what ``thread_died`` names."""
_OBSERVER_TIMEOUT_SECONDS = 5.0  # how long an idle observer thread sleeps between stop checks
OVERFLOW_LOOP_LOSSES = 20
OVERFLOW_LOOP_WINDOW_SECONDS = 10.0
"""A root whose events were lost :data:`OVERFLOW_LOOP_LOSSES` times within
:data:`OVERFLOW_LOOP_WINDOW_SECONDS` seconds is in watchdog's rebuild loop (module
docstring), or under a flood no queue of this size can hold: it is polled from then on."""
HANDLED_EVENTS = (
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
    EventsLostEvent,
)
"""The events :class:`vpod.watch.handler.WatchEventHandler` acts on. watchdog's inotify
emitter asks the kernel for these only (its ``event_filter``), so reads of watched files
(``IN_OPEN``, ``IN_CLOSE_NOWRITE``: vpod's own fingerprints and probes, a media server
streaming the library) and folder-modified events never wake the daemon. An
``EventsLostEvent`` (the kernel's ``IN_Q_OVERFLOW``, inotify(7)) is delivered only when
listed here (watchdog's ``EventsLostEvent`` docstring, watchdog >= 7.1)."""


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (proc(5)).
    return field.encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def filesystem_type(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The filesystem type of the mount holding ``path``, from ``/proc/self/mountinfo``.

    Format per proc(5): field 5 is the mount point, the field after ``-`` the type.
    Returns ``None`` when the file cannot be read (not Linux).
    """
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, best_type = "", None
    for line in lines:
        fields = line.split(" ")
        try:
            mount_point = _unescape_mountinfo(fields[4])
            fstype = fields[fields.index("-") + 1]
        except (IndexError, ValueError):
            continue
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fstype
    return best_type


def is_network_filesystem(fstype: str | None) -> bool:
    """True for filesystems whose remote writes inotify cannot see (including any FUSE)."""
    if fstype is None:
        return False
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse")


def choose_observer(path: Path, configured: str) -> tuple[str, str]:
    """Pick ``inotify`` or ``polling`` for ``path``; returns (kind, why)."""
    if configured == "polling":
        return "polling", "configured"
    if InotifyObserver is None:
        return "polling", "inotify is not available on this system"
    if configured == "inotify":
        return "inotify", "configured"
    fstype = filesystem_type(path)
    if is_network_filesystem(fstype):
        return "polling", f"{fstype} is a network filesystem; inotify cannot see writes made by other hosts"
    return "inotify", f"local filesystem ({fstype or 'unknown'})"


def folder_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the folder ``path`` names now (symlinks followed);
    ``None`` when it does not exist, cannot be read, or is not a folder."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


_MAX_LINKS = 40  # symlinks followed in a chain, as the kernel does (path_resolution(7))


def link_target(path: Path) -> Path | None:
    """Where the symlink ``path`` leads, following a chain of links, or ``None`` when
    ``path`` is not a symlink (or cannot be read).

    Only the links themselves are read (readlink(2), lstat(2)): the folder they lead to
    is never stat-ed, so a hung network mount behind a link cannot block the caller.
    The result is made absolute and normalized lexically; a chain longer than
    :data:`_MAX_LINKS` (a loop) gives the last link reached.
    """
    current = path
    for _ in range(_MAX_LINKS):
        try:
            text = os.readlink(current)
        except OSError:  # not a symlink (EINVAL), or gone
            break
        current = Path(os.path.normpath(os.path.join(os.path.dirname(current), text)))
    return None if current == path else current


def watched_folder(root: Path) -> Path:
    """The folder an observer of ``root`` must be given: ``root`` itself, or, when
    ``root`` is a symlink, the folder it leads to.

    watchdog's inotify emitter adds its watch on the root with ``IN_DONT_FOLLOW``
    (inotify(7)), so a symlinked root would watch the link, not the folder: files put
    directly in it would never be reported (those in subfolders would).
    """
    return Path(os.path.realpath(root)) if os.path.islink(root) else root


class _ReportedUnderRoot(FileSystemEventHandler):
    """Passes events of the folder a symlinked root leads to (``target``) on to the
    root's handler with their paths under the configured ``root``: the root's path is
    the library's identity (database rows, logs, the pipeline's roots)."""

    def __init__(self, handler: FileSystemEventHandler, root: Path, target: Path) -> None:
        super().__init__()
        self.handler = handler
        self.root = os.fspath(root)
        self.target = os.fspath(target)

    def _under_root(self, path: str | bytes) -> str | bytes:
        text = os.fsdecode(path)
        if text == self.target:
            return self.root
        if text.startswith(self.target.rstrip(os.sep) + os.sep):
            return self.root.rstrip(os.sep) + text[len(self.target.rstrip(os.sep)) :]
        return path

    def dispatch(self, event: FileSystemEvent) -> None:
        """Translate the paths, then let the root's handler route the event."""
        dest_path = self._under_root(event.dest_path) if event.dest_path else event.dest_path
        self.handler.dispatch(replace(event, src_path=self._under_root(event.src_path), dest_path=dest_path))


@dataclass
class _Watch:
    observer: BaseObserver
    kind: str
    identity: tuple[int, int]  # the folder's (st_dev, st_ino) when watching began
    target: Path  # the folder watched: the root, or where the symlinked root led
    link: Path | None  # link_target(root) when watching began


class WatchManager:
    """Starts, stops and re-creates the observers of the watch roots.

    Args:
        make_handler: builds the event handler of one root.
        observer: ``auto``, ``inotify`` or ``polling`` (``[watch] observer``).
        poll_interval_seconds: period of the polling observer.
        recursive: watch subfolders.
    """

    def __init__(
        self,
        make_handler: Callable[[Path], FileSystemEventHandler],
        *,
        observer: str,
        poll_interval_seconds: float,
        recursive: bool,
    ) -> None:
        self.make_handler = make_handler
        self.observer = observer
        self.poll_interval_seconds = poll_interval_seconds
        self.recursive = recursive
        self._lock = threading.Lock()
        self._watches: dict[Path, _Watch] = {}
        self._losses: dict[Path, deque[float]] = {}  # root -> monotonic times of its recent losses
        self._overflowing: set[Path] = set()  # found looping, not switched to polling yet
        self._polled_after_overflow: set[Path] = set()
        self.clock = time.monotonic
        self.log = structlog.get_logger("vpod")

    def roots(self) -> tuple[Path, ...]:
        """Roots currently watched."""
        with self._lock:
            return tuple(self._watches)

    def kind(self, root: Path) -> str | None:
        """``inotify`` or ``polling`` for a watched root, ``None`` when it is not watched."""
        with self._lock:
            watch = self._watches.get(root)
        return watch.kind if watch else None

    def target(self, root: Path) -> Path | None:
        """The folder watched for ``root`` (where a symlinked root led when watching
        began), ``None`` when it is not watched."""
        with self._lock:
            watch = self._watches.get(root)
        return watch.target if watch else None

    def watch(self, root: Path) -> bool:
        """Start watching ``root``; False when it does not exist (yet).

        A symlinked root is watched at the folder it leads to (:func:`watched_folder`);
        events are still reported under ``root``. Falls back to polling when inotify
        runs out of watches, with an error naming the ``fs.inotify.max_user_watches``
        sysctl. Logs ``watch_started`` with ``root`` and the watched ``target``.
        """
        with self._lock:
            if root in self._watches:
                return True
        # Taken before the observer starts: if the folder is replaced in between, the
        # identity differs from the watched folder's and displaced() reports it.
        link = link_target(root)
        target = watched_folder(root)
        identity = folder_identity(target)
        if identity is None:
            return False
        kind, why = choose_observer(target, self.observer)
        if kind == "inotify" and root in self._polled_after_overflow:
            kind, why = "polling", "its inotify queue overflowed again and again (fs.inotify.max_queued_events)"
        try:
            watch = self._start(root, kind, identity, target, link)
            if kind == "inotify" and watches_exhausted(root):
                watch.observer.stop()
                raise OSError(errno.ENOSPC, "inotify watch limit reached while watching the subfolders")
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE) or kind != "inotify":
                self.log.error("watch_failed", root=str(root), error=str(exc))
                return False
            self.log.error(
                "inotify_limit_reached",
                root=str(root),
                error=str(exc),
                hint="raise the sysctl fs.inotify.max_user_watches (or fs.inotify.max_user_instances); "
                "this folder is polled meanwhile",
            )
            kind, why = "polling", "inotify watch limit reached"
            watch = self._start(root, kind, identity, target, link)
        with self._lock:
            self._watches[root] = watch
        self.log.info("watch_started", root=str(root), target=str(target), observer=kind, why=why)
        return True

    def _start(
        self, root: Path, kind: str, identity: tuple[int, int], target: Path, link: Path | None
    ) -> _Watch:
        if kind == "polling":
            observer: BaseObserver = PollingObserver(timeout=self.poll_interval_seconds)
        else:
            observer = InotifyObserver(timeout=_OBSERVER_TIMEOUT_SECONDS)
        handler = self.make_handler(root)
        if target != root:
            handler = _ReportedUnderRoot(handler, root, target)
        observer.schedule(handler, str(target), recursive=self.recursive, event_filter=list(HANDLED_EVENTS))
        observer.daemon = True
        observer.name = f"{OBSERVER_THREAD_PREFIX}{root}"
        try:
            observer.start()
        except BaseException:
            observer.stop()
            raise
        return _Watch(observer, kind, identity, target, link)

    def displaced(self) -> list[Path]:
        """Roots whose path no longer names the folder being watched.

        For inotify roots: a root renamed or moved away (whether or not a new folder now
        has its name), replaced by a rename onto its path, below a renamed folder, or a
        symlinked root re-pointed. An inotify watch follows the folder, not the path,
        and watchdog reports none of these: its emitter does not ask the kernel for
        ``IN_MOVE_SELF`` and drops it, and keeps reporting events in the moved folder
        under the old path. The caller must :meth:`repoint` or :meth:`unwatch` such a root.

        Polling roots are checked only for a symlink that now leads elsewhere (or is no
        longer one), from the link alone: their observer re-reads the path on each poll
        and reports a missing root as deleted; and a stat of a hung network mount would
        block.

        Costs one stat(2) per inotify root, one readlink(2) per root; never raises.
        """
        with self._lock:
            watches = list(self._watches.items())
        return [
            root
            for root, w in watches
            if link_target(root) != w.link or (w.kind == "inotify" and folder_identity(root) != w.identity)
        ]

    def repoint(self, root: Path) -> bool:
        """Watch a displaced ``root`` anew when it is a symlink that now leads to another
        folder: the old observer is stopped and one started on the new folder (logs
        ``watch_root_repointed`` with ``root``, ``old_target``, ``new_target``).

        Returns False, changing nothing, when ``root`` is not a symlink to a folder
        other than the one watched (the caller treats it as deleted or moved away), and
        when the new folder could not be watched (then ``root`` is no longer watched).
        The caller walks the new folder for files already there.
        """
        old = self.target(root)
        if old is None or not os.path.islink(root):
            return False
        new = watched_folder(root)
        if new == old or folder_identity(new) is None:
            return False
        self.log.info("watch_root_repointed", root=str(root), old_target=str(old), new_target=str(new))
        self.unwatch(root)
        return self.watch(root)

    def events_lost(self, root: Path) -> bool:
        """Count a loss of ``root``'s events (any thread: its observer's). True when this
        loss makes it a root in an overflow loop (:data:`OVERFLOW_LOOP_LOSSES` losses
        within :data:`OVERFLOW_LOOP_WINDOW_SECONDS`) watched by inotify: the caller then
        has the main thread call :meth:`poll_overflowing`. Costs no system call."""
        now = self.clock()
        with self._lock:
            watch = self._watches.get(root)
            if watch is None or watch.kind != "inotify" or root in self._overflowing:
                return False
            losses = self._losses.setdefault(root, deque(maxlen=OVERFLOW_LOOP_LOSSES))
            losses.append(now)
            if len(losses) < OVERFLOW_LOOP_LOSSES or now - losses[0] > OVERFLOW_LOOP_WINDOW_SECONDS:
                return False
            self._overflowing.add(root)
            return True

    def poll_overflowing(self) -> list[Path]:
        """Watch each root found in an overflow loop (:meth:`events_lost`) with the polling
        observer instead (until vpod restarts, or the root is removed from the config);
        returns them: the caller walks each once more, for what arrived meanwhile. Logs
        ``watch_overflow_loop`` (error) for each. Main thread."""
        with self._lock:
            roots, self._overflowing = sorted(self._overflowing), set()
        for root in roots:
            self._polled_after_overflow.add(root)
            self._losses.pop(root, None)
            self.log.error(
                "watch_overflow_loop",
                root=str(root),
                losses=OVERFLOW_LOOP_LOSSES,
                within_seconds=OVERFLOW_LOOP_WINDOW_SECONDS,
                hint="the kernel's inotify queue (sysctl fs.inotify.max_queued_events) overflows again and again, "
                "also from watchdog's own rebuild of the folder's watches; this folder is polled from now on "
                "(nothing is lost); raise the sysctl above the number of its folders and restart vpod",
            )
            self.unwatch(root)
            self.watch(root)
        return roots

    def forget_overflows(self, root: Path) -> None:
        """``root`` left the config: a later root of that path starts with inotify again."""
        self._polled_after_overflow.discard(root)
        with self._lock:
            self._losses.pop(root, None)
            self._overflowing.discard(root)

    def dead_observers(self) -> list[str]:
        """Names of the observer threads that ended although their root is still watched.

        An observer thread ends only when :meth:`unwatch` stops it, or when an exception
        escapes watchdog's dispatch loop (a bug): then its root is heard no more. The
        caller treats the name like any other dead thread. Costs no system call.
        """
        with self._lock:
            watches = list(self._watches.values())
        return [w.observer.name for w in watches if not w.observer.is_alive()]

    def unwatch(self, root: Path) -> None:
        """Stop watching ``root`` (removed from the config, or deleted)."""
        with self._lock:
            watch = self._watches.pop(root, None)
        if watch is not None:
            watch.observer.stop()
            if watch.observer is not threading.current_thread():
                watch.observer.join(timeout=10)
            self.log.info("watch_stopped", root=str(root))

    def stop_all(self) -> None:
        """Stop every observer and wait for their threads."""
        for root in self.roots():
            self.unwatch(root)
