"""One request to a Sonarr or Radarr instance: its list of series or movies.

What vpod reads, and where the *arr documents it (the v3 API; Sonarr's own docs say
"The v3 API docs apply to both v3 and v4 versions of Sonarr"):

- Radarr ``GET /api/v3/movie``: an array of ``MovieResource``; Sonarr ``GET
  /api/v3/series``: an array of ``SeriesResource`` (the OpenAPI documents
  ``src/Radarr.Api.V3/openapi.json`` and ``src/Sonarr.Api.V3/openapi.json`` of each
  project, published at https://radarr.video/docs/api/ and https://sonarr.tv/docs/api/).
- Of each item: ``path`` (string: the movie's or series' folder, as the *arr sees it),
  ``title`` (string) and ``originalLanguage``, a ``Language`` object ``{"id": int,
  "name": string}``. Sonarr v3 (the application) has no ``originalLanguage``; it came
  with Sonarr v4. Every other field is ignored.
- Authentication: the ``X-Api-Key`` header ("All requests made to the API endpoint
  require the API Key authentication using the X-Api-Key header or using the ?apikey=
  query string", Sonarr's API wiki); vpod sends the header only, so the key never
  appears in a URL (or a proxy's access log). A refused key is answered ``401``.

Only the standard library is used (:mod:`http.client`), so the whole request, connect
to last byte, has one deadline (``timeout_seconds``); a name lookup (DNS) is not
bounded by it: give the instance's address, or a name ``/etc/hosts`` resolves.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from vpod import __version__
from vpod.arr_config import ArrInstance

ENDPOINTS = {"radarr": "/api/v3/movie", "sonarr": "/api/v3/series"}
"""The one endpoint vpod reads of each kind of instance (relative to its URL)."""

MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""A longer answer is refused (a library of 20,000 movies answers about 100 MiB)."""

_CHUNK = 1024 * 1024


class ArrUnavailable(Exception):
    """The instance gave no usable answer: not reachable, too slow, an HTTP error (a
    refused API key: 401), or not the documented JSON. ``str()`` says which, and never
    holds the API key."""


@dataclass(frozen=True)
class ArrItem:
    """One series or movie as the instance reports it.

    Attributes:
        path: its folder, as the instance sees it (before ``path_mappings``).
        title: its title, for people.
        language: ``originalLanguage.name`` (``Korean``, ``Portuguese (Brazil)``), or
            ``None`` when the item has none (Sonarr v3).
    """

    path: str
    title: str
    language: str | None


def fetch_items(instance: ArrInstance) -> list[ArrItem]:
    """The series (Sonarr) or movies (Radarr) of ``instance``, within its
    ``timeout_seconds``. Items without a ``path`` are left out.

    Raises:
        ArrUnavailable: no answer in time, a connection or TLS error, an HTTP status
            other than 200, more than :data:`MAX_RESPONSE_BYTES`, or a body that is not
            a JSON array of objects.
    """
    started = time.monotonic()
    deadline = started + instance.timeout_seconds
    parts = urllib.parse.urlsplit(instance.url)
    target = parts.path.rstrip("/") + ENDPOINTS[instance.kind]
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=instance.timeout_seconds)
    headers = {"X-Api-Key": instance.api_key, "Accept": "application/json", "User-Agent": f"vpod/{__version__}"}
    try:
        connection.request("GET", target, headers=headers)
        _limit(connection, deadline)
        response = connection.getresponse()
        if response.status == 401:
            raise ArrUnavailable(f"GET {target}: 401 Unauthorized: the instance refused the API key")
        if response.status != 200:
            raise ArrUnavailable(f"GET {target}: HTTP {response.status} {response.reason}")
        body = _read(connection, response, deadline)
    except (TimeoutError, socket.timeout):
        raise ArrUnavailable(f"GET {target}: no answer within {instance.timeout_seconds:g} s (timeout_seconds)") from None
    except http.client.HTTPException as exc:
        raise ArrUnavailable(f"GET {target}: not an HTTP answer ({type(exc).__name__})") from None
    except OSError as exc:
        raise ArrUnavailable(f"GET {target}: {exc.strerror or exc}") from None
    finally:
        connection.close()
    return parse_items(body, target)


def _limit(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Make the socket's next wait end at ``deadline``.

    Raises:
        TimeoutError: the deadline has passed.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if connection.sock is not None:
        connection.sock.settimeout(left)


def _read(connection: http.client.HTTPConnection, response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The body, read in chunks, each wait bounded by what is left until ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        _limit(connection, deadline)
        chunk = response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ArrUnavailable(f"the answer is longer than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
        chunks.append(chunk)


def parse_items(body: bytes, what: str) -> list[ArrItem]:
    """The items of a ``/api/v3/movie`` or ``/api/v3/series`` answer (``what`` names it
    in errors).

    Raises:
        ArrUnavailable: not UTF-8 JSON, or not an array of objects.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        start = body[:60].decode("utf-8", "replace")
        raise ArrUnavailable(f"GET {what}: the answer is not JSON ({exc}): {start!r}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ArrUnavailable(f"GET {what}: expected a JSON array of objects, got {type(data).__name__}")
    return [item for item in (_item(raw) for raw in data) if item is not None]


def _item(raw: dict[str, Any]) -> ArrItem | None:
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        return None
    title = raw.get("title")
    language = raw.get("originalLanguage")
    name = language.get("name") if isinstance(language, dict) else None
    return ArrItem(path, title if isinstance(title, str) else path, name if isinstance(name, str) else None)
