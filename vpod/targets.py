"""The files a ``vpod process`` run works on: PATHS expanded, filtered and deduplicated.

Rules:

* a folder gives the files directly in it, or every file below it with ``recursive``;
  symlinked subfolders are never followed, ignored folder names (``.*`` …) are pruned;
* files are chosen by ``[watch] extensions`` and ``ignore`` (:class:`PathFilter`),
  for files named on the command line too (those are reported when dropped);
* a symlink named on the command line is followed (as ``cp`` or ``find -H`` do); one
  found inside a folder is left to the pipeline's symlink rules;
* order: PATHS as given, each folder's files sorted by their path below it;
* each file once: a second name for the same inode (repeated PATH, ``a/../a``, a hard
  link) is dropped, the first occurrence keeps its place;
* a file inside a library folder reached through another name of it (a bind mount, a
  symlinked path, another node's mount holding the library's marker:
  :mod:`vpod.library_paths`) is named through the library folder, so it is that
  library's row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

from vpod.library_paths import LibraryPaths
from vpod.watch.filters import PathFilter


class Target(NamedTuple):
    """One file to process.

    Attributes:
        path: absolute path the pipeline opens.
        root: the library it belongs to in the Store: the innermost watch root that holds
            it, by name or as the same folder (so the daemon and ``vpod process`` share one
            row per file), else the folder PATH it was found through, else its own folder.
    """

    path: Path
    root: Path

    @property
    def relpath(self) -> bytes:
        """``path`` relative to ``root``, as bytes (the Store's identity).

        Raises:
            ValueError: ``path`` is not below ``root``.
        """
        path, root = os.fspath(self.path), os.fspath(self.root)
        if not path.startswith(root.rstrip(os.sep) + os.sep):
            return os.fsencode(self.path.relative_to(self.root))  # its ValueError, or an unusual spelling
        return os.fsencode(path[len(root) :].lstrip(os.sep))


class Targets:
    """What :func:`collect_targets` found.

    Attributes:
        files: the files to process, in order.
        roots: where the pipeline may write (folder PATHS and named files), absolute.
        ignored: (path, why) for files named on the command line that the filters drop.
        unreadable: (folder, OS error) for folders that could not be listed.
    """

    __slots__ = ("files", "roots", "ignored", "unreadable")

    def __init__(
        self, files: list[Target] | None = None, roots: tuple[Path, ...] = (),
        ignored: list[tuple[Path, str]] | None = None, unreadable: list[tuple[Path, str]] | None = None,
    ) -> None:
        self.files: list[Target] = [] if files is None else files
        self.roots = roots
        self.ignored: list[tuple[Path, str]] = [] if ignored is None else ignored
        self.unreadable: list[tuple[Path, str]] = [] if unreadable is None else unreadable


def command_line_path(given: os.PathLike[str] | str) -> Path:
    """A PATH given on the command line as ``vpod process`` names it: absolute and
    normalised (``..`` and ``.`` taken out lexically, os.path.abspath), symlinks kept."""
    return Path(os.path.abspath(given))


def command_line_file(given: os.PathLike[str] | str) -> Path:
    """A FILE given on the command line as ``vpod process`` processes it
    (:func:`collect_targets`): :func:`command_line_path`, and a symlink replaced by the
    file it points to (Path.resolve). ``vpod plan`` and ``vpod inspect`` judge this path,
    so they choose the library, folder ``.vpod.toml`` and policy the run would."""
    absolute = command_line_path(given)
    return absolute.resolve() if absolute.is_symlink() else absolute


def library_file(given: os.PathLike[str] | str, watch_roots: Sequence[Path]) -> Path:
    """A FILE given on the command line named as :func:`collect_targets` names it:
    :func:`command_line_file`, then, when it lies in one of ``watch_roots`` reached
    through another name of that folder (a symlinked path, a bind mount), named through
    the library folder (:meth:`LibraryPaths.locate`). ``vpod plan`` and ``vpod inspect``
    choose the library, folder ``.vpod.toml`` and policy for this path, as the run does."""
    real = command_line_file(given)
    located = LibraryPaths(watch_roots).locate(real)
    return located[1] if located is not None else real


def collect_targets(
    paths: Sequence[Path],
    path_filter: PathFilter,
    *,
    recursive: bool,
    watch_roots: tuple[Path, ...] = (),
) -> Targets:
    """Expand ``paths`` (files and folders that exist) into the files to process.

    Args:
        paths: PATHS from the command line, relative or absolute.
        path_filter: ``[watch] extensions`` and ``ignore``.
        recursive: descend into subfolders.
        watch_roots: ``[watch] paths``, to give each file the Store identity the
            daemon uses.

    Never raises for one bad entry: unreadable folders land in ``unreadable``.
    """
    found = Targets()
    seen: set[object] = set()
    roots: list[Path] = []
    libraries = LibraryPaths(watch_roots)
    for given in paths:
        absolute = command_line_path(given)
        if absolute.is_dir():
            roots.append(absolute)
            candidates = _folder_files(absolute, path_filter, recursive, found.unreadable)
            default_root = absolute
        else:
            if not path_filter.wants(absolute, absolute.parent):
                found.ignored.append((absolute, _why_ignored(absolute, path_filter)))
                continue
            real = command_line_file(absolute)
            roots.append(real)
            candidates = [real]
            default_root = real.parent
        for path in candidates:
            key = _identity(path)
            if key in seen:
                continue
            seen.add(key)
            located = libraries.locate(path)
            if located is not None and located[1] != path:
                roots.append(located[1])  # the same file through the library's folder
            found.files.append(Target(located[1], located[0]) if located else Target(path, default_root))
    found.roots = tuple(dict.fromkeys(roots))
    return found


def relocate(targets: Targets, libraries: LibraryPaths) -> Targets:
    """``targets`` with each file inside a folder ``libraries`` knows named through that
    folder (:meth:`LibraryPaths.locate`), so it is the library's row; the new names are
    added to ``roots`` (where the pipeline may write). Order and everything else kept."""
    files: list[Target] = []
    roots = list(targets.roots)
    for target in targets.files:
        located = libraries.locate(target.path)
        if located is None or located == (target.root, target.path):
            files.append(target)
            continue
        files.append(Target(located[1], located[0]))
        roots.append(located[1])
    return Targets(files, tuple(dict.fromkeys(roots)), targets.ignored, targets.unreadable)


def _folder_files(folder: Path, path_filter: PathFilter, recursive: bool, unreadable: list[tuple[Path, str]]) -> list[Path]:
    """Candidate files below ``folder``, sorted by their path parts below it.

    A subfolder is entered only when :meth:`PathFilter.wants_folder` accepts it, so
    below it the name alone decides (:meth:`PathFilter.wants_name`), as
    :meth:`PathFilter.wants` would: no Path arithmetic per file (a library has 10,000s).
    """
    out: list[tuple[list[str], str]] = []
    prefix = len(os.fspath(folder).rstrip(os.sep)) + 1
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                listed = list(entries)
        except OSError as exc:
            unreadable.append((current, exc.strerror or str(exc)))
            continue
        for entry in listed:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                path = Path(entry.path)
                if recursive and path_filter.wants_folder(path, folder):
                    stack.append(path)
            elif path_filter.wants_name(entry.name):
                # Symlinks and FIFOs stay in: the pipeline records why it skips them.
                out.append((entry.path[prefix:].split(os.sep), entry.path))
    out.sort(key=lambda item: item[0])
    return [Path(path) for _, path in out]


def _identity(path: Path) -> object:
    """Device and inode of ``path`` itself (a symlink is not its target)."""
    try:
        st = os.lstat(path)
    except OSError:
        return path
    return (st.st_dev, st.st_ino)


def _why_ignored(path: Path, path_filter: PathFilter) -> str:
    name = path.name
    if path_filter.is_ignored_name(name):
        return "its name matches [watch] ignore (or is a vpod temp file)"
    if path_filter.is_backup_name(name):
        return "it is a backup vpod wrote (NAME.orig.EXT)"
    extensions = ", ".join(sorted(path_filter.extensions))
    return f"its extension is not one of [watch] extensions ({extensions})"
