"""Keeping a database password out of what vpod shows (``/health``, ``vpod doctor``)."""

from __future__ import annotations

import re

# postgresql://user:secret@host/... (RFC 3986 userinfo) and libpq's key=value form
# password=secret (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING).
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def hide_password(text: str) -> str:
    """``text`` with any password of a connection URL or ``password=`` keyword replaced
    by ``***``: a store's messages never name it (PG's contract), this is the second
    guard before text leaves the process."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}:***@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['key']}***", text)
