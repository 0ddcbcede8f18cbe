"""The *arr's path of an imported file, read as a file here inside a library.

The *arr often sees the library at another path (its container): ``[[hooks.path_map]]``
pairs translate it (then the calling ``[arr.NAME]``'s ``path_mappings``). The result must
be an absolute path without ``..``, inside a watched folder (also with symlinks
resolved: neither a linked folder nor a linked file may lead out), a regular file vpod watches (extension and ignore
globs of ``[watch]``). Anything else is refused with a :class:`PathRefused`, and nothing
is touched.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Callable

from vpod.arr_config import mapped_path
from vpod.watch.filters import PathFilter
from vpod.watch.intake import root_of


class PathRefused(Exception):
    """The path cannot be queued. ``reason``: a tag for logs and the answer
    (``bad_path``, ``path_traversal``, ``outside_libraries``, ``not_found``,
    ``not_a_file``, ``not_watched``); the message says which path and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def library_file(
    remote: str,
    *,
    path_map: tuple[tuple[str, str], ...],
    instance_mappings: tuple[tuple[str, str], ...],
    roots: tuple[Path, ...],
    path_filter: PathFilter,
    lstat: Callable[[Path], os.stat_result] = os.lstat,
) -> tuple[Path, Path]:
    """The file here, and the library folder (watch root) holding it, for the *arr's
    ``remote`` path.

    Raises:
        PathRefused: see the class.
    """
    if "\0" in remote or len(remote) > 4096:
        raise PathRefused("bad_path", "a path with a NUL byte, or longer than 4096 characters")
    if ".." in remote.replace("\\", "/").split("/"):
        raise PathRefused("path_traversal", f"{remote!r}: a path with '..' is refused")
    local, matched = mapped_path(remote, path_map)
    if not matched:
        local, matched = mapped_path(remote, instance_mappings)
    if not PurePosixPath(local).is_absolute():
        raise PathRefused("bad_path", f"{remote!r} reads as {str(local)!r} here: not an absolute path ([[hooks.path_map]]?)")
    path = Path(os.path.normpath(local))
    root = root_of(path, roots)
    if root is None:  # a library watched through a symlink, mapped to its real folder
        path, root = _through_links(path, roots)
    if root is None or path == root:
        raise PathRefused("outside_libraries", f"{path} is outside every watched folder (check [[hooks.path_map]])")
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(path.parent)
    if real_parent != real_root and not real_parent.startswith(real_root.rstrip(os.sep) + os.sep):
        raise PathRefused("outside_libraries", f"{path}: its folder leads out of {root} (a symlink)")
    if not path_filter.wants(path, root):
        raise PathRefused("not_watched", f"{path}: not a file vpod watches ([watch] extensions, ignore)")
    try:
        st = lstat(path)
    except FileNotFoundError:
        raise PathRefused("not_found", f"{path} does not exist here (check [[hooks.path_map]])") from None
    except OSError as exc:
        raise PathRefused("not_found", f"{path}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise PathRefused("not_a_file", f"{path} is not a file")
    if stat.S_ISLNK(st.st_mode) and not _inside_a_root(os.path.realpath(path), roots):
        # The intake would skip it (symlink_outside); say so now, nothing queued.
        raise PathRefused("outside_libraries", f"{path} is a symlink leading outside every watched folder")
    return path, root


def _inside_a_root(real: str, roots: tuple[Path, ...]) -> bool:
    """True when the real path ``real`` is inside the real folder of one of ``roots``."""
    for root in roots:
        real_root = os.path.realpath(root)
        if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
            return True
    return False


def _through_links(path: Path, roots: tuple[Path, ...]) -> tuple[Path, Path | None]:
    """``path`` under the root whose real folder holds its real folder (a root configured
    through a symlink, ``path_map`` naming the real folder), as a path under that root;
    ``(path, None)`` when none does."""
    real = os.path.realpath(path.parent)
    for root in roots:
        real_root = os.path.realpath(root)
        if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
            return root / os.path.relpath(real, real_root) / path.name, root
    return path, None
