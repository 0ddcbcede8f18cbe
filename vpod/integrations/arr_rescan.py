"""Ask Sonarr or Radarr to rescan the series or movie whose file vpod renamed.

After a container change (``Film.mp4`` → ``Film.mkv``) the *arr still knows the old
name: until it rescans the folder it reports the file missing. vpod asks for that
rescan with the v3 API's command endpoint (Sonarr's docs: "The v3 API docs apply to both
v3 and v4 versions of Sonarr"; the OpenAPI documents ``src/Sonarr.Api.V3/openapi.json``
and ``src/Radarr.Api.V3/openapi.json``, https://sonarr.tv/docs/api/ and
https://radarr.video/docs/api/):

- ``POST {url}/api/v3/command`` with the header ``X-Api-Key`` and a JSON body
  ``{"name": "RescanSeries", "seriesId": N}`` (Sonarr) or ``{"name": "RescanMovie",
  "movieId": N}`` (Radarr): the command classes ``RescanSeriesCommand`` (``int?
  SeriesId``) and ``RescanMovieCommand`` (``int? MovieId``) of
  ``src/NzbDrone.Core/MediaFiles/Commands/``. The *arr answers ``201 Created`` with the
  queued command.
- ``N``, the series' or movie's ``id``, comes from the instance's list (``GET
  /api/v3/series`` or ``/api/v3/movie``), the same cached list the original language
  reads (:meth:`vpod.original.resolver.OriginalResolver.lookup`): the item whose folder
  (``path_mappings`` applied) holds the file.
"""

from __future__ import annotations

from pathlib import Path

from vpod.arr_config import ArrInstance
from vpod.integrations.http_call import CallFailed, call
from vpod.integrations.outbox import Skipped
from vpod.original.resolver import OriginalResolver

COMMANDS = {"sonarr": ("RescanSeries", "seriesId"), "radarr": ("RescanMovie", "movieId")}
"""The command name and its id field, by kind of instance."""


def rescan_command(kind: str, item_id: int) -> dict[str, object]:
    """The JSON body of the rescan command for an instance of ``kind``."""
    name, key = COMMANDS[kind]
    return {"name": name, key: item_id}


def rescan_owner(instance: ArrInstance, resolver: OriginalResolver, path: Path) -> str:
    """Ask ``instance`` to rescan the series or movie holding ``path`` (its new name);
    returns ``"<command> <id> (<title>)"`` for the log. :func:`rescan_owners` of one path."""
    return rescan_owners(instance, resolver, (path,))


def rescan_owners(instance: ArrInstance, resolver: OriginalResolver, paths: tuple[Path, ...]) -> str:
    """Ask ``instance`` to rescan each series or movie holding one of ``paths`` (new
    names), one command per series or movie however many of its files are listed (a
    season pack of 30 renamed files: one ``RescanSeries``); returns ``"<command> <id>
    (<title>)"`` for each, ``; ``-joined, for the log.

    Raises:
        Skipped: the instance holds no series or movie with any of ``paths``, or is no
            longer configured.
        CallFailed: the list could not be read (retryable), a title has no id, or a
            command was refused.
    """
    owners: dict[int, str] = {}
    missing_id: str | None = None
    for path in paths:
        lookup = resolver.lookup(instance, path)
        if lookup is None:
            raise Skipped("the instance is no longer configured")
        if lookup.unavailable is not None:
            raise CallFailed(lookup.unavailable, retryable=True)
        if lookup.title is None:
            continue
        if lookup.title.id is None:
            missing_id = lookup.title.title
            continue
        owners.setdefault(lookup.title.id, lookup.title.title)
    if not owners:
        if missing_id is not None:
            raise CallFailed(f"{missing_id!r} has no id in the instance's list", retryable=False)
        raise Skipped("no series or movie of the instance holds the file")
    done = []
    for item_id, title in owners.items():
        body = rescan_command(instance.kind, item_id)
        call(
            "POST", instance.url, "/api/v3/command", headers={"X-Api-Key": instance.api_key}, body=body,
            timeout_seconds=instance.timeout_seconds,
        )
        done.append(f"{body['name']} {item_id} ({title})")
    return "; ".join(done)
