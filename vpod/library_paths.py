"""A path the user typed, as the path of the same file in a known library folder.

``vpod process``, ``vpod status PATH`` and ``vpod retry PATH`` take paths from the
command line. The same library folder can have several names on one machine: a bind
mount (``mount --bind``), a symlinked path, another node's mount path on a shared
database. A file named through any of them must be the library's row (one row, one
claim), not a new ad-hoc library. :class:`LibraryPaths` walks up from the path and
stops at the innermost folder that is a known library folder:

* by name (the folder itself, as configured), or
* by identity: the same folder as a known one (device and inode, stat(2); what
  ``os.path.samefile`` compares), which a bind mount or a symlink keeps, or
* by the library identity marker (:data:`vpod.watch.library_id.ID_MARKER_NAME`) of a
  library of this database that has a folder on this node (a database several nodes
  share: the marker proves the folder is that library even when it is another mount of
  the share, with another device number).

The path is then rewritten as the known folder plus the path below the folder found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from vpod.db.store import Store


class LibraryPaths:
    """The known library folders of this node, to map paths onto them.

    Args:
        folders: this node's library folders (``[watch] paths`` and the database's
            libraries that have a folder here), absolute.
        database_id: this database's identity, to read markers with (``None``: markers
            are not looked at, e.g. before a database is opened).
        marked: library uid (or name, for a library without uid) -> this node's folder
            of it, for markers.

    What a folder is found to be is kept for the object's life (one command): the files
    of one folder share their parents, so a library of 10,000 files costs a look at each
    folder once, not at each parent of each file.
    """

    def __init__(
        self, folders: Iterable[Path], *, database_id: str | None = None, marked: dict[str, Path] | None = None
    ) -> None:
        self.folders = tuple(dict.fromkeys(Path(os.path.abspath(f)) for f in folders))
        self._names = set(self.folders)
        self._by_identity: dict[tuple[int, int], Path] = {}
        for folder in reversed(self.folders):  # the first listed wins a shared identity
            key = _folder_identity(folder)
            if key is not None:
                self._by_identity[key] = folder
        self.database_id = database_id
        self.marked = dict(marked or {})
        self._found: dict[str, tuple[Path, str] | None] = {}  # folder -> (known folder, the name it was found by)

    def locate(self, path: Path) -> tuple[Path, Path] | None:
        """``(folder, path)``: the known library folder holding ``path`` (absolute)
        and the file's path under that folder; ``None`` when no known folder holds it.
        Never raises: a folder that cannot be looked at is passed over."""
        text = os.path.abspath(path)
        found = self._holder(os.path.dirname(text))
        if found is None:
            return None
        folder, current = found
        if current == os.fspath(folder) and os.fspath(path) == text:
            return folder, path  # named through the folder itself: the path as given
        return folder, folder / text[len(current) :].lstrip(os.sep)

    def _holder(self, start: str) -> tuple[Path, str] | None:
        """(known folder, ``start`` or its innermost ancestor found to be it), or ``None``.
        Strings, not Paths: this runs for every file of a library."""
        if start in self._found:
            return self._found[start]
        found = None
        folder = self._known(Path(start))
        if folder is not None:
            found = (folder, start)
        elif os.path.dirname(start) != start:
            found = self._holder(os.path.dirname(start))
        self._found[start] = found
        return found

    def _known(self, folder: Path) -> Path | None:
        key = _folder_identity(folder)
        if key is not None and key in self._by_identity:
            return self._by_identity[key]  # the first listed of its names: a watch root before an old ad-hoc one
        if folder in self._names:
            return folder
        if self.database_id and self.marked:
            # Moved here: collecting the targets of vpod process needs no database module.
            from vpod.watch.library_id import LibraryIdentity, read_identity

            found = read_identity(folder)
            if isinstance(found, LibraryIdentity) and found.database_id == self.database_id:
                return self.marked.get(found.library_uid or found.name)
        return None


def _folder_identity(folder: Path) -> tuple[int, int] | None:
    """Device and inode of the folder ``folder`` (symlinks followed), ``None`` when it
    is not one or cannot be looked at."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if os.path.isdir(folder) else None


def store_library_paths(store: Store, extra: Iterable[Path] = ()) -> LibraryPaths:
    """:class:`LibraryPaths` of ``store``: ``extra`` folders first (the config's watch
    roots), then every library with a folder on this node; markers of this database
    map to those folders.

    Raises:
        StoreError: the database cannot be read.
    """
    libraries = [lib for lib in store.libraries() if lib.path]
    folders = [*extra, *(Path(str(lib.path)) for lib in libraries)]
    marked = {lib.uid or lib.name: Path(str(lib.path)) for lib in libraries}
    return LibraryPaths(folders, database_id=store.database_id(), marked=marked)
