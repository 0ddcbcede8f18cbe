"""The web status page and the JSON API behind it (issue 17), served by the HTTP
listener (:mod:`vpod.http`).

- :mod:`vpod.web.snapshot`: the one snapshot dict the page and ``/api/status`` render
  (``vpod status --json`` plus recent batches and failures);
- :mod:`vpod.web.page`: ``GET /`` (server-rendered HTML, usable with JavaScript off) and
  ``GET /static/...``;
- :mod:`vpod.web.charts`: the page's charts, drawn server-side as SVG;
- ``static/``: one small script (live updates from ``api/events`` or ``api/status``) and
  one stylesheet (phone layout, dark mode).
"""
