"""Library names: the stable identity of a watched folder.

The database identifies a file as (library, path relative to the library), not by the
folder's absolute path, so a library may move on disk (a new mount point, a renamed
parent folder, another node mounting it elsewhere) without its files being processed
again. A library's name comes from ``[watch.libraries]`` (``NAME = "/path"``) or, for
a plain ``[watch] paths`` entry, from the folder's own name (:func:`library_names`).

Folders outside every configured library (``vpod process /some/folder``) are ad-hoc
libraries named by their absolute path (:func:`adhoc_name`); configured names never
start with ``/``, so the two kinds cannot collide.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a library (``None``: it can): it must be non-empty text
    without control characters, not start with ``/`` (ad-hoc names do) and not have
    leading or trailing spaces."""
    if not name or name != name.strip():
        return "a non-empty name without leading or trailing spaces"
    if name.startswith("/"):
        return 'a name that does not start with "/"'
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "a name without control characters"
    return None


def adhoc_name(root: Path) -> str:
    """The name of a folder that is no configured library: its absolute path."""
    return os.fspath(root.absolute())


def library_names(paths: Sequence[Path], named: Mapping[str, Path] | None = None) -> dict[Path, str]:
    """The library name of each watched folder.

    Args:
        paths: every watched folder (absolute).
        named: names given in the config (``[watch.libraries]``), name -> folder.

    A named folder keeps its name. Any other folder is named after its last path
    component (``/srv/media/movies`` -> ``movies``); when that name is taken (by a
    given name or by another folder's), more components are joined until it is unique
    (``media/movies``), and the whole path, without its leading ``/``, is the last
    resort. The result depends only on the set of folders and names, not on their
    order, so it is the same at every start with the same config.
    """
    by_path = {Path(path): name for name, path in (named or {}).items()}
    taken = set(by_path.values())
    unnamed = sorted({Path(p) for p in paths} - set(by_path))
    depth = {path: 1 for path in unnamed}
    while True:
        candidates = {path: _tail(path, depth[path]) for path in unnamed}
        counts: dict[str, int] = {}
        for name in candidates.values():
            counts[name] = counts.get(name, 0) + 1
        clashing = [p for p, name in candidates.items() if counts[name] > 1 or name in taken]
        grow = [p for p in clashing if depth[p] < len(p.parts) - 1]
        if not grow:
            break
        for path in grow:
            depth[path] += 1
    for path in unnamed:
        by_path[path] = candidates[path]
    return {Path(p): by_path[Path(p)] for p in paths}


def _tail(path: Path, components: int) -> str:
    """The last ``components`` parts of ``path`` joined by ``/`` (``/`` itself: ``root``)."""
    parts = [p for p in path.parts if p != path.anchor]
    return "/".join(parts[-components:]) if parts else "root"
