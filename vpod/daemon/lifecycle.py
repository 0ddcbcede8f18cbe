"""The daemon's lifecycle: :meth:`Daemon.startup`, :meth:`Daemon.main_loop`,
:meth:`Daemon.shutdown`, and the signals that drive them.

Everything else is a part with one job, built by :func:`vpod.daemon.wiring.wire`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Callable

import structlog

from vpod import __version__
from vpod.config import VPOConfig
from vpod.cpu import encoding_policies
from vpod.daemon.wiring import Parts, wire
from vpod.db.secrets import password_source
from vpod.db.factory import open_store
from vpod.db.store import Store, StoreError
from vpod.errors import ConfigError
from vpod.http_listener import HttpListener, ListenError, switch_listener
from vpod.instance import instance_lock
from vpod.logs import configure_logging
from vpod.notify import SystemdNotifier
from vpod.reload import ReloadPlan, plan_reload
from vpod.web.services import WebServices
from vpod.web.snapshot import web_snapshot
from vpod.tempfiles import log_sweep, sweep_temps


def _open_store(config: VPOConfig) -> tuple[Store, Callable[[], None]]:
    store = open_store(config.database, node=config.node.node_name)
    return store, store.close


class Daemon:
    """The daemon's lifecycle (the shape of uvicorn's ``Server``: startup, main loop, shutdown).

    Args:
        config: the configuration (``config.processing.workers`` already holds any CLI
            override); replaced as a whole on reload.
        dry_run: plan and log, never write media files.
        notifier: talks to systemd (default: off).
        load_config: re-reads the configuration on SIGHUP, CLI overrides applied; raises
            :class:`ConfigError` for a bad file (default: reload is not possible).
        clock: monotonic seconds for the parts' deadlines (tests pass a fake one and
            call :meth:`loop` with it).
        open_store: opens the store for a config and returns it with its closer
            (default: the SQLite database at ``[database] path``).
    """

    parts: Parts  # built by startup()
    store: Store

    def __init__(
        self,
        config: VPOConfig,
        *,
        dry_run: bool = False,
        notifier: SystemdNotifier | None = None,
        load_config: Callable[[], VPOConfig] | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_store: Callable[[VPOConfig], tuple[Store, Callable[[], None]]] = _open_store,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.notifier = notifier or SystemdNotifier(None)
        self._load_config = load_config
        self.clock = clock
        self._open_store = open_store
        self.log = structlog.get_logger("vpod")
        self.stop = threading.Event()
        self.crashed = threading.Event()  # set when a thread died of an unexpected exception
        self._wake = threading.Event()
        self._reload_requested = threading.Event()
        self._control_requested = threading.Event()
        self.http: HttpListener | None = None
        self.started_at = time.time()

    def wake(self) -> None:
        """Wake the main loop (a file finished, a signal arrived)."""
        self._wake.set()

    # -- startup ---------------------------------------------------------------------

    def startup(self) -> None:
        """Open the database, recover from a crash, start every thread and the observers,
        then tell systemd ``READY=1``.

        Raises:
            AlreadyRunning: another daemon uses the same database (SQLite), or runs as
                the same node of it (a database server): :mod:`vpod.instance`.
            StoreError: the database cannot be opened or migrated.
            ListenError: ``[http] listen`` cannot be bound.
        """
        cfg = self.config
        node = cfg.node.node_name
        self.store, self._close_store = self._open_store(cfg)
        try:
            # Before the owner is registered: registering releases this node's previous
            # incarnations' claims, which must never be another live daemon's.
            self.instance = instance_lock(
                cfg.database.path, location=self.store.location, database_id=self.store.database_id(), node=node
            )
            self.instance.acquire()
        except BaseException:
            self._close_store()
            raise
        # Rows this daemon claims name it (heartbeat: parts.heartbeat); its earlier incarnation on
        # this node releases its rows now.
        owner = self.store.register_owner("daemon", node=node, version=__version__, workers=cfg.processing.workers)
        self.parts = p = wire(
            cfg, self.store, notifier=self.notifier, stop=self.stop, crashed=self.crashed, wake=self.wake,
            started_at=self.started_at, node=node, dry_run=self.dry_run, clock=self.clock,
        )
        p.libraries.bind()  # before the roots are watched: the store knows each root's library
        p.mounts.check()  # which library folders are proven here (their markers), before any is walked
        # Rows of a dead daemon go back to the queue; a vpod process's are left to
        # parts.abandoned (released when its owner record says it ended).
        requeued = owner.released + self.store.requeue_interrupted()
        p.rejudge.run()  # hard-linked files a changed policy judges differently
        # Temp files a live `vpod process` on this database still writes are left alone.
        swept = sweep_temps(self.store)
        log_sweep(swept)
        if cfg.http.listen:
            self.http = HttpListener(
                cfg.http.listen, p.snapshot.health, p.metrics.registry, hooks=p.hooks, limits=cfg.http, web=self.web()
            )
            self.http.start()
        p.integrations.start()  # its own threads: rescans, refreshes, notifications
        p.threads.spawn("vpod-stabilizer", p.stabilizer.run, essential=True)
        p.threads.spawn("vpod-scanner", p.scanner.run, essential=True)
        p.threads.spawn("vpod-feeder", p.feeder.run, essential=True)
        p.threads.spawn("vpod-lease-renew", p.leases.renew_loop, essential=True)
        p.threads.spawn("vpod-lease-watch", p.leases.watch_loop, essential=True)
        workers = p.pool.resize(cfg)
        p.lane.check_width(workers, encoding_policies(cfg))  # header edits must not wait behind encodes
        self.store.heartbeat(workers=workers)  # the node's worker count, known to `vpod status` from the start
        p.roots.watch_all(catch_up=cfg.watch.scan_on_start)
        p.snapshot.record(
            "running",
            pid=os.getpid(),
            started_at=self.started_at,
            version=__version__,
            config=str(cfg.source) if cfg.source else None,
            database=self.store.location,  # a PostgreSQL URL without its password
            # where the password came from (url, password_file, libpq), never the password
            database_password=password_source(cfg.database.url, cfg.database.password_file) if cfg.database.url else None,
            workers=workers,
            watch_paths=_paths_json(p.roots.roots),
            unwatched_paths=None,  # the main loop records them
            unwatched=None,
            paused_at=None,
            paused_path=None,
            paused_error=None,
            resume_requested_at=None,
            stopped_at=None,
        )
        p.snapshot.tick(self.clock())  # clears what a crashed run left of the claims
        self.log.info(
            "daemon_started",
            version=__version__,
            pid=os.getpid(),
            node=cfg.node.node_name,
            watch_paths=[str(r) for r in p.roots.roots],
            libraries=p.libraries.as_json(),
            workers=workers,
            database=self.store.location,  # a PostgreSQL URL without its password
            # where the password came from (url, password_file, libpq), never the password
            database_password=password_source(cfg.database.url, cfg.database.password_file) if cfg.database.url else None,
            settle_seconds=cfg.watch.settle_seconds,
            requeued_after_crash=requeued,
            temp_files_removed=len(swept.removed),
            dry_run=self.dry_run,
            http=cfg.http.listen or None,
            systemd_notify=self.notifier.enabled,
            watchdog_seconds=self.notifier.watchdog_seconds,
        )
        # Observers run and the catch-up scans are queued: systemd may consider us started.
        p.reporter.ready(self.clock())

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1 reads control requests; handlers only set flags."""

        def on_signal(flag: threading.Event) -> Callable[[int, FrameType | None], None]:
            def handler(_signum: int, _frame: FrameType | None) -> None:
                flag.set()
                self.wake()

            return handler

        signal.signal(signal.SIGTERM, on_signal(self.stop))
        signal.signal(signal.SIGINT, on_signal(self.stop))
        signal.signal(signal.SIGHUP, on_signal(self._reload_requested))
        signal.signal(signal.SIGUSR1, on_signal(self._control_requested))

    def request_reload(self) -> None:
        """What SIGHUP does: reload at the next :meth:`loop`."""
        self._reload_requested.set()
        self.wake()

    def request_control(self) -> None:
        """What SIGUSR1 does: read control requests at the next :meth:`loop`."""
        self._control_requested.set()
        self.wake()

    def web(self) -> WebServices:
        """The daemon as the web page and API see it (:mod:`vpod.web`): its snapshot, its
        store, :meth:`request_control` (what SIGUSR1 does) and the change feed."""
        p = self.parts
        return WebServices(
            snapshot=lambda: web_snapshot(p), store=self.store, control=self.request_control, changes=p.changes,
            stop=self.stop,
        )

    # -- the main loop -----------------------------------------------------------------

    def loop(self, now: float | None = None) -> float:
        """One pass of the main loop at ``now`` (default: the clock): a requested reload
        or control request, then every part's :meth:`tick`. Returns the earliest next
        deadline (``inf``: nothing scheduled)."""
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self.reload()
        if self._control_requested.is_set():
            self._control_requested.clear()
            self.parts.pausing.apply_control()
        now = self.clock() if now is None else now
        return min(part.tick(now) for part in self.parts.ticking)

    def main_loop(self) -> None:
        """Run :meth:`loop` until the stop flag is set, sleeping until the next deadline
        or a wake-up (a signal, a finished file, a lost root)."""
        while not self.stop.is_set():
            self._wake.clear()
            deadline = self.loop()
            timeout = deadline - self.clock()
            self._wake.wait(None if timeout == float("inf") else max(0.0, timeout))

    # -- reload ----------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the config (SIGHUP). A bad file is rejected and the old config stays;
        so does it when reading the file fails in a way the loader did not foresee (a
        bug): ``config_reload_failed`` then carries the exception and its traceback, and
        the daemon goes on."""
        self.notifier.reloading()
        source = str(self.config.source) if self.config.source else None
        self.log.info("config_reload_started", config=source)
        try:
            if self._load_config is None:
                raise ConfigError(None, None, "this daemon was started without a config loader")
            plan = plan_reload(self.config, self._load_config())
        except ConfigError as exc:
            self.log.error(
                "config_reload_failed",
                config=exc.source,
                key=exc.key,
                error=exc.reason,
                hint="the previous configuration stays in force",
            )
        except Exception as exc:  # a bug in a config parser must never stop the daemon
            self.log.exception(
                "config_reload_failed",
                config=source,
                key=None,
                error=f"{type(exc).__name__}: {exc} (a bug in vpod; please report it)",
                hint="the previous configuration stays in force",
            )
        else:
            self._apply(plan)
        self.parts.reporter.ready(self.clock())

    def _apply(self, plan: ReloadPlan) -> None:
        old, p = self.config, self.parts
        if plan.config.http.listen != old.http.listen and not self._restart_http(plan.config.http.listen):
            plan = plan.without(old, "http", "listen")  # the old listener keeps serving
        cfg = plan.config
        if cfg.logging != old.logging:
            configure_logging(cfg.logging.level, cfg.logging.format, timestamps=cfg.logging.timestamps)
        self.config = cfg
        for part in p.reconfigurable:
            part.reconfigure(cfg)
        p.lane.check_width(p.pool.target, encoding_policies(cfg))
        p.snapshot.record(
            workers=p.pool.target, config=str(cfg.source) if cfg.source else None, watch_paths=_paths_json(p.roots.roots)
        )
        self.log.info(
            "config_reloaded",
            changed=list(plan.changed),
            restart_needed=list(plan.needs_restart),
            not_applied=list(plan.not_applied),
            workers=p.pool.target,
            watch_paths=[str(r) for r in p.roots.roots],
            libraries=p.libraries.as_json(),
        )

    def _restart_http(self, listen: str) -> bool:
        """Serve on ``listen`` (``""``: stop); False when it cannot be bound: the old
        listener then keeps serving."""
        try:
            self.http = switch_listener(
                self.http, listen, self.parts.snapshot.health, self.parts.metrics.registry, hooks=self.parts.hooks,
                limits=self.config.http,  # the limits in force (restart-only keys)
                web=self.web(),
            )
        except ListenError as exc:
            kept = self.http.listen if self.http is not None and self.http.serving else None
            self.log.error("http_listen_failed", listen=listen, error=str(exc), kept=kept)
            return False
        return True

    # -- shutdown --------------------------------------------------------------------

    def shutdown(self) -> None:
        """Orderly drain: stop observing, stop feeding, kill running transcodes at once
        (:meth:`vpod.lanes.TranscodeLane.cancel_all`: queued again, restarted from zero),
        let other files in progress finish (at most ``shutdown_timeout_seconds``, then
        their tools are killed and they go back to the queue), close the last batch.
        ``/health`` answers 503 meanwhile."""
        p = self.parts
        self.stop.set()
        self.notifier.stopping()
        p.snapshot.record("stopping")
        p.roots.stop()
        p.stabilizer.wake()
        p.scanner.wake()
        p.feeder.poke()
        p.pool.wake_idle()  # busy workers see the stop flag after their job
        # A transcode does not wait for shutdown_timeout_seconds: its encoder is killed
        # now, its temp removed, the file queued again (not counted): it restarts from zero.
        p.lane.cancel_all(p.runner)
        deadline = time.monotonic() + self.config.processing.shutdown_timeout_seconds
        stuck = p.threads.join(deadline, time.monotonic)
        if stuck:
            killed = p.runner.kill_all()
            self.log.warning(
                "shutdown_timeout",
                threads=stuck,
                tools_killed=killed,
                hint="files in progress go back to the queue and are redone at the next start",
            )
            p.threads.join(time.monotonic() + 5.0, time.monotonic)
        p.batches.close(final=True)
        p.integrations.close()  # after the last batch: its summary is sent too
        p.claims.release_all()  # nothing of ours runs any more: another vpod may take the folders
        p.snapshot.record("stopped", stopped_at=time.time(), claimed_elsewhere=None)
        try:
            self.store.end_owner()
        except StoreError as exc:  # its heartbeat goes stale instead
            self.log.warning("daemon_state_not_recorded", state="stopped", error=str(exc))
        if self.http is not None:
            self.http.close()
        self._close_store()
        self.instance.release()
        self.notifier.close()
        self.log.info("daemon_stopped", uptime_seconds=round(time.time() - self.started_at, 3))


def _paths_json(roots: tuple[Path, ...]) -> str:
    return json.dumps([str(r) for r in roots])
