"""Watch roots that overlap: the same folder twice, or one inside another.

Two roots that reach the same folder (a bind mount, a symlink, ``/srv/a`` and
``/srv/a/``) or a recursive root with another root below it would give one file two
jobs, one per root. Paths are compared by the folders they name, ``(st_dev, st_ino)``
(stat(2)), not by their text: a bind mount of a folder has the folder's device and
inode (mount(8), ``--bind``), so text comparison cannot see it.

The config load refuses such roots (:func:`overlapping_roots`); a symlinked root re-pointed
while vpod runs (or a folder re-created at a root's path) can come to overlap another root
later: :class:`RuntimeOverlaps` keeps such a root unwatched, says so, and looks again.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import structlog

FolderId = tuple[int, int]  # (st_dev, st_ino)


class Overlap(NamedTuple):
    """``inner`` reaches files of ``outer``: the same folder (``same``) or inside it."""

    outer: Path
    inner: Path
    same: bool
    folder: FolderId  # the folder both reach (the outer one)

    def describe(self) -> str:
        """One sentence for a config error."""
        dev, ino = self.folder
        where = f"(device {os.major(dev)}:{os.minor(dev)}, inode {ino})"
        if self.same:
            return (
                f"{self.inner} is the same folder as {self.outer} {where}: a bind mount or a symlink? "
                "each file would get two jobs; list the folder once"
            )
        return (
            f"{self.inner} is inside {self.outer} {where}, which is watched with its subfolders: "
            f"each file below {self.inner} would get two jobs; list only {self.outer}, or set recursive = false"
        )


def folder_chain(path: Path) -> list[FolderId] | None:
    """``(st_dev, st_ino)`` of the folder ``path`` names (symlinks followed), then of each
    folder above it up to ``/``; ``None`` when ``path`` is not a folder that can be stat-ed."""
    try:
        real = Path(os.path.realpath(path))
        info = os.stat(real)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    chain = [(info.st_dev, info.st_ino)]
    for parent in real.parents:
        try:
            above = os.stat(parent)
        except OSError:
            break
        chain.append((above.st_dev, above.st_ino))
    return chain


def overlapping_roots(paths: Sequence[Path], *, recursive: bool) -> list[Overlap]:
    """Pairs of ``paths`` that reach the same files: the same folder, or (when watched
    ``recursive``) one inside another. Paths that do not name a folder now (missing,
    unreadable) are left out: they cannot be compared. Costs one stat(2) per path and
    per folder above it."""
    chains = [(path, folder_chain(path)) for path in paths]
    known = [(path, chain) for path, chain in chains if chain is not None]
    found: list[Overlap] = []
    for i, (a, chain_a) in enumerate(known):
        for b, chain_b in known[i + 1 :]:
            if chain_a[0] == chain_b[0]:
                found.append(Overlap(a, b, True, chain_a[0]))
            elif recursive and chain_a[0] in chain_b[1:]:
                found.append(Overlap(a, b, False, chain_a[0]))
            elif recursive and chain_b[0] in chain_a[1:]:
                found.append(Overlap(b, a, False, chain_b[0]))
    return found


def overlap_with(root: Path, others: Iterable[Path], *, recursive: bool) -> Overlap | None:
    """The first way ``root``, as it is now, reaches files of one of ``others`` (or they
    reach its): same folder, or one inside another when ``recursive``; ``None`` when it
    does not, or cannot be compared (missing). Same costs as :func:`overlapping_roots`."""
    others = [other for other in others if other != root]
    for overlap in overlapping_roots([*others, root], recursive=recursive):
        if root in (overlap.outer, overlap.inner):
            return overlap
    return None


class RuntimeOverlaps:
    """Roots left unwatched while they overlap a root that is watched (a symlinked root
    re-pointed into another root at run time, a root re-created inside another).

    Args:
        recursive: roots are watched with their subfolders (``[watch] recursive``).

    The daemon's main thread calls :meth:`check`; :meth:`detail` answers any thread.
    """

    def __init__(self, *, recursive: bool) -> None:
        self.recursive = recursive
        self._found: dict[Path, Overlap] = {}
        self._lock = threading.Lock()  # /health reads from the HTTP thread
        self.log = structlog.get_logger("vpod")

    def check(self, root: Path, watched: Iterable[Path]) -> Overlap | None:
        """Whether ``root`` overlaps one of the ``watched`` roots now: the overlap (the
        caller then does not watch ``root``) or ``None``. Logs ``watch_path_overlaps``
        (error, naming both roots) when an overlap is found that was not known."""
        overlap = overlap_with(root, watched, recursive=self.recursive)
        with self._lock:
            known = self._found.pop(root, None)
            if overlap is not None:
                self._found[root] = overlap
        if overlap is not None and known != overlap:
            other = overlap.outer if overlap.inner == root else overlap.inner
            self.log.error(
                "watch_path_overlaps",
                root=str(root),
                other=str(other),
                error=overlap.describe(),
                hint=f"{root} is not watched while it reaches the files of {other} (each file would get two "
                "jobs); it is looked at again every few seconds",
            )
        return overlap

    def pending(self) -> list[Path]:
        """Roots left unwatched because they overlapped another when last checked."""
        with self._lock:
            return list(self._found)

    def detail(self, root: Path) -> str | None:
        """Why ``root`` is not watched (one sentence), or ``None`` when it does not overlap."""
        with self._lock:
            overlap = self._found.get(root)
        return overlap.describe() if overlap is not None else None

    def forget(self, root: Path) -> None:
        """``root`` is no longer configured, or is missing now."""
        with self._lock:
            self._found.pop(root, None)
