"""Tiny HTTP client for the daemon's listener (urllib, no extra dependency)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def get(port: int, path: str, timeout: float = 10) -> tuple[int, str, str]:
    """``(status, content type, body)`` of ``GET http://127.0.0.1:PORT/PATH``; 4xx/5xx included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def health(port: int) -> tuple[int, dict[str, Any]]:
    code, _, body = get(port, "/health")
    return code, json.loads(body)


def post(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 30,
    method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of a request to ``http://127.0.0.1:PORT/PATH``, sent on
    a raw socket: the whole body is offered even when the server answers early (a body
    over the limit), and the answer is read whatever happened to the sending."""
    import socket

    host = [] if any(name.lower() == "host" for name in headers or {}) else [f"Host: 127.0.0.1:{port}"]
    head = [f"{method} {path} HTTP/1.1", *host, f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            pass  # the server refused early and closed: its answer is still readable
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    header_text, _, content = raw.partition(b"\r\n\r\n")
    lines = header_text.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1."):
        raise AssertionError(f"no HTTP answer: {raw[:200]!r}")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, content
