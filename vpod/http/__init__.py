"""The HTTP layer: a Falcon (WSGI) app served by waitress in threads of its own.

Imported only when ``[http] listen`` is set (:mod:`vpod.http_listener` imports it when
the listener starts): ``vpod process``, ``vpod --version`` and a daemon without a
listener never load Falcon or waitress. One module per concept:

- :mod:`vpod.http.limits`: the per-client request rate (429);
- :mod:`vpod.http.auth`: HTTP basic auth or an ``X-Api-Key`` header, compared in
  constant time;
- :mod:`vpod.http.app`: the routes (``GET /health``, ``GET /metrics``,
  ``POST /hooks/sonarr|radarr``) and the checks at the door;
- :mod:`vpod.http.server`: waitress on a socket vpod bound, its limits, its logs.

docs/architecture.md ("The HTTP layer") says why this stack and what it costs.
"""
