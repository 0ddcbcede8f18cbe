"""The web status page and its JSON API, served by the daemon's HTTP listener.

- :mod:`vpod.web.snapshot`: :func:`~vpod.web.snapshot.web_snapshot`, what ``vpod status
  --json`` prints plus the recent batches and failures (no HTTP stack: importable anywhere);
- :mod:`vpod.web.services`: what the web routes are given (the store, the snapshot, the
  daemon's control wake-up, the change feed) and the settings they obey;
- :mod:`vpod.web.api`: ``/api/...`` (JSON) and the actions ``POST /api/retry|resume``;
- :mod:`vpod.web.stream`: ``GET /api/events``, server-sent events;
- :mod:`vpod.web.security`: who may read and act (token, login cookie, CSRF, Origin) and
  the headers of every answer (CSP);
- :mod:`vpod.web.page` and ``static/``: the page itself.

Falcon is imported only by the modules that define routes, which only
:mod:`vpod.http.app` imports (``tests/integration/test_http_imports.py``).
"""
