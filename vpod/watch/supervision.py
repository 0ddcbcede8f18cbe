"""Root supervision: which configured roots are watched now, and getting the others back.

A root can be missing at start, deleted, renamed away or replaced (inotify follows the
folder, not the path), re-pointed (a symlinked root whose link now names another
folder), held by a vpod of another database (its library marker,
:mod:`vpod.watch.ownership`), or overlapping another watched root now (a symlink
re-pointed into it, :class:`vpod.watch.roots.RuntimeOverlaps`). A root whose inotify
queue overflows again and again is switched to polling
(:meth:`vpod.watch.observers.WatchManager.poll_overflowing`). :class:`RootSupervisor` notices each, publishes
:class:`~vpod.events.WatchRootLost` / :class:`~vpod.events.WatchRootRestored`, and
watches a root again when a folder has its path or the other vpod stops.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Callable

import structlog

from vpod.config import VPOConfig
from vpod.events import EventBus, WatchRootLost, WatchRootRestored
from vpod.watch.observers import WatchManager
from vpod.watch.intake import root_of
from vpod.watch.ownership import LibraryClaims
from vpod.watch.roots import RuntimeOverlaps
from vpod.watch.scanner import Scanner
from vpod.watch.unwatched import unwatched

RECHECK_SECONDS = 5.0
"""How often a missing root is looked for, inotify roots re-identified (one stat(2)
each) and library markers renewed or retaken."""


class RootSupervisor:
    """Keeps the configured roots watched; owned by the daemon, driven by its main loop.

    Args:
        roots: the configured roots (absolute paths).
        watches: the observers.
        claims: this vpod's library markers.
        scanner: walks a root that is (re)watched, for files already there.
        events: where losses and restorations are published.
        wake: wakes the main loop (an observer thread reports a deleted root).
        recursive: roots are watched with their subfolders (``[watch] recursive``): a
            root inside another overlaps it.
        library_of: a root's library name for the log lines (``None``: unnamed).
    """

    def __init__(
        self,
        roots: tuple[Path, ...],
        *,
        watches: WatchManager,
        claims: LibraryClaims,
        scanner: Scanner,
        events: EventBus,
        wake: Callable[[], None],
        recursive: bool = True,
        library_of: Callable[[Path], str | None] = lambda root: None,
    ) -> None:
        self.roots = roots
        self.library_of = library_of
        self.watches = watches
        self.claims = claims
        self.scanner = scanner
        self.events = events
        self.wake = wake
        self.overlaps = RuntimeOverlaps(recursive=recursive)
        self.log = structlog.get_logger("vpod")
        self._missing: set[Path] = set()
        self._lock = threading.Lock()  # observer threads add, the main loop reads and removes
        self._next_check = -math.inf

    def missing(self) -> set[Path]:
        """Roots found missing, deleted or moved away, not watched again yet."""
        with self._lock:
            return set(self._missing)

    def watch_all(self, *, catch_up: bool) -> None:
        """Watch every root (start-up); ``catch_up`` walks each for files already there."""
        for root in self.roots:
            self.watch(root, catch_up=catch_up)

    def watch(self, root: Path, *, catch_up: bool) -> None:
        """Watch ``root`` unless another vpod holds it; a root that is not a folder now is
        logged once (``watch_path_missing`` / ``watch_path_not_a_folder``) and looked
        for again by :meth:`tick`. A root that overlaps a watched root now is not watched
        (``watch_path_overlaps``) and looked at again by :meth:`tick`."""
        if self.overlaps.check(root, self.watches.roots()) is not None:
            self._discard(root)  # not watched while it overlaps; tick looks again
            return
        if self._claimed_elsewhere(root):
            return
        if self.watches.watch(root):
            self._discard(root)
            if catch_up:
                self.scanner.request(root, root, catch_up=True)
            return
        if root not in self.missing():
            if os.path.lexists(root) and not root.is_dir():
                self.log.error(
                    "watch_path_not_a_folder", root=str(root), library=self.library_of(root),
                    hint="[watch] paths lists folders; fix the config",
                )
            else:
                self.log.warning(
                    "watch_path_missing", root=str(root), library=self.library_of(root),
                    hint="watching starts when the folder exists",
                )
        with self._lock:
            self._missing.add(root)

    def root_deleted(self, root: Path, moved: bool = False) -> None:
        """An observer saw ``root`` go (any thread): only recorded; :meth:`tick` unwatches
        it and re-watches whatever folder comes to have the path."""
        with self._lock:
            self._missing.add(root)  # before the event: /health agrees with the log
        self.events.publish(WatchRootLost(root, moved, self.library_of(root)))
        self.wake()

    def events_lost(self, root: Path) -> bool:
        """An observer lost ``root``'s events (its thread): a rescan is queued (coalesced,
        :meth:`vpod.watch.scanner.Scanner.rescan`, whose answer is returned); a root found
        in an overflow loop is switched to polling by :meth:`tick`, woken for it."""
        if self.watches.events_lost(root):
            self.wake()
        return self.scanner.rescan(root)

    def tick(self, now: float) -> float:
        """Every :data:`RECHECK_SECONDS`: displaced roots and library markers; every call:
        roots in an overflow loop switched to polling (and walked once more: nothing is
        lost), missing or overlapping roots that are watchable again. Returns the next
        deadline (``now``'s clock)."""
        for root in self.watches.poll_overflowing():
            self.scanner.request(root, root, catch_up=True)
        if now >= self._next_check:
            self._next_check = now + RECHECK_SECONDS
            self._check_displaced()
            self._recheck_claims()
        for root in self.overlaps.pending():  # overlapping another root when last looked at
            if not root.is_dir():
                self.overlaps.forget(root)
                with self._lock:
                    self._missing.add(root)
        for root in sorted(self.missing()) + self.overlaps.pending():
            if root in self.watches.roots():
                self.watches.unwatch(root)
            if root.is_dir():
                self.watch(root, catch_up=True)
                if root in self.watches.roots():  # published once watched, so /health agrees
                    self.events.publish(WatchRootRestored(root, self.library_of(root)))
        waiting = self.missing() or self.overlaps.pending()
        return min(self._next_check, now + RECHECK_SECONDS) if waiting else self._next_check

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[watch] paths``: stop watching (and release) roots no longer
        listed, watch and walk new ones."""
        roots = tuple(p.absolute() for p in config.watch.paths)
        if roots == self.roots:
            return
        for root in set(self.roots) - set(roots):
            self.watches.unwatch(root)
            self.claims.release(root)
            self.overlaps.forget(root)
            self.watches.forget_overflows(root)
            self._discard(root)
        previous, self.roots = self.roots, roots
        for root in roots:
            if root not in previous:
                self.watch(root, catch_up=True)

    def unwatched(self) -> list[dict[str, str]]:
        """Configured roots not watched now, each with its reason (missing or gone, held
        by another vpod, overlapping another root): :func:`vpod.watch.unwatched.unwatched`."""
        return unwatched(
            self.roots,
            watched=lambda root: self.watches.kind(root) is not None,
            missing=self.missing(),  # a root found gone may not be unwatched yet
            claimed_elsewhere=set(self.claims.held_elsewhere()),
            overlap=self.overlaps.detail,
        )

    def unwatched_paths(self) -> list[str]:
        """The paths of :meth:`unwatched`, sorted."""
        return [entry["path"] for entry in self.unwatched()]

    def stop(self) -> None:
        """Stop every observer (shutdown)."""
        self.watches.stop_all()

    def _discard(self, root: Path) -> None:
        with self._lock:
            self._missing.discard(root)

    def _claimed_elsewhere(self, root: Path) -> bool:
        """Claim ``root``'s library marker; True when a vpod of another database holds it
        (logged by the claims): the root is then not watched."""
        if self.claims.claim(root) is None:
            return False
        self._discard(root)
        return True

    def _recheck_claims(self) -> None:
        """Take up roots whose other vpod stopped (watched and walked); renew this vpod's
        heartbeats; stop watching a root another vpod took meanwhile."""
        for root in self.claims.retake(self.roots):
            self.watch(root, catch_up=True)
        for root in self.claims.renew():
            self.watches.unwatch(root)
        for folder in self.claims.freed_subfolders():  # another vpod gave a subfolder up: walk it
            inside = root_of(folder, self.roots)
            if inside is not None:
                self.scanner.request(inside, folder)

    def _check_displaced(self) -> None:
        """A root whose path no longer names the watched folder: a re-pointed symlink is
        watched at its new folder at once (its library marker moves along), which is
        walked for files already there; anything else (renamed away, replaced by a
        rename, an ancestor renamed) is treated like a deleted root: its observer follows
        the old folder, so it is stopped and the path is watched anew. One stat(2) per
        inotify root."""
        missing = self.missing()
        for root in self.watches.displaced():
            if root in missing:
                continue
            if self.overlaps.check(root, self.watches.roots()) is not None:
                self.watches.unwatch(root)  # re-pointed into (or around) another root: one job per file
                self.claims.release(root)
                continue
            if self.watches.repoint(root):
                self.claims.release(root)  # the marker stays with the old folder: removed
                if self._claimed_elsewhere(root):
                    self.watches.unwatch(root)
                else:
                    self.scanner.request(root, root, catch_up=True)
            else:
                self.root_deleted(root, moved=True)
