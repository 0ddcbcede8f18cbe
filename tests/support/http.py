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
