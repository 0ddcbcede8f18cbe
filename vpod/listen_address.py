"""``[http] listen``: the ``HOST:PORT`` text, parsed without the HTTP stack.

The config check needs only this parsing; :mod:`vpod.http_listener` (http.server,
prometheus_client) is imported by ``vpod run`` alone.
"""

from __future__ import annotations


def parse_listen_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"[IPv6]:PORT"`` → ``(host, port)``; port 0 picks a free port
    (the ``http_listening`` log event says which).

    Raises:
        ValueError: no port, a port outside 0-65535, or an empty host.
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f'expected "HOST:PORT" (e.g. "127.0.0.1:9810"), got {text!r}')
    return host, int(port)
