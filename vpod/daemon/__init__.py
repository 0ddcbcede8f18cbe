"""``vpod run``: the watch-folder daemon, made of parts with one job each.

Threads, each with one loop that checks the shared stop Event:

* watchdog observers (one per root) → :class:`~vpod.watch.handler.WatchEventHandler` →
  :class:`~vpod.watch.stabilizer.Stabilizer`
* the stabilizer thread → :class:`~vpod.watch.intake.Intake` → durable queue (Store, state ``queued``)
* the scanner thread: catch-up scan at start, walks of folders created or moved in
* the feeder thread: waits for another node's signal that work was queued
  (:meth:`~vpod.db.store.Store.wait_for_work`) and wakes idle workers
* the lease keeper's two threads (:mod:`vpod.leases`): renew the leases of claims making
  progress; fence the claims not renewed in time
* N worker threads (:class:`~vpod.daemon.pool.WorkerPool`): when free, claim one job
  (:meth:`~vpod.feeder.Feeder.take`, no prefetch) →
  :class:`~vpod.daemon.files.FileHandler` → :class:`~vpod.jobs.JobRunner` (the shared per-file pipeline)
* the main thread (:class:`~vpod.daemon.lifecycle.Daemon`): signals, then each part's
  ``tick(now)`` until the earliest deadline: batch windows
  (:class:`~vpod.daemon.batches.BatchCloser`), dead threads
  (:class:`~vpod.daemon.threads.Threads`), roots lost and back
  (:class:`~vpod.watch.supervision.RootSupervisor`), rows a killed ``vpod process`` left
  (:class:`~vpod.daemon.abandoned.AbandonedRows`), the ``daemon`` row
  (:class:`~vpod.daemon.snapshot.StatusSnapshot`), ``STATUS=`` and ``WATCHDOG=1``
  (:class:`~vpod.daemon.systemd.SystemdReporter`)
* optionally the HTTP listener: ``/health``, ``/metrics`` and the Sonarr/Radarr webhooks
  (:mod:`vpod.http_listener`, :mod:`vpod.http`, :mod:`vpod.hooks`)

What happens is published on an :class:`~vpod.events.EventBus`; logging, metrics and
the status snapshot subscribe. The parts are built in one place,
:func:`~vpod.daemon.wiring.wire`.

Signal handlers only set flags and wake the main loop: SIGTERM/SIGINT stop, SIGHUP
reloads the config (each part's ``reconfigure(config)``), SIGUSR1 says "look at the
database" (``vpod resume`` / ``vpod retry`` wrote there).
"""

from vpod.daemon.lifecycle import Daemon
from vpod.daemon.run import run_daemon

__all__ = ["Daemon", "run_daemon"]
