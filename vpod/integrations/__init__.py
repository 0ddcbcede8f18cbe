"""What vpod tells other programs, off the worker threads.

- :mod:`vpod.integrations.renames`: after a container change renamed a file
  (``Film.mp4`` → ``Film.mkv``), the Sonarr/Radarr instance that owns it rescans its
  series or movie (:mod:`~vpod.integrations.arr_rescan`) and the configured media servers
  refresh that path (:mod:`~vpod.integrations.media_servers`).
- :mod:`vpod.integrations.notifications`: Apprise notifications of failures, pauses,
  lost and restored watch folders and batch summaries.

Every call goes through an :class:`~vpod.integrations.outbox.Outbox`: a bounded queue
served by its own thread, with a deadline per call, bounded retries with backoff and a
log line per outcome (``integration_notified``, ``integration_failed``). Nothing here is
imported unless the config asks for it (``[arr.NAME]``, ``[media_servers.NAME]``,
``[notify] urls``).
"""
