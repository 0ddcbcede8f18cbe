"""vpod's temp files: created exclusively beside the source, never outliving a failure.

A remux writes ``.vpod-tmp-<random><suffix>`` in the source's own folder (so the final
``os.replace`` is an atomic rename on the same filesystem), created with ``O_EXCL``
and ``O_NOFOLLOW`` so it can never clobber or follow anything. Its path is recorded in
the Store *before* it is created; :func:`sweep_temps` at startup removes whatever a
crash (kill -9, power loss) left behind.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from vpod.watch.filters import TEMP_PREFIX


class TempRegistry(Protocol):
    """Where temp file paths are recorded (the Store)."""

    def register_temp(self, path: Path) -> None:
        """Record ``path`` before the file is created."""

    def forget_temp(self, path: Path) -> None:
        """``path`` is gone (renamed into place or removed)."""

    def pending_temps(self) -> list[Path]:
        """Recorded paths not forgotten: what a crash left."""


@contextmanager
def temp_beside(source: Path, registry: TempRegistry, suffix: str = ".mkv") -> Iterator[Path]:
    """Create an empty temp file next to ``source``; remove it on exit unless it was
    renamed away (moved into place).

    The file is created with mode 0600; the caller copies the source's mode before
    renaming it into place.

    Raises:
        OSError: the folder is not writable, or the disk is full.
    """
    path = source.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}{suffix}"
    registry.register_temp(path)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        yield path
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        registry.forget_temp(path)


def sweep_temps(registry: TempRegistry) -> int:
    """Remove temp files a crash left behind; returns how many were removed.

    Only paths that were registered and still carry vpod's temp prefix are removed.
    """
    removed = 0
    for path in registry.pending_temps():
        if path.name.startswith(TEMP_PREFIX):
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
            except OSError:
                continue  # keep it registered; the next start tries again
        registry.forget_temp(path)
    return removed
