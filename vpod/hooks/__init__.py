"""Sonarr and Radarr webhooks (issue 16 item 2): ``POST /hooks/sonarr`` and
``POST /hooks/radarr``.

No HTTP here (the listener, :mod:`vpod.http`, hands a request's body over); one module
per concept:

- :mod:`vpod.hooks.config`: ``[hooks]``: the credentials and ``[[hooks.path_map]]``;
- :mod:`vpod.hooks.payload`: the *arr "Webhook" connection's JSON, as Sonarr and Radarr
  write it (their ``WebhookBase`` and payload classes), read into a :class:`HookEvent`;
- :mod:`vpod.hooks.paths`: the *arr's path read as a path here, and whether a library
  holds it;
- :mod:`vpod.hooks.hints`: what a webhook said about a file (the *arr instance, the
  series' or movie's id, its original language), kept for the file's job;
- :mod:`vpod.hooks.receiver`: one request's answer: queue the imported file (through the
  stabilizer: the open-writer check still applies), acknowledge, or refuse.

README "Sonarr/Radarr webhooks" is the user's side of the same.
"""
