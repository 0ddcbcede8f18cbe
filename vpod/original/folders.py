"""Which series or movie folder holds a file: the longest folder path that is a prefix
of the file's path, compared by whole path components (``/movies/Up`` does not hold
``/movies/Up (2009)/Up.mkv``) and Unicode-normalized (NFC) on both sides: macOS writes
names decomposed (NFD), the *arr reports them as its own file system gave them."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from vpod.arr_config import ArrInstance
from vpod.original.client import ArrItem
from vpod.original.names import language_code


@dataclass(frozen=True)
class ArrTitle:
    """A series or movie whose folder holds a file.

    Attributes:
        title: its title.
        folder: its folder here (``path_mappings`` applied).
        language: the *arr's ``originalLanguage.name``, or ``None``.
        code: that language as ISO 639-2/B (:func:`vpod.original.names.language_code`),
            or ``None`` for no answer (none, ``Unknown``, ``Any``, a name vpod does not know).
        id: the instance's id of the series or movie (``None``: it gave none).
    """

    title: str
    folder: Path
    language: str | None
    code: str | None
    id: int | None = None


class FolderIndex:
    """An instance's items by their local folder. Immutable once built; lookups are a
    walk up the file's parents (a dictionary lookup each), so a list of any length costs
    the same per file."""

    def __init__(self, instance: ArrInstance, items: list[ArrItem]) -> None:
        self.by_folder: dict[Path, ArrTitle] = {}
        for item in items:
            folder = _clean(instance.local_path(item.path))
            self.by_folder.setdefault(folder, ArrTitle(item.title, folder, item.language, language_code(item.language), item.id))
        # The folders the items live in (the *arr's root folders, as far as its items show).
        self.roots = frozenset(folder.parent for folder in self.by_folder)

    def __len__(self) -> int:
        return len(self.by_folder)

    def find(self, path: Path) -> ArrTitle | None:
        """The item whose folder holds ``path`` (the deepest such folder), or ``None``."""
        for folder in _clean(path).parents:
            title = self.by_folder.get(folder)
            if title is not None:
                return title
        return None

    def may_hold(self, path: Path) -> bool:
        """True when ``path`` lies under a folder that holds items: a new item there
        (added since the list was fetched) could hold it. A file outside all of them
        cannot belong to this instance unless it has a new root folder."""
        return any(folder in self.roots for folder in _clean(path).parents)


def _clean(path: Path) -> Path:
    """``path`` absolute and normalized (``..`` and doubled slashes gone, no symlink
    resolved, Unicode NFC): what the *arr reports and what vpod watches are compared as
    written, but for how accented letters are encoded (``é`` as one code point or as
    ``e`` + a combining accent, Unicode Standard Annex #15)."""
    return Path(unicodedata.normalize("NFC", os.path.normpath(os.path.abspath(path))))
