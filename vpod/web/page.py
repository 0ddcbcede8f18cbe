"""``GET /``: the status page, rendered server-side from the snapshot dict; and
``GET /static/NAME``: its one script and one stylesheet.

The page is complete without JavaScript (a refresh shows the same state); with it,
``static/page.js`` redraws the same elements (found by ``id``) from ``GET api/events``
(server-sent events) or, failing that, ``GET api/status`` every 2 s. Every URL in the
page is relative (``static/page.css``, ``api/status``, ``api/files/ID/events``), so the
page works under any sub-path a reverse proxy puts it at; ``<base href>`` is not used
(the Content-Security-Policy says ``base-uri 'none'``). Nothing inline: no ``<script>``
body, no ``style`` attribute, no ``on...`` handler (the CSP allows only the files in
``static/``). Every value from a file name, a tool's message or the database is escaped
with :func:`html.escape`; a name that is not valid UTF-8 arrives as ``\\xNN`` escapes
(:func:`vpod.results.display_path`) and any lone surrogate is sent as U+FFFD.

The sections, in the order of the page (the script keeps the same ids): ``state`` and
the summary (uptime, version, queue, workers), ``paused`` (why, and Resume), ``workers``
(each file in progress: worker, file, elapsed, attempt, progress: :func:`progress_text`), ``counts`` (files by
state, per library), ``failures`` (newest first: file, library, reason, the tool's
message, when, a link to its log events, Retry), ``batches`` (the last BatchResult
windows), the charts (:mod:`vpod.web.charts`), ``folders`` (each watch folder and
whether it is watched now) and ``nodes`` (shown with several nodes).
"""

from __future__ import annotations

import html
import time
from importlib import resources
from typing import Any, Callable, Iterable, Sequence

import falcon

from vpod.status import _duration  # vpod status's wording of a duration, shared on purpose
from vpod.web import charts

Snapshot = dict[str, Any]

STATIC = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}
"""The files ``GET /static/NAME`` serves (from the package's ``static/`` folder); any
other name is 404."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""SPEC-17's policy; set on the page here too, so it holds whatever middleware runs."""

STATES = ("queued", "processing", "done", "failed", "skipped")
HISTORY_HOURS = 24

SAID = {
    "logged_in": "Logged in: actions are on.",
    "logged_out": "Logged out: every login session of this daemon has ended.",
    "wrong_token": "Refused: wrong token.",
    "requeued": "Done: queued again.",
    "none_failed": "Nothing to retry: no failed file.",
    "not_failed": "Refused: that file is not failed (queued, in progress or done).",
    "unknown": "Refused: vpod has no record of that file.",
    "resumed": "Done: resumed.",
    "not_paused": "Nothing to resume: the daemon is not paused.",
    "resume_unconfirmed": "Resume asked, but the daemon did not confirm it in time.",
    "unauthorized": "Refused: log in with the token first.",
    "csrf": "Refused: the page was out of date (CSRF token); try again.",
    "cross_origin": "Refused: the request came from another site.",
    "actions_off": "Refused: no [http] token is configured, so actions are off.",
    "rate_limited": "Refused: too many requests; wait a moment.",
}
"""What the page says at its top after a form POST without JavaScript (``?said=CODE``,
:func:`vpod.web.security.back_to_page`); a code not listed here shows nothing."""


def add_page_routes(
    app: falcon.App[falcon.Request, falcon.Response], snapshot: Callable[[], Snapshot],
    history: Callable[[], list[dict[str, Any]]], *, base: str = "",
) -> None:
    """Add ``GET {base}/`` and ``GET {base}/static/{name}`` to ``app``.

    Args:
        snapshot: the page's dict (:func:`vpod.web.snapshot.web_snapshot` of the daemon).
        history: the chart rows of the last :data:`HISTORY_HOURS` hours, oldest first
            (``GET /api/history``'s ``hours``: ``hour``, ``done``, ``failed``, ``skipped``,
            ``unchanged``, ``mean_seconds``).
        base: ``[http] base_path`` (``""`` or ``"/path"``).
    """
    app.add_route(f"{base}/", _Page(snapshot, history))
    app.add_route(f"{base}/static/{{name}}", _Static())


