"""The daemon's library names, given to the store at start and at each reload."""

from __future__ import annotations

from pathlib import Path

import structlog

from vpod.config import VPOConfig
from vpod.db.store import Store, StoreError


class LibraryBinding:
    """Binds the config's library names to their folders in the store
    (:meth:`Store.bind_libraries`, names from :attr:`WatchConfig.library_names`).

    A library that moved (same name, new folder) or was renamed (same folder) keeps its
    files' history: logged ``library_moved`` / ``library_renamed``. A database that cannot
    be written now keeps the old binding (logged ``libraries_not_recorded``); the next
    reload tries again.

    Args:
        store: the queue.
        config: the configuration at start.
    """

    def __init__(self, store: Store, config: VPOConfig) -> None:
        self.store = store
        self.names: dict[Path, str] = config.watch.library_names
        self.log = structlog.get_logger("vpod")

    def bind(self) -> None:
        """Give the store this config's names and folders (start-up)."""
        try:
            changes = self.store.bind_libraries(self.names)
        except StoreError as exc:
            self.log.error("libraries_not_recorded", error=str(exc), hint="reload (SIGHUP) to try again")
            return
        for change in changes:
            if change.change == "moved":
                self.log.info("library_moved", library=change.name, root=change.path, previous_root=change.previous)
            elif change.change == "renamed":
                self.log.info("library_renamed", library=change.name, root=change.path, previous_name=change.previous)

    def reconfigure(self, config: VPOConfig) -> None:
        """Bind again when a reload changed the names or folders."""
        names = config.watch.library_names
        if names != self.names:
            self.names = names
            self.bind()

    def library_of(self, root: Path) -> str | None:
        """The library name of watched folder ``root`` (absolute), if it is one."""
        return self.names.get(root)

    def as_json(self) -> dict[str, str]:
        """Name -> folder, for log lines."""
        return {name: str(root) for root, name in self.names.items()}
