"""The *arr "Webhook" connection's JSON, read into a :class:`HookEvent`.

Shapes as Sonarr (v3, v4) and Radarr (v3 to v5) write them, from their source
(``src/NzbDrone.Core/Notifications/Webhook/``): ``WebhookBase`` builds each payload,
``WebhookPayload`` (``eventType``, ``instanceName``, ``applicationUrl``),
``WebhookImportPayload`` (``isUpgrade``, and ``series`` + ``episodeFile`` or ``movie`` +
``movieFile``), ``WebhookSeries`` (``id``, ``title``, ``path``, v4: ``originalLanguage``),
``WebhookEpisodeFile`` (``path`` = the series' path + ``relativePath``),
``WebhookMovie`` (``id``, ``title``, ``folderPath``, v5: ``originalLanguage``) and
``WebhookMovieFile`` (``path``, ``relativePath``). Property names are camelCase; the
event type is the enum's name (``"Download"``); a language is ``{"id": 8, "name":
"Japanese"}``. tests/fixtures/hooks/ holds recorded shapes.

Import and upgrade are both ``Download`` (an upgrade has ``isUpgrade: true``). Sonarr
v4's "On Import Complete" trigger sends ``WebhookImportCompletePayload``: ``series``
and a list ``episodeFiles`` (every file of a season pack at once), with the event type
``Download`` (``ImportComplete`` is read the same way). The ``Test`` button sends
``Test`` with a made-up series or movie (path ``C:\\testpath``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

HOOK_KINDS = ("sonarr", "radarr")
"""The two applications, and the last part of their URL: ``/hooks/sonarr``."""

EVENT_TYPES = {
    # Sonarr: NzbDrone.Core.Notifications.Webhook.WebhookEventType (v4)
    "sonarr": frozenset({
        "Test", "Grab", "Download", "Rename", "SeriesAdd", "SeriesDelete", "EpisodeFileDelete", "Health",
        "ApplicationUpdate", "HealthRestored", "ManualInteractionRequired", "ImportComplete",
    }),
    # Radarr: the same enum of Radarr (v5)
    "radarr": frozenset({
        "Test", "Grab", "Download", "Rename", "MovieAdded", "MovieDelete", "MovieFileDelete", "Health",
        "ApplicationUpdate", "HealthRestored", "ManualInteractionRequired",
    }),
}
"""Every event type each application sends: ``Download`` is acted on, ``Test``
answered, the rest acknowledged and ignored; any other is refused (400)."""

DOWNLOAD = "Download"
TEST = "Test"
IMPORT_COMPLETE = "ImportComplete"


class PayloadError(ValueError):
    """Not a webhook payload vpod can read; the message says what is wrong (no secrets,
    no payload text beyond the offending field's name)."""


@dataclass(frozen=True)
class HookEvent:
    """One webhook call, as vpod reads it.

    Attributes:
        kind: ``sonarr`` or ``radarr``.
        event_type: ``Download``, ``Test``, ...
        instance_name: the payload's ``instanceName`` (Settings > General > Instance
            Name; absent before Sonarr v4 / Radarr v4), or ``""``.
        application_url: the payload's ``applicationUrl``, or ``""``.
        item_id: the series' or movie's id in the *arr (``series.id``, ``movie.id``), or
            ``None``.
        title: the series' or movie's title, or ``""``.
        language: the ``originalLanguage.name`` (``"Japanese"``), or ``None`` (absent:
            Sonarr v3, Radarr before v5).
        file_path: ``Download``: the imported file as the *arr sees it
            (``episodeFile.path`` / ``movieFile.path``, else the folder + the file's
            ``relativePath``); the first of ``file_paths``; else ``None``.
        file_id: the episode or movie file's id in the *arr, or ``None``.
        file_paths: every imported file, in the payload's order: one for an import, each
            of ``episodeFiles`` for Sonarr's "On Import Complete"; ``()`` otherwise.
        is_upgrade: ``isUpgrade``: the file replaced an older one.
    """

    kind: str
    event_type: str
    instance_name: str = ""
    application_url: str = ""
    item_id: int | None = None
    title: str = ""
    language: str | None = None
    file_path: str | None = None
    file_id: int | None = None
    is_upgrade: bool = False
    file_paths: tuple[str, ...] = ()


def parse_payload(kind: str, data: Any) -> HookEvent:
    """Read the decoded JSON ``data`` of a ``kind`` webhook.

    Raises:
        PayloadError: not an object, no ``eventType`` string, an event type the
            application does not send, or a ``Download`` without the imported file's path.
    """
    if not isinstance(data, dict):
        raise PayloadError("expected a JSON object")
    event_type = data.get("eventType")
    if event_type is None or event_type == "":
        raise PayloadError("no eventType")
    if not isinstance(event_type, str):
        raise PayloadError(f"eventType is not a string (a JSON {_json_kind(event_type)}): expected e.g. \"Download\"")
    if event_type not in EVENT_TYPES[kind]:
        raise PayloadError(f"unknown {kind} eventType {event_type[:40]!r}")
    item = _object(data, "series" if kind == "sonarr" else "movie")
    event = HookEvent(
        kind=kind,
        event_type=event_type,
        instance_name=_text(data, "instanceName"),
        application_url=_text(data, "applicationUrl"),
        item_id=_int(item, "id"),
        title=_text(item, "title"),
        language=_language(item),
        is_upgrade=data.get("isUpgrade") is True,
    )
    if event_type == IMPORT_COMPLETE or (event_type == DOWNLOAD and "episodeFiles" in data and "episodeFile" not in data):
        return _import_complete(event, data, item) if kind == "sonarr" else event
    if event_type != DOWNLOAD:
        return event
    file = _object(data, "episodeFile" if kind == "sonarr" else "movieFile")
    folder = _text(item, "path" if kind == "sonarr" else "folderPath")
    path = _text(file, "path") or _joined(folder, _text(file, "relativePath"))
    if not path:
        what = "episodeFile" if kind == "sonarr" else "movieFile"
        raise PayloadError(f"a Download without {what}.path (nor the folder and {what}.relativePath)")
    return replace(event, file_path=path, file_id=_int(file, "id"), file_paths=(path,))


MAX_FILES = 1000
"""At most this many ``episodeFiles`` in one call (a season pack has tens)."""


def _import_complete(event: HookEvent, data: dict[str, Any], series: dict[str, Any]) -> HookEvent:
    """Sonarr's "On Import Complete" (``WebhookImportCompletePayload``): every file of
    ``episodeFiles``, read as a ``Download`` of each.

    Raises:
        PayloadError: ``episodeFiles`` is not a list of objects with a path, or holds
            more than :data:`MAX_FILES`.
    """
    files = data.get("episodeFiles")
    if not isinstance(files, list) or not files:
        raise PayloadError("an import-complete call without a list episodeFiles")
    if len(files) > MAX_FILES:
        raise PayloadError(f"episodeFiles holds {len(files)} files, more than {MAX_FILES}")
    folder = _text(series, "path")
    paths = []
    for file in files:
        if not isinstance(file, dict):
            raise PayloadError("episodeFiles holds something else than objects")
        path = _text(file, "path") or _joined(folder, _text(file, "relativePath"))
        if not path:
            raise PayloadError("a file of episodeFiles without path (nor series.path and relativePath)")
        paths.append(path)
    return replace(event, event_type=DOWNLOAD, file_path=paths[0], file_paths=tuple(paths))


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{key}: expected an object")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{key}: expected a string")
    return value


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _language(item: dict[str, Any]) -> str | None:
    language = item.get("originalLanguage")
    if isinstance(language, dict) and isinstance(language.get("name"), str):
        return str(language["name"])
    return None


def _joined(folder: str, relative: str) -> str:
    """The *arr's own ``Path.Combine(folder, relativePath)``, for a payload without the
    file's ``path``; ``""`` when either is missing."""
    if not folder or not relative:
        return ""
    separator = "\\" if "\\" in folder and "/" not in folder else "/"
    return folder.rstrip("/\\") + separator + relative.lstrip("/\\")


def _json_kind(value: object) -> str:
    """The JSON type name of a parsed value (``number``, ``object``, ...)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else type(value).__name__