class _Page:
    access = "read"  # vpod.web.security: no login on a loopback listener, else the token

    def __init__(self, snapshot: Callable[[], Snapshot], history: Callable[[], list[dict[str, Any]]]) -> None:
        self.snapshot = snapshot
        self.history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        text = render_page(self.snapshot(), self.history(), csrf=_csrf_token(req),
                           said=SAID.get(req.get_param("said") or "", ""))
        resp.content_type = "text/html; charset=utf-8"
        resp.set_header("Content-Security-Policy", CSP)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "same-origin")
        resp.set_header("Cache-Control", "no-store")
        resp.data = text.encode("utf-8", "replace")

    on_head = on_get  # Falcon sends the headers only


class _Static:
    access = "public"

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        content_type = STATIC.get(name)
        if content_type is None:
            raise falcon.HTTPNotFound()
        resp.content_type = content_type
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Cache-Control", "no-cache")
        resp.data = resources.files("vpod.web").joinpath("static").joinpath(name).read_bytes()


def _csrf_token(req: falcon.Request) -> str:
    """The CSRF token for the page's ``<meta name="csrf-token">`` and forms, from api's
    :func:`vpod.web.security.csrf_token` (``""`` until that module exists)."""
    try:
        from vpod.web.security import csrf_token  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return ""
    return str(csrf_token(req))


def render_page(snap: Snapshot, history: Sequence[dict[str, Any]], *, csrf: str = "", said: str = "") -> str:
    """The whole page (HTML text) for the snapshot ``snap`` and the chart rows
    ``history``; ``csrf`` goes into ``<meta name="csrf-token">`` and each form; ``said``:
    the answer to the last form POST (:data:`SAID`), shown at the top."""
    token = _e(csrf)
    state = str(snap.get("state") or "stopped")
    failures = failures_of(snap)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="csrf-token" content="{token}">',
        f"<title>vpod: {_e(state)}</title>",
        '<link rel="icon" href="data:,">',  # no /favicon.ico request (outside a sub-path)
        '<link rel="stylesheet" href="static/page.css">',
        '<script src="static/page.js" defer></script>',
        "</head><body>",
        '<header><h1>vpod</h1> <span id="state" class="state state-', _e(state), '">', _e(state), "</span>",
        ' <span id="live" class="live">live updates off: refresh the page</span>', _login(token), "</header>",
        f'<p id="action-result" class="action-result" role="status"{"" if said else " hidden"}>{_e(said)}</p>',
        "<main>",
        '<section id="summary"><dl class="summary">',
        f'<div><dt>Uptime</dt><dd id="uptime" data-seconds="{_e(snap.get("uptime_seconds"))}">{_e(duration(snap.get("uptime_seconds")))}</dd></div>',
        f'<div><dt>Version</dt><dd id="version">{_e(snap.get("version") or "?")}</dd></div>',
        f'<div><dt>Queued</dt><dd id="queue-depth">{_e(snap.get("queue_depth", 0))}</dd></div>',
        f'<div><dt>Workers</dt><dd id="worker-count">{_e(_workers_text(snap))}</dd></div>',
        "</dl></section>",
        _paused(snap, token),
        '<section><h2>In progress</h2><div class="scroll" id="workers">', _workers(snap), "</div></section>",
        '<section><h2>Files by library</h2><div class="scroll" id="counts">', _counts(snap), "</div></section>",
        '<section><h2>Failures</h2>',
        f'<form method="post" action="api/retry" class="act" id="retry-all"{"" if failures else " hidden"}>',
        f'<input type="hidden" name="all_failed" value="true"><input type="hidden" name="csrf_token" value="{token}">',
        '<button type="submit">Retry all failed</button></form>',
        '<div id="failures">', _failures(snap, token), "</div></section>",
        '<section><h2>Batches</h2><div class="scroll" id="batches">', _batches(snap), "</div></section>",
        '<section><h2>Last 24 hours</h2><div class="charts">',
        "<figure>", charts.files_per_hour(history), "<figcaption>Files finished per hour, by outcome</figcaption></figure>",
        "<figure>", charts.seconds_per_file(history), "<figcaption>Mean time per file (seconds)</figcaption></figure>",
        "</div></section>",
        '<section><h2>Watch folders</h2><div class="scroll" id="folders">', _folders(snap), "</div></section>",
        '<section id="nodes-section"', "" if len(snap.get("nodes") or []) > 1 else " hidden",
        '><h2>Nodes</h2><div class="scroll" id="nodes">', _nodes(snap), "</div></section>",
        "</main>",
        f'<footer>as of <span id="updated">{_e(clock(time.time()))}</span></footer>',
        "</body></html>",
    ]
    return "".join(out)


