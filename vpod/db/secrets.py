"""Keeping a database password out of what vpod shows (``/health``, ``vpod doctor``)."""

from __future__ import annotations

import re
from typing import Callable
from urllib.parse import urlsplit

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


PASSWORD_SOURCES = ("url", "password_file", "libpq")
"""Where a PostgreSQL password comes from, first wins (:func:`choose_password`)."""


def url_has_password(url: str) -> bool:
    """Whether the connection URL ``url`` holds a password: in its userinfo
    (``postgresql://user:secret@host/db``, RFC 3986) or a ``password=`` query parameter
    (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)."""
    parts = urlsplit(url)
    try:
        if parts.password is not None:
            return True
    except ValueError:
        return False
    return any(p.lower().startswith("password=") for p in parts.query.split("&"))


def choose_password(url: str, password_file: str, read: Callable[[str], str | None]) -> tuple[str | None, str]:
    """The password to hand the driver and where it came from (one of
    :data:`PASSWORD_SOURCES`; never the password itself, for logs).

    The rule: a password in the URL wins (the URL is ``$VPOD_DATABASE_URL`` when that is
    set, else ``[database] url``), so a URL given for one run overrides the config;
    else the first line of ``password_file`` (``read`` reads it); else ``None`` and
    libpq looks in ``$PGPASSWORD`` and ``~/.pgpass``. A driver keyword would override
    the URL's password, so none is passed when the URL has one.

    Raises:
        StoreError: (from ``read``) the password file cannot be read.
    """
    source = password_source(url, password_file)
    return (read(password_file) if source == "password_file" else None), source


def password_source(url: str, password_file: str) -> str:
    """Which of :data:`PASSWORD_SOURCES` :func:`choose_password` takes the password
    from (nothing is read): for logs (``daemon_started`` ``database_password``)."""
    if url_has_password(url):
        return "url"
    return "password_file" if password_file else "libpq"
