"""Watch roots that overlap: the same folder twice, or one inside another.

Two roots that reach the same folder (a bind mount, a symlink, ``/srv/a`` and
``/srv/a/``) or a recursive root with another root below it would give one file two
jobs, one per root. Paths are compared by the folders they name, ``(st_dev, st_ino)``
(stat(2)), not by their text: a bind mount of a folder has the folder's device and
inode (mount(8), ``--bind``), so text comparison cannot see it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

FolderId = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True)
class Overlap:
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
