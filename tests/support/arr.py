"""A stand-in Sonarr or Radarr: the v3 API endpoints vpod reads, in a thread.

It follows the *arr's published API documents (the OpenAPI documents
``src/Radarr.Api.V3/openapi.json`` and ``src/Sonarr.Api.V3/openapi.json``, served at
https://radarr.video/docs/api/ and https://sonarr.tv/docs/api/):

- Radarr ``GET /api/v3/movie``: a JSON array of ``MovieResource`` objects; Sonarr
  ``GET /api/v3/series``: a JSON array of ``SeriesResource`` objects. Each carries
  ``id``, ``title``, ``path`` (the folder as the *arr sees it) and ``originalLanguage``,
  a ``Language`` ``{"id": int, "name": str}`` (ids of Radarr's
  ``NzbDrone.Core.Languages.Language``: 0 Unknown, 1 English, 8 Japanese, 21 Korean,
  30 Portuguese (Brazil), -1 Any, -2 Original), plus a few more fields of the documented
  shape vpod must ignore (``year``, ``monitored``, ``images``...).
- ``POST /api/v3/command``: a ``CommandResource`` body such as ``{"name":
  "RescanSeries", "seriesId": 1}`` or ``{"name": "RescanMovie", "movieId": 1}`` (the
  command classes ``RescanSeriesCommand`` / ``RescanMovieCommand`` of
  ``src/NzbDrone.Core/MediaFiles/Commands/``), answered ``201 Created`` with the queued
  command; every POST is recorded in ``commands``.
- Authentication by the ``X-Api-Key`` header; a wrong or missing key gets ``401``
  as the *arr answers it. Other paths: ``404``.

Knobs for failures: ``delay`` (seconds before answering: a slow instance),
``bad_json`` (a 200 whose body is not JSON, as a reverse proxy's login page),
:meth:`stop` (down: connection refused), and :meth:`start` again on the same port.
``requests`` counts the list requests served.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LANGUAGE_IDS = {
    "Unknown": 0, "English": 1, "French": 2, "Spanish": 3, "German": 4, "Japanese": 8, "Chinese": 10,
    "Portuguese": 18, "Flemish": 19, "Korean": 21, "Portuguese (Brazil)": 30, "Spanish (Latino)": 37,
    "Any": -1, "Original": -2,
}
ENDPOINTS = {"radarr": "/api/v3/movie", "sonarr": "/api/v3/series"}


@dataclass(frozen=True)
class Recorded:
    """One request a stand-in received: method, path (with its query), headers, body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def item(kind: str, number: int, title: str, path: str, language: str | None) -> dict[str, Any]:
    """One movie (Radarr) or series (Sonarr) as the v3 API documents it; ``language``
    ``None`` leaves ``originalLanguage`` out (Sonarr v3, the application)."""
    data: dict[str, Any] = {
        "id": number,
        "title": title,
        "sortTitle": title.lower(),
        "year": 2019,
        "path": path,
        "monitored": True,
        "qualityProfileId": 1,
        "images": [{"coverType": "poster", "url": f"/MediaCover/{number}/poster.jpg"}],
        "tags": [],
    }
    if language is not None:
        data["originalLanguage"] = {"id": LANGUAGE_IDS.get(language, 0), "name": language}
    if kind == "radarr":
        data.update({"originalTitle": title, "hasFile": True, "tmdbId": 1000 + number, "folderName": path})
    else:
        data.update({"tvdbId": 2000 + number, "seasonFolder": True, "seriesType": "standard", "seasons": []})
    return data


class Served:
    """A test HTTP server on 127.0.0.1 in a daemon thread: :meth:`serve` starts it (on
    :attr:`port`, 0: any free port, kept for a restart), :meth:`stop` stops it."""

    port = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: connections are refused until started again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


class ArrStandIn(Served):
    """A stand-in instance of ``kind`` (``radarr`` or ``sonarr``) on 127.0.0.1.

    ``items``: ``(title, path, language name or None)``; change :attr:`items` at any
    time (the next request sees it).
    """

    def __init__(
        self, kind: str, items: list[tuple[str, str, str | None]], *, api_key: str = "k" * 32, port: int = 0
    ) -> None:
        self.kind = kind
        self.items = items
        self.api_key = api_key
        self.delay = 0.0
        self.bad_json = False
        self.requests = 0
        self.commands: list[Recorded] = []
        self.port = port

    def body(self) -> bytes:
        return json.dumps([item(self.kind, n, *entry) for n, entry in enumerate(self.items, 1)]).encode()

    def start(self) -> "ArrStandIn":
        """Serve (again, on the same port once it had one)."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.headers.get("X-Api-Key") != stand_in.api_key:
                    self._answer(401, b"Unauthorized", "text/plain")
                    return
                if self.path.split("?")[0] != ENDPOINTS[stand_in.kind]:
                    self._answer(404, b"Not Found", "text/plain")
                    return
                stand_in.requests += 1
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                if stand_in.bad_json:
                    self._answer(200, b"<html><body>Login</body></html>", "text/html")
                    return
                self._answer(200, stand_in.body(), "application/json; charset=utf-8")

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                """``POST /api/v3/command``: the command endpoint (``CommandResource``:
                a body ``{"name": ..., <its fields>}``, answered ``201 Created`` with the
                queued command). Recorded in :attr:`ArrStandIn.commands`."""
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stand_in.commands.append(Recorded("POST", self.path, dict(self.headers.items()), body))
                if self.headers.get("X-Api-Key") != stand_in.api_key:
                    self._answer(401, b"Unauthorized", "text/plain")
                    return
                if self.path != "/api/v3/command":
                    self._answer(404, b"Not Found", "text/plain")
                    return
                try:
                    command = json.loads(body)
                except ValueError:
                    self._answer(400, b"Bad Request", "text/plain")
                    return
                answer = {**command, "id": len(stand_in.commands), "status": "queued", "queued": "2026-01-01T00:00:00Z"}
                self._answer(201, json.dumps(answer).encode(), "application/json; charset=utf-8")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.serve(Handler, "arr-stand-in")
        return self

    def __enter__(self) -> "ArrStandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
