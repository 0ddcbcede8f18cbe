"""One request to a Sonarr or Radarr instance: its list of series or movies.

What vpod reads, and where the *arr documents it (the v3 API; Sonarr's own docs say
"The v3 API docs apply to both v3 and v4 versions of Sonarr"):

- Radarr ``GET /api/v3/movie``: an array of ``MovieResource``; Sonarr ``GET
  /api/v3/series``: an array of ``SeriesResource`` (the OpenAPI documents
  ``src/Radarr.Api.V3/openapi.json`` and ``src/Sonarr.Api.V3/openapi.json`` of each
  project, published at https://radarr.video/docs/api/ and https://sonarr.tv/docs/api/).
- Of each item: ``id`` (integer), ``path`` (string: the movie's or series' folder, as
  the *arr sees it), ``title`` (string) and ``originalLanguage``, a ``Language`` object ``{"id": int,
  "name": string}``. Sonarr v3 (the application) has no ``originalLanguage``; it came
  with Sonarr v4. Every other field is ignored.
- Authentication: the ``X-Api-Key`` header ("All requests made to the API endpoint
  require the API Key authentication using the X-Api-Key header or using the ?apikey=
  query string", Sonarr's API wiki); vpod sends the header only, so the key never
  appears in a URL (or a proxy's access log). A refused key is answered ``401``.

Only the standard library is used (:mod:`http.client`). The whole request, connect to
last byte, has one deadline (``timeout_seconds``): every read from the socket (status
line, headers, body) first sets the socket's timeout to the time left and fails once
none is left, so a server that sends a byte now and then cannot stretch it. A name
lookup (DNS) is not bounded by it: give the instance's address, or a name
``/etc/hosts`` resolves.
"""

from __future__ import annotations

import functools
import http.client
import io
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import structlog

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
        id: the item's ``id`` (an integer), what a command names it by
            (``RescanSeries``'s ``seriesId``); ``None`` when missing or not an integer.
    """

    path: str
    title: str
    language: str | None
    id: int | None = None


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
    connection.response_class = functools.partial(DeadlineResponse, deadline=deadline)  # type: ignore[assignment]
    headers = {"X-Api-Key": instance.api_key, "Accept": "application/json", "User-Agent": f"vpod/{__version__}"}
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        if response.status == 401:
            raise ArrUnavailable(f"GET {target}: 401 Unauthorized: the instance refused the API key")
        if response.status != 200:
            raise ArrUnavailable(f"GET {target}: HTTP {response.status} {response.reason}")
        body = _read(response)
    except (TimeoutError, socket.timeout):
        raise ArrUnavailable(f"GET {target}: no answer within {instance.timeout_seconds:g} s (timeout_seconds)") from None
    except http.client.HTTPException as exc:
        raise ArrUnavailable(f"GET {target}: not an HTTP answer ({type(exc).__name__})") from None
    except OSError as exc:
        raise ArrUnavailable(f"GET {target}: {exc.strerror or exc}") from None
    finally:
        connection.close()
    return parse_items(body, target)


class DeadlineReader(io.RawIOBase):
    """A socket's bytes, each wait for them bounded by what is left until ``deadline``
    (:func:`time.monotonic` seconds)."""

    def __init__(self, sock: socket.socket, deadline: float, holder: Any) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = deadline
        self.holder = holder  # the socket file http.client made: it keeps the socket open

    def close(self) -> None:
        self.holder.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """One ``recv``: raises :class:`TimeoutError` once the deadline has passed, or
        when no byte comes before it."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class DeadlineResponse(http.client.HTTPResponse):
    """An :class:`http.client.HTTPResponse` that reads through a :class:`DeadlineReader`
    (``http.client`` sets the timeout once per ``recv`` only, so a dripping server would
    hold it for as long as it drips)."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(DeadlineReader(sock, deadline, self.fp))


def _read(response: http.client.HTTPResponse) -> bytes:
    """The body, at most :data:`MAX_RESPONSE_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while True:
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

    An item that is not an object (``null``, a number) is left out, and so is one
    without a ``path``; ``arr_items_skipped`` (warning) counts the former and shows the
    first.

    Raises:
        ArrUnavailable: not UTF-8 JSON, or not an array.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        start = body[:60].decode("utf-8", "replace")
        raise ArrUnavailable(f"GET {what}: the answer is not JSON ({exc}): {start!r}") from None
    if not isinstance(data, list):
        raise ArrUnavailable(f"GET {what}: expected a JSON array of objects, got {type(data).__name__}")
    bad = [(n, raw) for n, raw in enumerate(data) if not isinstance(raw, dict)]
    if bad:
        first = json.dumps(bad[0][1])
        structlog.get_logger("vpod").warning(
            "arr_items_skipped", request=f"GET {what}", skipped=len(bad), items=len(data),
            first=f"item {bad[0][0]}: {first[:60]}",
        )
    return [item for item in (_item(raw) for raw in data if isinstance(raw, dict)) if item is not None]


def _item(raw: dict[str, Any]) -> ArrItem | None:
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        return None
    title = raw.get("title")
    language = raw.get("originalLanguage")
    name = language.get("name") if isinstance(language, dict) else None
    number = raw.get("id")
    return ArrItem(
        path, title if isinstance(title, str) else path, name if isinstance(name, str) else None,
        number if isinstance(number, int) and not isinstance(number, bool) else None,
    )
