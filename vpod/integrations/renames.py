"""After a rename, the calls to the *arr instances and media servers.

A file is renamed by vpod only by a container change (``container = "mkv"``:
``Film.mp4`` → ``Film.mkv``): its :class:`~vpod.results.FileProcessingResult` has a
``final_path`` other than its ``path``. For each such file (final, successful) one call
per ``[arr.NAME]`` with ``rescan = true`` and one per ``[media_servers.NAME]`` are queued
on the integrations :class:`~vpod.integrations.outbox.Outbox`; the worker that finished
the file returns at once. Calls queued while the same call waits are joined into it
(a season pack of 30 renamed files: one ``RescanSeries``, one Jellyfin request, one
Plex scan of the folder), its log line counting them (``coalesced``).
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from vpod.arr_config import ArrInstance
from vpod.config import VPOConfig
from vpod.events import FileFinished
from vpod.integrations.outbox import Call, Outbox, RetryRule
from vpod.integrations.settings import MediaServer
from vpod.original.resolver import OriginalResolver
from vpod.outcomes import Status
from vpod.results import FileProcessingResult, display_path

CALL_RULE = RetryRule(attempts=3, retry_seconds=2.0, max_retry_seconds=30.0)
"""*arr and media-server calls: 3 tries, 2 s then 4 s apart (each within the target's
``timeout_seconds``)."""

CALL_QUEUE = 1000
"""Rescan and refresh calls waiting at most (a few per renamed file)."""

CALL_HOLD_SECONDS = 3.0
"""The daemon holds each rescan or refresh this long before it makes it, so the renames
of a season pack, finished a fraction of a second apart, become one call per series,
movie or folder (:attr:`vpod.integrations.outbox.Outbox.hold_seconds`). The *arr and the
media servers learn of a rename that much later; they would otherwise see it only at
their next scheduled scan."""

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
        """One call per *arr instance that rescans and per media server; each joins the
        same call still waiting (:func:`rescan_call`, :func:`refresh_call`)."""
        for instance in self.config.arr.instances:
            if instance.rescan:
                self.outbox.put(rescan_call(instance, self.resolver, ((old, new),)))
        for server in self.config.media_servers.servers:
            self.outbox.put(refresh_call(server, ((old, new),)))


Renames = tuple[tuple[Path, Path], ...]
"""``(old path, new path)`` pairs."""


def _fields(renames: Renames) -> dict[str, object]:
    old, new = renames[0]
    fields: dict[str, object] = {"path": display_path(new), "old_path": display_path(old)}
    if len(renames) > 1:
        fields["files"] = len(renames)
    return fields


def _renames(call: Call) -> Renames:
    """The renames a call of :func:`rescan_call` or :func:`refresh_call` is about."""
    return typing.cast(Renames, call.items)


def rescan_call(instance: ArrInstance, resolver: OriginalResolver, renames: Renames) -> Call:
    """The rescan of ``instance`` for ``renames``. Its key is the instance and command:
    a rename queued while it waits joins it, and it sends one command per series or
    movie of all its files (:func:`~vpod.integrations.arr_rescan.rescan_owners`)."""
    from vpod.integrations.arr_rescan import COMMANDS, rescan_owners

    target, action = f'{instance.kind} "{instance.name}"', COMMANDS[instance.kind][0]
    return Call(
        target, instance.kind, action,
        functools.partial(rescan_owners, instance, resolver, tuple(new for _, new in renames)), _fields(renames),
        key=(target, action), items=renames,
        merge=lambda later: rescan_call(instance, resolver, renames + _renames(later)),
    )


def refresh_call(server: MediaServer, renames: Renames) -> Call:
    """The refresh of ``server`` for ``renames``. Jellyfin, Emby: keyed by the server,
    a rename queued while it waits joins its one request; Plex: keyed by the server and
    the folder (as the server sees it), a rename in that folder joins its one partial
    scan of the folder (:func:`~vpod.integrations.media_servers.refresh_renames`)."""
    from vpod.integrations.media_servers import refresh_renames

    key: tuple[str, ...]
    if server.kind == "plex":
        action, key = "library refresh", (server.describe(), server.server_path(renames[0][1].parent))
    else:
        action, key = "media updated", (server.describe(),)
    return Call(
        server.describe(), server.kind, action, functools.partial(refresh_renames, server, renames), _fields(renames),
        key=("refresh", *key), items=renames,
        merge=lambda later: refresh_call(server, renames + _renames(later)),
    )


def process_rename_calls(config: VPOConfig, resolver: OriginalResolver) -> RenameCalls:
    """The rename calls of one ``vpod process`` run, their thread started; call
    :meth:`RenameCalls.close` when the batch is done."""
    outbox = Outbox("integrations", capacity=CALL_QUEUE, rule=CALL_RULE)
    outbox.start()
    return RenameCalls(outbox, config, resolver)
