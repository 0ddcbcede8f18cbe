"""After a rename, the calls to the *arr instances and media servers.

A file is renamed by vpod only by a container change (``container = "mkv"``:
``Film.mp4`` → ``Film.mkv``): its :class:`~vpod.results.FileProcessingResult` has a
``final_path`` other than its ``path``. For each such file (final, successful) one call
per ``[arr.NAME]`` with ``rescan = true`` and one per ``[media_servers.NAME]`` are queued
on the integrations :class:`~vpod.integrations.outbox.Outbox`; the worker that finished
the file returns at once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from vpod.config import VPOConfig
from vpod.events import FileFinished
from vpod.integrations.outbox import Call, Outbox, RetryRule
from vpod.original.resolver import OriginalResolver
from vpod.outcomes import Status
from vpod.results import FileProcessingResult, display_path

CALL_RULE = RetryRule(attempts=3, retry_seconds=2.0, max_retry_seconds=30.0)
"""*arr and media-server calls: 3 tries, 2 s then 4 s apart (each within the target's
``timeout_seconds``)."""

CALL_QUEUE = 1000
"""Rescan and refresh calls waiting at most (a few per renamed file)."""

CLOSE_SECONDS = 5.0
"""At the end (the daemon's shutdown, the end of ``vpod process``), queued rescans and
refreshes are made for at most this long, then dropped (logged)."""


def renamed(result: FileProcessingResult) -> tuple[Path, Path] | None:
    """``(old path, new path)`` when ``result`` is a final success that renamed the file."""
    if result.status is not Status.DONE or result.retrying or result.final_path is None:
        return None
    if result.final_path == result.path:
        return None
    return result.path, result.final_path


class RenameCalls:
    """Event subscriber: queues the rescans and refreshes of renamed files.

    Args:
        outbox: where the calls wait (its thread makes them).
        config: the config in force (:meth:`reconfigure` replaces it).
        resolver: finds the series or movie of a path (the daemon's
            :class:`~vpod.original.resolver.OriginalResolver`, so its cached lists).
    """

    def __init__(self, outbox: Outbox, config: VPOConfig, resolver: OriginalResolver) -> None:
        self.outbox = outbox
        self.config = config
        self.resolver = resolver

    def reconfigure(self, config: VPOConfig) -> None:
        """Use the reloaded ``[arr]`` and ``[media_servers]`` from the next file on."""
        self.config = config

    def close(self) -> None:
        """Make the queued calls for at most :data:`CLOSE_SECONDS`; drop the rest."""
        self.outbox.close(CLOSE_SECONDS)

    def on_file_finished(self, event: FileFinished) -> None:
        """Queue the calls for a renamed file (no network wait here: a worker's thread)."""
        paths = renamed(event.result)
        if paths is not None:
            self.queue(*paths)

    def queue(self, old: Path, new: Path) -> None:
        """One call per *arr instance that rescans and per media server."""
        from vpod.integrations.arr_rescan import COMMANDS, rescan_owner
        from vpod.integrations.media_servers import refresh

        fields: dict[str, object] = {"path": display_path(new), "old_path": display_path(old)}
        for instance in self.config.arr.instances:
            if instance.rescan:
                self.outbox.put(Call(
                    f'{instance.kind} "{instance.name}"', instance.kind, COMMANDS[instance.kind][0],
                    functools.partial(rescan_owner, instance, self.resolver, new), fields,
                ))
        for server in self.config.media_servers.servers:
            action = "library refresh" if server.kind == "plex" else "media updated"
            self.outbox.put(Call(server.describe(), server.kind, action, functools.partial(refresh, server, old, new), fields))


def process_rename_calls(config: VPOConfig, resolver: OriginalResolver) -> RenameCalls:
    """The rename calls of one ``vpod process`` run, their thread started; call
    :meth:`RenameCalls.close` when the batch is done."""
    outbox = Outbox("integrations", capacity=CALL_QUEUE, rule=CALL_RULE)
    outbox.start()
    return RenameCalls(outbox, config, resolver)
