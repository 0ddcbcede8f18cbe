"""``GET /api/status`` STAND-IN: the snapshot as JSON, so the page's script has
something to poll before the api engineer's :mod:`vpod.web.api` lands (issue 17). The
lead drops this module and its call in :func:`vpod.http.app.make_app` at merge."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

import falcon

if TYPE_CHECKING:
    from vpod.daemon.wiring import Parts


def add_status_route(
    app: falcon.App[falcon.Request, falcon.Response], parts: Parts, snapshot: Callable[[Parts], dict[str, Any]],
) -> None:
    """``GET /api/status``: ``snapshot(parts)`` as JSON."""
    app.add_route("/api/status", _Status(lambda: snapshot(parts)))


class _Status:
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/json"
        resp.set_header("Cache-Control", "no-store")
        resp.data = json.dumps(self.snapshot(), default=str).encode("utf-8", "replace")
