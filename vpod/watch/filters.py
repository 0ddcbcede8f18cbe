"""Which paths are candidate media files: extensions, ignore globs, vpod's own files."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import NamedTuple

from vpod.config import WatchConfig

TEMP_PREFIX = ".vpod-tmp-"
"""Name prefix of vpod's own temp files (hidden, so the default ignore list covers them too)."""


class PathFilter(NamedTuple):
    """Matches file names against ``[watch] extensions`` and ``ignore``.

    ``ignore`` globs (fnmatch, case-sensitive as on Linux) apply to every path
    component below the watch root, so ``.Trash-1000/x.mkv`` is ignored by ``.*``.
    Backups that vpod writes (``NAME.orig.EXT``) and its temp files never match.
    """

    extensions: frozenset[str]
    ignore: re.Pattern[str]

    @classmethod
    def from_config(cls, watch: WatchConfig) -> "PathFilter":
        """Build from ``[watch]``; extensions compare case-insensitively."""
        patterns = [fnmatch.translate(g) for g in watch.ignore] or ["(?!)"]
        return cls(
            extensions=frozenset(e.lower() for e in watch.extensions),
            ignore=re.compile("|".join(f"(?:{p})" for p in patterns)),
        )

    def has_media_extension(self, name: str) -> bool:
        """True when ``name``'s extension is one of the configured ones."""
        _, dot, ext = name.rpartition(".")
        return bool(dot) and ext.lower() in self.extensions

    def is_ignored_name(self, name: str) -> bool:
        """True for names matching an ignore glob, and vpod's temp files."""
        return name.startswith(TEMP_PREFIX) or bool(self.ignore.match(name))

    @staticmethod
    def is_backup_name(name: str) -> bool:
        """True for ``NAME.orig.EXT``, the backups vpod writes with ``[policy] backup``."""
        stem, dot, _ = name.rpartition(".")
        return bool(dot) and stem.endswith(".orig")

    def wants_name(self, name: str) -> bool:
        """True for a file called ``name`` in a folder that is not ignored: what
        :meth:`wants` says once the folders above it have passed :meth:`wants_folder`."""
        return self.has_media_extension(name) and not self.is_backup_name(name) and not self.is_ignored_name(name)

    def wants(self, path: Path, root: Path) -> bool:
        """True when ``path`` (under ``root``) should be watched for stability and queued."""
        if not self.wants_name(path.name):
            return False
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return False
        return not any(self.is_ignored_name(part) for part in parts[:-1])

    def wants_folder(self, path: Path, root: Path) -> bool:
        """True when files below the folder ``path`` can be wanted (not in an ignored folder)."""
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return False
        return not any(self.is_ignored_name(part) for part in parts)


def fs_name(path: str | bytes) -> Path:
    """A watchdog path (str or bytes) as a :class:`Path`."""
    return Path(os.fsdecode(path))