def _e(value: object) -> str:
    """``value`` as escaped HTML text (``None`` as empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """A table of already-escaped cells, or ``<p class="empty">`` when there is no row."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _login(token: str) -> str:
    """Logged in (a CSRF token): a Log out button; else a token field posting to
    ``api/login`` (answered 303 back to the page, now with the login cookie). Actions
    need one or the other, or an ``Authorization: Bearer`` header."""
    if token:
        return (
            '<form method="post" action="api/logout" class="login">'
            f'<input type="hidden" name="csrf_token" value="{token}"><button type="submit">Log out</button></form>'
        )
    return (
        '<form method="post" action="api/login" class="login"><label>Token to act '
        '<input type="password" name="token" autocomplete="current-password" required></label> '
        '<button type="submit">Log in</button></form>'
    )


def _workers_text(snap: Snapshot) -> str:
    busy = len(snap.get("in_progress") or [])
    workers = snap.get("workers")
    return f"{busy} busy of {workers if workers is not None else '?'}"


def _paused(snap: Snapshot, token: str) -> str:
    paused = snap.get("paused") or {}
    hidden = "" if snap.get("state") == "paused" else " hidden"
    return (
        f'<section id="paused" class="paused"{hidden}><h2>Paused</h2>'
        f'<p>after a failure of <span class="path" id="paused-path">{_e(paused.get("path"))}</span>:</p>'
        f'<pre id="paused-error">{_e(paused.get("error"))}</pre>'
        '<form method="post" action="api/resume" class="act">'
        f'<input type="hidden" name="csrf_token" value="{token}"><button type="submit">Resume</button></form></section>'
    )


def _workers(snap: Snapshot) -> str:
    rows = []
    for f in snap.get("in_progress") or []:
        rows.append([
            _e(f.get("worker") or "?"), f'<span class="path">{_e(f.get("path"))}</span>', _e(f.get("library") or ""),
            f'<span class="elapsed" data-seconds="{_e(f.get("elapsed_seconds"))}">{_e(duration(f.get("elapsed_seconds")))}</span>',
            _e(f.get("attempt")),
            _e(progress_text(f)),
        ])
    return _table(["Worker", "File", "Library", "Elapsed", "Attempt", "Progress"], rows, "nothing in progress")


def progress_text(f: Snapshot) -> str:
    """The Progress cell of one ``in_progress`` entry of the snapshot: ``43 %`` for a remux
    or header edit that reported its percent; for an encode (``speed`` or ``fps`` not
    null) ``43 %, 0.82x, 24 fps, 54m 2s left`` (``speed`` in media seconds per second,
    ``eta_seconds`` written as :func:`duration`), each part only when the snapshot has it;
    ``""`` when nothing was reported. ``static/page.js`` (``progressText``) writes the same."""
    percent, speed, fps, left = (_number(f.get(k)) for k in ("progress_percent", "speed", "fps", "eta_seconds"))
    parts = [] if percent is None else [f"{percent:.0f} %"]
    if speed is None and fps is None:
        return "".join(parts)
    if speed is not None:
        parts.append(f"{speed:.2f}x")
    if fps is not None:
        parts.append(f"{fps:.{1 if fps < 10 else 0}f} fps")
    if left is not None:
        parts.append(f"{duration(left)} left")
    return ", ".join(parts)


