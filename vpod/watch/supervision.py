"""Root supervision: which configured roots are watched now, and getting the others back.

A root can be missing at start, deleted, renamed away or replaced (inotify follows the
folder, not the path), re-pointed (a symlinked root whose link now names another
folder), or held by a vpod of another database (its library marker,
:mod:`vpod.watch.ownership`). :class:`RootSupervisor` notices each, publishes
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
from vpod.watch.ownership import LibraryClaims
from vpod.watch.scanner import Scanner

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
        library_of: Callable[[Path], str | None] = lambda root: None,
    ) -> None:
        self.roots = roots
        self.library_of = library_of
        self.watches = watches
        self.claims = claims
        self.scanner = scanner
        self.events = events
        self.wake = wake
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
        for again by :meth:`tick`."""
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

    def tick(self, now: float) -> float:
        """Every :data:`RECHECK_SECONDS`: displaced roots and library markers; every call:
        missing roots that are folders again. Returns the next deadline (``now``'s clock)."""
        if now >= self._next_check:
            self._next_check = now + RECHECK_SECONDS
            self._check_displaced()
            self._recheck_claims()
        for root in sorted(self.missing()):
            if root in self.watches.roots():
                self.watches.unwatch(root)
            if root.is_dir():
                self.watch(root, catch_up=True)
                if root not in self.missing():  # published once watched, so /health agrees
                    self.events.publish(WatchRootRestored(root, self.library_of(root)))
        return min(self._next_check, now + RECHECK_SECONDS) if self.missing() else self._next_check

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[watch] paths``: stop watching (and release) roots no longer
        listed, watch and walk new ones."""
        roots = tuple(p.absolute() for p in config.watch.paths)
        if roots == self.roots:
            return
        for root in set(self.roots) - set(roots):
            self.watches.unwatch(root)
            self.claims.release(root)
            self._discard(root)
        previous, self.roots = self.roots, roots
        for root in roots:
            if root not in previous:
                self.watch(root, catch_up=True)

    def unwatched_paths(self) -> list[str]:
        """Configured roots not watched now (missing, gone, or held by another vpod), sorted."""
        missing = self.missing()  # a root found gone may not be unwatched yet
        return sorted(str(root) for root in self.roots if root in missing or self.watches.kind(root) is None)

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
            if self.watches.repoint(root):
                self.claims.release(root)  # the marker stays with the old folder: removed
                if self._claimed_elsewhere(root):
                    self.watches.unwatch(root)
                else:
                    self.scanner.request(root, root, catch_up=True)
            else:
                self.root_deleted(root, moved=True)
