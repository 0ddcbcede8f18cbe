"""Ask Jellyfin, Emby or Plex to look at the folder of a renamed file again.

Each server refreshes just that path, not the whole library:

- **Jellyfin**: ``POST {url}/Library/Media/Updated`` with the JSON body ``{"Updates":
  [{"Path": ..., "UpdateType": ...}]}`` (``MediaUpdateInfoDto`` /
  ``MediaUpdateInfoPathDto``, Jellyfin's ``LibraryController.PostUpdatedMedia``,
  https://api.jellyfin.org; ``UpdateType`` is one of ``Created``, ``Modified``,
  ``Deleted``; Jellyfin answers ``204``). Authentication: ``Authorization: MediaBrowser
  Token="<api key>"``, the scheme Jellyfin reads in every version (its 12.0 refuses the
  legacy ``X-Emby-Token`` header by default).
- **Emby**: the same endpoint and body (``postLibraryMediaUpdated``,
  https://dev.emby.media/reference/RestAPI/LibraryService/postLibraryMediaUpdated.html),
  with the header ``X-Emby-Token: <api key>``
  (https://dev.emby.media/doc/restapi/API-Key-Authentication.html).
- **Plex**: ``GET {url}/library/sections`` (``Accept: application/json``: a
  ``MediaContainer`` whose ``Directory`` list has each section's ``key`` and its
  ``Location`` paths), then ``GET {url}/library/sections/{key}/refresh?path=<folder>``,
  a partial scan of the file's folder in the section whose location holds it. The token
  goes in the ``X-Plex-Token`` header, never the URL (https://developer.plex.tv/pms/,
  "Headers"; https://support.plex.tv/articles/201638786 "Plex Media Server URL
  Commands").

A rename is reported to Jellyfin and Emby as two updates: the old path ``Deleted`` and
the new one ``Created``. Paths are sent as the server sees them (``path_mappings``,
:meth:`vpod.integrations.settings.MediaServer.server_path`); with ``path_mappings`` set,
a file under none of its local folders is not sent (``integration_skipped``, debug): the
server would be told of a path it does not have. Renames waiting together are sent
together (:func:`refresh_renames`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpod.integrations.http_call import CallFailed, call
from vpod.integrations.outbox import Skipped
from vpod.integrations.settings import MediaServer
from vpod.results import display_path as display

UPDATED_PATH = "/Library/Media/Updated"


def auth_headers(server: MediaServer) -> dict[str, str]:
    """The header that carries ``server``'s token."""
    if server.kind == "jellyfin":
        return {"Authorization": f'MediaBrowser Token="{server.token}"'}
    if server.kind == "emby":
        return {"X-Emby-Token": server.token}
    return {"X-Plex-Token": server.token, "X-Plex-Product": "vpod", "X-Plex-Client-Identifier": "vpod"}


def media_updated_body(server: MediaServer, old: Path, new: Path) -> dict[str, Any]:
    """The ``Library/Media/Updated`` body for a rename of ``old`` to ``new``."""
    return {"Updates": [
        {"Path": server.server_path(old), "UpdateType": "Deleted"},
        {"Path": server.server_path(new), "UpdateType": "Created"},
    ]}


def refresh(server: MediaServer, old: Path, new: Path) -> str:
    """Tell ``server`` that ``old`` became ``new``; returns a detail for the log.
    :func:`refresh_renames` of one rename."""
    return refresh_renames(server, ((old, new),))


def refresh_renames(server: MediaServer, renames: tuple[tuple[Path, Path], ...]) -> str:
    """Tell ``server`` that each ``(old, new)`` of ``renames`` happened: Jellyfin and
    Emby in one ``Library/Media/Updated`` request listing them all; Plex one partial scan
    of the folder of the first (the caller groups Plex renames by folder,
    :mod:`vpod.integrations.renames`). Renames outside ``path_mappings`` (when it is
    set) are left out: the server does not see those files
    (:meth:`~vpod.integrations.settings.MediaServer.sees`). Returns a detail for the log.

    Raises:
        CallFailed: the server refused or did not answer.
        Skipped: no rename is inside ``path_mappings``, or Plex has no section whose
            location holds the folder.
    """
    seen = tuple((old, new) for old, new in renames if server.sees(new))
    if not seen:
        raise Skipped(f"{display(renames[0][1])} is outside the server's path_mappings: not sent")
    headers = auth_headers(server)
    if server.kind in ("jellyfin", "emby"):
        updates = [u for old, new in seen for u in media_updated_body(server, old, new)["Updates"]]
        call("POST", server.url, UPDATED_PATH, headers=headers, body={"Updates": updates},
             timeout_seconds=server.timeout_seconds)
        last = updates[-1]["Path"]
        return last if len(seen) == 1 else f"{len(seen)} files, the last {last}"
    folder = server.server_path(seen[0][1].parent)
    answer = call("GET", server.url, "/library/sections", headers=headers, timeout_seconds=server.timeout_seconds)
    key = plex_section(answer.json("GET /library/sections"), folder)
    if key is None:
        raise Skipped(f"no Plex library section holds {folder}")
    call(
        "GET", server.url, f"/library/sections/{key}/refresh", headers=headers, query={"path": folder},
        timeout_seconds=server.timeout_seconds,
    )
    return f"section {key}: {folder}"


def plex_section(data: Any, folder: str) -> str | None:
    """The ``key`` of the section of ``/library/sections``'s JSON answer whose
    ``Location`` path is the longest prefix of ``folder`` (whole components), or ``None``.

    Raises:
        CallFailed: not the documented shape (``{"MediaContainer": {"Directory": [...]}}``).
    """
    container = data.get("MediaContainer") if isinstance(data, dict) else None
    if not isinstance(container, dict):
        raise CallFailed("GET /library/sections: no MediaContainer in the answer", retryable=False)
    best: tuple[int, str] | None = None
    for section in container.get("Directory") or []:
        if not isinstance(section, dict):
            continue
        for location in section.get("Location") or []:
            path = location.get("path") if isinstance(location, dict) else None
            if not isinstance(path, str) or not path:
                continue
            prefix = path.rstrip("/\\") or path
            holds = folder == prefix or folder.startswith(prefix + "/") or folder.startswith(prefix + "\\")
            if holds and (best is None or len(prefix) > best[0]):
                best = (len(prefix), str(section.get("key")))
    return None if best is None else best[1]