def _number(value: object) -> float | None:
    """``value`` if it is a number (not a bool, not NaN), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _counts(snap: Snapshot) -> str:
    by_library: dict[str, dict[str, int]] = dict(snap.get("library_counts") or {})
    totals = snap.get("counts") or {}
    rows = [[_e(name)] + [_e(counts.get(s, 0)) for s in STATES] for name, counts in sorted(by_library.items())]
    rows.append(["<strong>all</strong>"] + [_e(totals.get(s, 0)) for s in STATES])
    return _table(["Library", *STATES], rows, "")


def failures_of(snap: Snapshot) -> list[dict[str, Any]]:
    """The snapshot's failures: ``recent_failures``, else ``last_failures`` (``vpod
    status --json``'s: ``failed_at`` for ``at``, no id), without files gone since (as
    ``vpod status`` leaves them out: nothing left to retry)."""
    if snap.get("recent_failures") is not None:
        return [f for f in snap["recent_failures"] if not f.get("gone")]
    return [{**f, "at": f.get("failed_at")} for f in snap.get("last_failures") or [] if not f.get("gone")]


def _failures(snap: Snapshot, token: str) -> str:
    items = []
    for f in failures_of(snap):
        link = ""
        if f.get("id") is not None:
            link = f' <a class="events" href="api/files/{_e(f["id"])}/events">log events</a>'
        library = f' <span class="library">{_e(f["library"])}</span>' if f.get("library") else ""
        items.append(
            '<li class="failure">'
            f'<div><span class="path">{_e(f.get("path"))}</span>{library}</div>'
            f'<div><span class="reason">{_e(f.get("reason") or "error")}</span> '
            f'<span class="when">{_e(clock(f.get("at")))}</span>{link}</div>'
            f'<pre class="error">{_e(f.get("error"))}</pre>'
            '<form method="post" action="api/retry" class="act">'
            + (f'<input type="hidden" name="id" value="{_e(f["id"])}">' if f.get("id") is not None
               else f'<input type="hidden" name="path" value="{_e(f.get("path"))}">')
            + f'<input type="hidden" name="csrf_token" value="{token}"><button type="submit">Retry</button></form>'
            "</li>"
        )
    if not items:
        return '<p class="empty">no failures</p>'
    return '<ul class="failures">' + "".join(items) + "</ul>"


def _batches(snap: Snapshot) -> str:
    rows = []
    batches = snap.get("recent_batches")
    nodes = len(snap.get("nodes") or []) > 1  # a Node column only with several nodes
    for b in batches if batches is not None else snap.get("last_batches") or []:
        unchanged = b.get("unchanged_count")
        rows.append([
            f'<span class="when">{_e(clock(b.get("started_at")))}</span>', *([_e(b.get("node"))] if nodes else []),
            _e(b.get("total_files")), _e(b.get("success_count")),
            _e("" if unchanged is None else unchanged), _e(b.get("fail_count")), _e(b.get("skipped_count")),
            _e(duration(b.get("total_duration_seconds"))), _e("stopped early" if b.get("stopped_early") else ""),
        ])
    headers = ["Started", *(["Node"] if nodes else []), "Files", "OK", "Unchanged", "Failed", "Skipped", "Took", ""]
    return _table(headers, rows, "no batch yet")


def folder_rows(snap: Snapshot) -> list[tuple[str, str, str]]:
    """``(folder, library, "watched" or why not)`` for each configured watch folder."""
    names = {lib.get("path"): lib.get("name") for lib in snap.get("libraries") or []}
    why = {u.get("path"): u.get("reason") or "not watched" for u in snap.get("unwatched") or []}
    out = []
    for path in snap.get("watch_paths") or []:
        reason = why.get(path)
        out.append((str(path), str(names.get(path) or ""), "watched" if reason is None else f"not watched: {reason}"))
    return out


def _folders(snap: Snapshot) -> str:
    rows = [[f'<span class="path">{_e(p)}</span>', _e(n), _e(w)] for p, n, w in folder_rows(snap)]
    return _table(["Folder", "Library", "Watched"], rows, "no watch folder")


def _nodes(snap: Snapshot) -> str:
    rows = []
    for n in snap.get("nodes") or []:
        rows.append([
            _e(n.get("node")), _e("alive" if n.get("alive") else "gone"), _e(n.get("host")), _e(n.get("version") or "?"),
            _e(n.get("workers") if n.get("workers") is not None else "?"), _e(len(n.get("doing") or [])),
            _e(duration(n.get("heartbeat_age_seconds"))),
        ])
    return _table(["Node", "State", "Host", "Version", "Workers", "In progress", "Heartbeat"], rows, "")


def clock(epoch: object) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS UTC`` (``""`` for ``None``); the script
    writes the same."""
    if not isinstance(epoch, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def duration(seconds: object) -> str:
    """Seconds as ``4.2 s`` under a minute, else ``1d 2h 3m 4s`` (``?`` for ``None``), as
    ``vpod status`` writes them; the script writes the same."""
    return _duration(seconds if isinstance(seconds, (int, float)) else None)
