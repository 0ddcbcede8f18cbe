"""Intake: a stable file becomes a durable job (or is recognized as already handled)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

import structlog

from vpod.db.pool import DatabaseBusy, DatabaseError
from vpod.db.store import EnqueueOutcome, Store
from vpod.fingerprint import StatKey, fingerprint_path
from vpod.results import display_path


def root_of(path: Path, roots: tuple[Path, ...]) -> Path | None:
    """The innermost root that contains ``path``, or ``None``."""
    best = None
    for root in roots:
        if (path == root or root in path.parents) and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return best


class Intake:
    """Fingerprints stable files and enqueues them in the Store.

    Args:
        store: the durable queue.
        roots: returns the current watch roots (they change on reload).
        follow_symlinks: fingerprint symlink targets instead of the link itself.
        on_queued: called after a job was queued (wakes the feeder).
        retry: called with a path the database could not take (locked, full), to try
            again after the settle time.
    """

    def __init__(
        self,
        store: Store,
        roots: Callable[[], tuple[Path, ...]],
        *,
        follow_symlinks: bool,
        on_queued: Callable[[], None],
        retry: Callable[[Path], None],
    ) -> None:
        self.store = store
        self.roots = roots
        self.follow_symlinks = follow_symlinks
        self.on_queued = on_queued
        self.retry = retry
        self.log = structlog.get_logger("vpod")

    def file_ready(self, path: Path, st: os.stat_result) -> EnqueueOutcome | None:
        """Handle a file the stabilizer found stable. Returns what the Store did.

        A path that is not a regular file (a FIFO or folder named ``x.mkv``) and a symlink
        are queued too, so the pipeline records why it skips them; their content is
        never read here.
        """
        root = root_of(path, self.roots())
        if root is None:
            return None
        relpath = os.fsencode(path.relative_to(root))
        try:
            if stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and self.follow_symlinks and path.exists()):
                fingerprint, key = fingerprint_path(path)
            else:
                fingerprint, key = f"{_kind(st.st_mode)}:{st.st_size}:{st.st_mtime_ns}", StatKey.of(st)
        except FileNotFoundError:
            return None  # gone again; its deletion event says so
        except OSError as exc:
            # Unreadable (permissions): queue anyway so the failure is recorded with its reason.
            fingerprint, key = f"unreadable:{st.st_size}:{st.st_mtime_ns}:{exc.errno}", StatKey.of(st)
        try:
            outcome = self.store.enqueue(root, relpath, fingerprint, key)
        except DatabaseBusy as exc:
            self.log.warning("queue_busy", path=display_path(path), error=str(exc))
            self.retry(path)
            return None
        except DatabaseError as exc:  # a full disk under the database, an I/O error
            self.log.error("queue_write_failed", path=display_path(path), error=str(exc))
            self.retry(path)
            return None
        if outcome is EnqueueOutcome.QUEUED:
            self.log.info("file_queued", path=display_path(path))
            self.on_queued()
        else:
            self.log.debug("file_not_queued", path=display_path(path), outcome=outcome.value)
        return outcome


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "special"
