"""Who may call the webhooks: HTTP basic auth or an ``X-Api-Key`` header.

Basic auth is RFC 7617 (``Authorization: Basic base64(user ":" password)``, UTF-8); the
*arr's Webhook connection sends it from its Username and Password fields. The API key
is the connection's ``X-Api-Key: KEY`` header (Sonarr v4 and Radarr v5 have a Headers
field). Both are compared with :func:`hmac.compare_digest` (constant time in the
length of the secret), the user name and the password each in full whatever the other
gave. Nothing here logs or returns the credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from vpod.hooks.config import HooksConfig


def authorized(hooks: HooksConfig, authorization: str | None, api_key: str | None) -> bool:
    """True when ``authorization`` (the ``Authorization`` header) carries the configured
    user name and password, or ``api_key`` (the ``X-Api-Key`` header) is the configured
    key. False when neither is configured (:attr:`HooksConfig.enabled`)."""
    ok = False
    if hooks.api_key and api_key is not None:
        ok = _same(api_key, hooks.api_key)
    if hooks.username and authorization is not None:
        given = _basic(authorization)
        if given is not None:
            user_ok = _same(given[0], hooks.username)
            password_ok = _same(given[1], hooks.password)
            ok = ok or (user_ok and password_ok)
    return ok


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _basic(header: str) -> tuple[str, str] | None:
    """``(user, password)`` of a ``Basic`` ``Authorization`` header, or ``None``."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None
