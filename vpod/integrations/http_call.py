"""One HTTP request to another program (an *arr, a media server), within one deadline.

Only the standard library (:mod:`http.client`) is used. As for the *arr list
(:mod:`vpod.original.client`), the whole request, connect to last byte, has one
deadline: every read from the socket first sets the socket's timeout to the time left
(:class:`vpod.original.client.DeadlineResponse`), so a server that drips bytes cannot
stretch it. Headers holding a secret (an API key, a token) are sent, never logged: the
errors raised name the method and the path only, never the query or headers.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from vpod import __version__
from vpod.original.client import DeadlineResponse

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""A longer answer is refused (Plex's section list of a large server is a few KiB)."""


class CallFailed(Exception):
    """The request got no usable answer. ``str()`` says why, without secrets.

    Attributes:
        retryable: ``True`` for what may pass (no connection, a timeout, HTTP 5xx, 429);
            ``False`` for what another try cannot change (401/403, another 4xx, an
            answer vpod cannot read).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: its ``status`` and ``body`` (bytes)."""

    status: int
    body: bytes

    def json(self, what: str) -> Any:
        """The body as JSON; ``what`` names the request in the error.

        Raises:
            CallFailed: not UTF-8 JSON (not retryable).
        """
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            start = self.body[:60].decode("utf-8", "replace")
            raise CallFailed(f"{what}: the answer is not JSON: {start!r}", retryable=False) from None


def call(
    method: str,
    base_url: str,
    path: str,
    *,
    headers: dict[str, str],
    timeout_seconds: float,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> Answer:
    """``method`` ``base_url`` + ``path`` (+ ``query``), with ``body`` sent as JSON when
    given; returns a 2xx :class:`Answer`.

    Args:
        base_url: ``http[s]://host:port[/url-base]``; ``path`` starts with ``/``.
        headers: sent as given (plus ``User-Agent``, ``Accept`` unless given, and
            ``Content-Type: application/json`` with a body).
        timeout_seconds: the whole request's deadline (seconds).

    Raises:
        CallFailed: no connection, no answer in time, a status outside 2xx, or more than
            :data:`MAX_ANSWER_BYTES`.
    """
    deadline = time.monotonic() + timeout_seconds
    parts = urllib.parse.urlsplit(base_url)
    target = parts.path.rstrip("/") + path
    what = f"{method} {target}"
    if query:
        target += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    sent = {"User-Agent": f"vpod/{__version__}", "Accept": "application/json", **headers}
    if data is not None:
        sent["Content-Type"] = "application/json"
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout_seconds)
    connection.response_class = functools.partial(DeadlineResponse, deadline=deadline)  # type: ignore[assignment]
    try:
        connection.request(method, target, body=data, headers=sent)
        response = connection.getresponse()
        answer = response.read(MAX_ANSWER_BYTES + 1)
    except (TimeoutError, socket.timeout):
        raise CallFailed(f"{what}: no answer within {timeout_seconds:g} s", retryable=True) from None
    except http.client.HTTPException as exc:
        raise CallFailed(f"{what}: not an HTTP answer ({type(exc).__name__})", retryable=True) from None
    except OSError as exc:
        raise CallFailed(f"{what}: {exc.strerror or exc}", retryable=True) from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        retryable = response.status >= 500 or response.status in (408, 429)
        refused = " (the token or API key was refused)" if response.status in (401, 403) else ""
        raise CallFailed(f"{what}: HTTP {response.status} {response.reason}{refused}", retryable=retryable)
    if len(answer) > MAX_ANSWER_BYTES:
        raise CallFailed(f"{what}: the answer is longer than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB", retryable=False)
    return Answer(response.status, answer)
