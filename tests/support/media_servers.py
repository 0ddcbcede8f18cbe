"""Stand-in Jellyfin, Emby and Plex servers and a JSON webhook receiver, in a thread each.

Each records every request (:class:`support.arr.Recorded`) and answers as the product's
published API says:

- Jellyfin: ``POST /Library/Media/Updated`` with a ``MediaUpdateInfoDto`` body
  (``{"Updates": [{"Path": str, "UpdateType": "Created" | "Modified" | "Deleted"}]}``),
  answered ``204 No Content`` (``LibraryController.PostUpdatedMedia``,
  https://api.jellyfin.org, ``/Library/Media/Updated``); authenticated by ``Authorization:
  MediaBrowser Token="<key>"`` (Jellyfin's authorization scheme; a missing or wrong
  token: ``401``).
- Emby: the same endpoint and body (``postLibraryMediaUpdated``,
  https://dev.emby.media/reference/RestAPI/LibraryService/postLibraryMediaUpdated.html),
  authenticated by ``X-Emby-Token`` (https://dev.emby.media/doc/restapi/API-Key-Authentication.html),
  answered ``204``.
- Plex: ``GET /library/sections`` answered, for ``Accept: application/json``, with
  ``{"MediaContainer": {"size": n, "Directory": [{"key": "1", "type": "movie", "title":
  ..., "Location": [{"id": 1, "path": ...}]}]}}``, and ``GET
  /library/sections/{key}/refresh?path=...`` answered ``200`` with an empty body
  (https://developer.plex.tv/pms/; https://support.plex.tv/articles/201638786);
  authenticated by ``X-Plex-Token`` (``401`` otherwise).
- A JSON webhook receiver for Apprise's ``json://`` URLs: Apprise POSTs ``{"version":
  "1.0", "title": ..., "message": ..., "type": ...}`` (apprise/plugins/custom_json.py);
  it answers ``200``, or ``503`` to the first :attr:`JsonReceiver.refuse` requests (a
  target that is down for a while).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from support.arr import Recorded, Served


class StandIn(Served):
    """A recording HTTP server on 127.0.0.1; subclasses answer in :meth:`answer`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def answer(self, request: Recorded) -> tuple[int, bytes, str]:
        """``(status, body, content type)`` for ``request``."""
        raise NotImplementedError

    def start(self) -> "StandIn":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                with stand_in._lock:
                    stand_in.requests.append(request)
                    status, body, content_type = stand_in.answer(request)
                self.send_response(status)
                if body or status != 204:
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.serve(Handler, type(self).__name__)
        return self

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MediaBrowserStandIn(StandIn):
    """Jellyfin (``kind="jellyfin"``) or Emby (``kind="emby"``)."""

    def __init__(self, kind: str, token: str) -> None:
        super().__init__()
        self.kind = kind
        self.token = token

    def authorized(self, request: Recorded) -> bool:
        if self.kind == "jellyfin":
            return request.headers.get("Authorization") == f'MediaBrowser Token="{self.token}"'
        return request.headers.get("X-Emby-Token") == self.token

    def answer(self, request: Recorded) -> tuple[int, bytes, str]:
        if not self.authorized(request):
            return 401, b"Unauthorized", "text/plain"
        if (request.method, request.path) != ("POST", "/Library/Media/Updated"):
            return 404, b"Not Found", "text/plain"
        try:
            updates = json.loads(request.body)["Updates"]
            assert all(isinstance(u["Path"], str) for u in updates)
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, b"Bad Request", "text/plain"
        return 204, b"", ""


class PlexStandIn(StandIn):
    """Plex with ``sections``: ``(key, type, title, [location paths])``."""

    def __init__(self, token: str, sections: list[tuple[str, str, str, list[str]]]) -> None:
        super().__init__()
        self.token = token
        self.sections = sections

    def answer(self, request: Recorded) -> tuple[int, bytes, str]:
        if request.headers.get("X-Plex-Token") != self.token:
            return 401, b"<html><head><title>Unauthorized</title></head></html>", "text/html"
        parts = urllib.parse.urlsplit(request.path)
        if request.method == "GET" and parts.path == "/library/sections":
            directories = [
                {"key": key, "type": kind, "title": title, "agent": "tv.plex.agents.movie",
                 "Location": [{"id": n, "path": p} for n, p in enumerate(paths, 1)]}
                for key, kind, title, paths in self.sections
            ]
            body = {"MediaContainer": {"size": len(directories), "allowSync": False, "Directory": directories}}
            return 200, json.dumps(body).encode(), "application/json"
        keys = {f"/library/sections/{key}/refresh" for key, *_ in self.sections}
        if request.method == "GET" and parts.path in keys:
            return 200, b"", "text/html"
        return 404, b"Not Found", "text/plain"


class JsonReceiver(StandIn):
    """A JSON webhook; ``refuse``: answer ``503`` to that many requests first (then
    ``refused`` counts them); ``messages``: the JSON bodies answered ``200``."""

    def __init__(self, refuse: int = 0) -> None:
        super().__init__()
        self.refuse = refuse
        self.refused = 0
        self.messages: list[dict[str, Any]] = []

    def answer(self, request: Recorded) -> tuple[int, bytes, str]:
        if self.refused < self.refuse:
            self.refused += 1
            return 503, b"Service Unavailable", "text/plain"
        self.messages.append(json.loads(request.body))
        return 200, b"{}", "application/json"
