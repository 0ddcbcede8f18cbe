"""``vpod run``: the watch-folder daemon.

Threads, each with one loop that checks the shared stop Event:

* watchdog observers (one per root) → :class:`WatchEventHandler` → :class:`Stabilizer`
* the stabilizer thread → :class:`Intake` → durable queue (Store, state ``queued``)
* the scanner thread: catch-up scan at start, walks of folders created or moved in
* the feeder thread: queued rows → bounded ``queue.Queue`` (backpressure)
* N worker threads: job → :class:`JobRunner` (the shared per-file pipeline)
* the main thread: signals, batch windows, noticing roots renamed away (inotify follows
  the folder, not the path) and re-watching roots that come back, config reloads,
  ``STATUS=`` and ``WATCHDOG=1`` to systemd (:mod:`vpod.notify`)
* optionally the HTTP listener: ``/health`` and ``/metrics`` (:mod:`vpod.http_listener`)

Signal handlers only set flags and wake the main loop: SIGTERM/SIGINT stop, SIGHUP
reloads the config, SIGUSR1 says "look at the database" (``vpod resume`` / ``vpod retry``
wrote there). The daemon records its pid and state in the database (``daemon`` table)
for ``vpod status``. Shutdown drains in order:
stop observing, stop feeding, let files in progress finish (at most
``shutdown_timeout_seconds``, then their tools are killed and they go back to the
queue), close the last batch.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Callable

import structlog

from vpod import __version__, exitcodes
from vpod.batch import BatchController, BatchWindows
from vpod.config import VPOConfig
from vpod.cpu import effective_workers
from vpod.db.pool import DaemonConnectionPool, DatabaseBusy, DatabaseError
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import Job
from vpod.errors import ConfigError
from vpod.feeder import Feeder
from vpod.heartbeat import OwnerHeartbeat
from vpod.http_listener import HttpListener, ListenError, switch_listener
from vpod.instance import InstanceLock
from vpod.jobs import JobRunner
from vpod.logs import configure_logging
from vpod.media.limits import ToolLimits
from vpod.media.tools import ToolRunner
from vpod.metrics import Metrics
from vpod.notify import SystemdNotifier, forget_environ
from vpod.pipeline import FileProcessor, PipelineOptions
from vpod.reload import ReloadPlan, plan_reload
from vpod.results import BatchResult, FileProcessingResult, display_path
from vpod.tempfiles import log_sweep, sweep_temps
from vpod.watch.filters import PathFilter
from vpod.watch.handler import WatchEventHandler
from vpod.watch.intake import Intake, root_of
from vpod.watch.observers import WatchManager
from vpod.watch.ownership import LibraryClaims
from vpod.watch.scanner import Scanner
from vpod.watch.stabilizer import Stabilizer
from vpod.worker import Worker

_ROOT_RECHECK_SECONDS = 5.0  # how often a missing watch root is looked for, and inotify roots re-identified
_STATUS_MIN_INTERVAL_SECONDS = 1.0  # STATUS= to systemd at most this often


class Daemon:
    """The daemon's lifecycle: :meth:`startup`, :meth:`main_loop`, :meth:`shutdown`.

    Args:
        config: the configuration (``config.processing.workers`` already holds any CLI
            override); replaced as a whole on reload.
        dry_run: plan and log, never write media files.
        notifier: talks to systemd (default: off).
        load_config: re-reads the configuration on SIGHUP, CLI overrides applied; raises
            :class:`ConfigError` for a bad file (default: reload is not possible).
    """

    def __init__(
        self,
        config: VPOConfig,
        *,
        dry_run: bool = False,
        notifier: SystemdNotifier | None = None,
        load_config: Callable[[], VPOConfig] | None = None,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.notifier = notifier or SystemdNotifier(None)
        self._load_config = load_config
        self.log = structlog.get_logger("vpod")
        self.stop = threading.Event()
        self.crashed = threading.Event()  # set when a thread died of an unexpected exception
        self.paused = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = threading.Event()
        self._control_requested = threading.Event()
        self._status_dirty = threading.Event()
        self._status_sent_at = -math.inf  # monotonic
        self._next_watchdog = 0.0  # monotonic
        self._dead_reported: set[str] = set()
        self._missing_roots: set[Path] = set()
        self._recorded_unwatched: list[str] | None = None  # what vpod status was last told
        self._next_identity_check = 0.0  # monotonic
        self._active = 0
        self._active_lock = threading.Lock()
        self._counts = {"done": 0, "failed": 0, "skipped": 0}
        self._threads: list[threading.Thread] = []
        self._essential: list[threading.Thread] = []  # threads that must run until stop
        self._claims_recorded = -1  # LibraryClaims.changes last written to the database
        self._workers_lock = threading.Lock()
        self.workers: list[Worker] = []
        self._target_workers = 0
        self._worker_seq = 0
        self.http: HttpListener | None = None
        self.started_at = time.time()

    # -- wiring ----------------------------------------------------------------------

    def startup(self) -> None:
        """Open the database, recover from a crash, start every thread and the observers,
        then tell systemd ``READY=1``.

        Raises:
            AlreadyRunning: another daemon uses the same database.
            DatabaseError: the database cannot be opened or migrated.
            ListenError: ``[http] listen`` cannot be bound.
        """
        cfg = self.config
        self.instance = InstanceLock(cfg.database.path)
        self.instance.acquire()
        self.pool = DaemonConnectionPool(cfg.database.path, busy_timeout_seconds=cfg.database.busy_timeout_seconds)
        self.store = SqliteStore(self.pool)
        self.store.register_owner("daemon")
        self.heartbeat = OwnerHeartbeat(self.store)
        # A live vpod process's rows are its own; dead ones are released by the main loop.
        requeued = self.store.requeue_interrupted()
        # Temp files a live `vpod process` on this database still writes are left alone.
        swept = sweep_temps(self.store)
        log_sweep(swept)
        self.metrics = Metrics(
            queue_depth=self.store.ping,
            active=self.active,
            workers=self.worker_count,
            paused=self.paused.is_set,
            started_at=self.started_at,
        )
        if cfg.http.listen:
            self.http = HttpListener(cfg.http.listen, self.health, self.metrics.registry)
            self.http.start()
        self.roots = tuple(p.absolute() for p in cfg.watch.paths)
        self.library_names = cfg.watch.library_names
        self._bind_libraries()
        self.claims = LibraryClaims(self.store.database_id(), cfg.database.path, read_only=self.dry_run)
        self.runner = ToolRunner(ToolLimits.from_config(cfg.processing))
        self.processor = FileProcessor(
            self.runner,
            PipelineOptions(
                roots=self.roots, follow_symlinks=cfg.watch.follow_symlinks, dry_run=self.dry_run,
                refusal=self.claims.refusal,
            ),
            self.store,
        )
        self.job_runner = JobRunner(
            self.store,
            self.processor,
            max_attempts=cfg.processing.max_attempts,
            stop=self.stop,
            on_outcome=self._on_outcome,
            wait_for_space=True,
        )
        self.controller = BatchController(cfg.policy.on_error)
        self.windows = BatchWindows(cfg.processing.batch_window_seconds)
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=cfg.processing.queue_size)
        self.feeder = Feeder(self.store, self.jobs, self.stop, self.paused)
        self.path_filter = PathFilter.from_config(cfg.watch)
        self.intake = Intake(
            self.store,
            lambda: self.roots,
            # The policy in force now, not at start: a reload swaps self.config.
            policy_digest=lambda: self.config.policy.digest,
            follow_symlinks=cfg.watch.follow_symlinks,
            on_queued=self._queued,
            retry=lambda paths, delay: self.stabilizer.notify_later(paths, delay),
        )
        self.stabilizer = Stabilizer(cfg.watch.settle_seconds, self.intake.files_ready, self.stop)
        self.scanner = Scanner(
            self.store, self.path_filter, self.stabilizer, self.stop, recursive=cfg.watch.recursive,
            trust_ctime=lambda root: self.watches.kind(root) == "inotify",
        )
        self.watches = WatchManager(
            self._make_handler,
            observer=cfg.watch.observer,
            poll_interval_seconds=cfg.watch.poll_interval_seconds,
            recursive=cfg.watch.recursive,
        )
        self._essential = [
            self._spawn("vpod-stabilizer", self.stabilizer.run),
            self._spawn("vpod-scanner", self.scanner.run),
            self._spawn("vpod-feeder", self.feeder.run),
        ]
        workers = self._set_worker_count(cfg.processing.workers)
        for root in self.roots:
            self._watch_root(root, catch_up=cfg.watch.scan_on_start)
        self._record_state(
            "running",
            pid=os.getpid(),
            started_at=self.started_at,
            version=__version__,
            config=str(cfg.source) if cfg.source else None,
            database=str(cfg.database.path),
            workers=workers,
            watch_paths=json.dumps([str(r) for r in self.roots]),
            unwatched_paths=None,  # the main loop records them
            paused_at=None,
            paused_path=None,
            paused_error=None,
            resume_requested_at=None,
            stopped_at=None,
        )
        self._claims_recorded = -1  # written now in any case: clears what a crashed run left
        self._record_claims()
        self.log.info(
            "daemon_started",
            version=__version__,
            pid=os.getpid(),
            watch_paths=[str(r) for r in self.roots],
            libraries={name: str(root) for root, name in self.library_names.items()},
            workers=workers,
            database=str(cfg.database.path),
            settle_seconds=cfg.watch.settle_seconds,
            requeued_after_crash=requeued,
            temp_files_removed=len(swept.removed),
            dry_run=self.dry_run,
            http=cfg.http.listen or None,
            systemd_notify=self.notifier.enabled,
            watchdog_seconds=self.notifier.watchdog_seconds,
        )
        # Observers run and the catch-up scans are queued: systemd may consider us started.
        self.notifier.ready(self._status_text())
        self._status_sent_at = time.monotonic()

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException:  # a bug: stop loudly rather than idle on with a dead thread
                self.log.exception(
                    "thread_died",
                    thread=name,
                    hint="vpod stops with exit status 70; under systemd (Restart=on-failure) it is started again",
                )
                self.crashed.set()
                self.stop.set()
                self.wake()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _make_handler(self, root: Path) -> WatchEventHandler:
        return WatchEventHandler(
            root,
            self.path_filter,
            self.stabilizer,
            walk_folder=lambda r, folder: self.scanner.request(r, folder),
            on_root_deleted=self._root_deleted,
            events_lost=self.scanner.rescan,
        )

    def _watch_root(self, root: Path, *, catch_up: bool) -> None:
        if self._claimed_elsewhere(root):
            return
        if self.watches.watch(root):
            self._missing_roots.discard(root)
            if catch_up:
                self.scanner.request(root, root, catch_up=True)
        else:
            if root not in self._missing_roots:
                if os.path.lexists(root) and not root.is_dir():
                    self.log.error(
                        "watch_path_not_a_folder", root=str(root), library=self.library_names.get(root),
                        hint="[watch] paths lists folders; fix the config",
                    )
                else:
                    self.log.warning(
                        "watch_path_missing", root=str(root), library=self.library_names.get(root),
                        hint="watching starts when the folder exists",
                    )
            self._missing_roots.add(root)

    def _claimed_elsewhere(self, root: Path) -> bool:
        """Claim ``root``'s library marker; True when a vpod of another database holds it
        (logged by the claims): the root is then not watched."""
        if self.claims.claim(root) is None:
            return False
        self._missing_roots.discard(root)
        self._record_claims()
        return True

    def _recheck_claims(self) -> None:
        """Take up roots whose other vpod stopped (watched and walked); renew this vpod's
        heartbeats; stop watching a root another vpod took meanwhile."""
        for root in self.claims.retake(self.roots):
            self._watch_root(root, catch_up=True)
        for root in self.claims.renew():
            self.watches.unwatch(root)
        self._record_claims()

    def _record_claims(self) -> None:
        """Record the roots other vpods hold, for ``vpod status``, when that changed."""
        if self.claims.changes != self._claims_recorded:
            self._claims_recorded = self.claims.changes
            held = self.claims.report()
            self._record_state(self.state(), claimed_elsewhere=json.dumps(held) if held else None)

    def _root_deleted(self, root: Path, moved: bool = False) -> None:
        # Called from an observer thread (or the main loop): only record it; the main
        # loop unwatches, then re-watches whatever folder comes to have the path.
        self._missing_roots.add(root)  # before the log line: /health agrees with the log
        self.log.warning("watch_path_deleted", root=str(root), library=self.library_names.get(root), moved=moved)
        self.wake()

    def _periodic_checks(self) -> None:
        """At most once per ``_ROOT_RECHECK_SECONDS``: dead threads, roots renamed away,
        library markers, and files a killed ``vpod process`` left in progress."""
        now = time.monotonic()
        if now < self._next_identity_check:
            return
        self._next_identity_check = now + _ROOT_RECHECK_SECONDS
        self.heartbeat.tick(now)
        self._dead_threads()  # logs thread_died even where no systemd watchdog asks
        self._check_displaced_roots()
        self._recheck_claims()
        self._release_dead_process_rows()

    def _check_displaced_roots(self) -> None:
        """A root whose path no longer names the watched folder: a re-pointed symlink is
        watched at its new folder at once (its library marker moves along), which is
        walked for files already there;
        anything else (renamed away, replaced by a rename, an ancestor renamed) is
        treated like a deleted root: its observer follows the old folder, so it is
        stopped and the path is watched anew. One stat(2) per inotify root."""
        for root in self.watches.displaced():
            if root in self._missing_roots:
                continue
            if self.watches.repoint(root):
                self.claims.release(root)  # the marker stays with the old folder: removed
                if self._claimed_elsewhere(root):
                    self.watches.unwatch(root)
                else:
                    self.scanner.request(root, root, catch_up=True)
            else:
                self._root_deleted(root, moved=True)

    def _release_dead_process_rows(self) -> None:
        """Rows a ``vpod process`` left ``processing`` when it was killed: their events
        were dropped as already queued, so they are released (``interrupted``) and those
        under the watched roots looked at again, through the settle time like any event."""
        try:
            paths = self.store.abandon_dead_owners()
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.warning("database_busy", error=str(exc), retry_in_seconds=_ROOT_RECHECK_SECONDS)
            return
        for path in paths:
            inside = root_of(path, tuple(self.roots)) is not None
            self.log.warning("abandoned_file_released", path=display_path(path), looked_at_again=inside)
            if inside:
                self.stabilizer.notify(path)

    # -- workers ---------------------------------------------------------------------

    def _set_worker_count(self, requested: int | None) -> int:
        """Start or retire worker threads to reach ``requested`` (capped; ``None``: the
        cap); returns the count used."""
        workers = effective_workers(requested)
        if workers.capped:
            self.log.warning("workers_capped", requested=requested, used=workers.used, reason=workers.explanation())
        count = workers.used
        with self._workers_lock:
            self._target_workers = count
            while len(self.workers) < count:
                self._worker_seq += 1
                worker = Worker(f"worker-{self._worker_seq}", self)
                worker.thread = self._spawn(f"vpod-{worker.name}", worker.run)
                self.workers.append(worker)
            surplus = len(self.workers) - count
        for _ in range(surplus):  # wake idle workers so they can retire now
            try:
                self.jobs.put_nowait(None)
            except queue.Full:
                break  # busy workers retire after their current file
        return count

    def retire(self, worker: Worker) -> bool:
        """Called by a worker between jobs: True (and forgotten) when there are too many."""
        with self._workers_lock:
            if worker in self.workers and len(self.workers) > self._target_workers:
                self.workers.remove(worker)
                self.log.info("worker_retired", worker=worker.name, workers=len(self.workers))
                return True
        return False

    def worker_count(self) -> int:
        """Worker threads now (retiring ones excluded)."""
        with self._workers_lock:
            return len(self.workers)

    # -- running -------------------------------------------------------------------

    def wake(self) -> None:
        """Wake the main loop (a file finished, a signal arrived)."""
        self._wake.set()

    def active_changed(self, delta: int) -> None:
        """A worker started (+1) or ended (-1) a file."""
        with self._active_lock:
            self._active += delta
        self._status_changed()

    def active(self) -> int:
        """Files in progress now."""
        with self._active_lock:
            return self._active

    def _queued(self) -> None:
        self.feeder.poke()
        self._status_changed()

    def _status_changed(self) -> None:
        self._status_dirty.set()
        self.wake()

    def _on_outcome(self, result: FileProcessingResult, retrying: bool) -> None:
        self.metrics.observe_file(result, retrying=retrying)
        if result.reason == "source_changed" and not retrying:
            # The rewrite's own events may have settled while the row was still in
            # progress, and then were not queued: look at the new content once it settles.
            self.stabilizer.notify(result.path)
        if not retrying:
            key = "done" if result.success else ("skipped" if result.skipped else "failed")
            with self._active_lock:
                self._counts[key] += 1
        self._status_changed()

    def state(self) -> str:
        """``running``, ``paused`` or ``stopping``."""
        if self.stop.is_set():
            return "stopping"
        return "paused" if self.paused.is_set() else "running"

    def pause(self, result: FileProcessingResult) -> None:
        """Stop starting files after ``result`` failed under ``on_error = "fail"``."""
        self.paused.set()
        self.log.error(
            "processing_paused",
            reason='a file failed and on_error = "fail"',
            failed_path=str(result.path),
            error=result.error,
            hint="queued files stay queued; run `vpod resume` to go on",
        )
        self._record_state("paused", paused_at=time.time(), paused_path=str(result.path), paused_error=result.error)
        self._status_changed()

    def health(self) -> tuple[bool, dict[str, object]]:
        """``(healthy, body)`` for ``/health``: unhealthy while paused, stopping, when the
        database cannot be read, or when a thread died (``reason = "thread_died"``,
        ``threads`` names them: a watch root's observer among them leaves that root
        unheard). ``unwatched_paths`` lists configured folders not watched now (missing,
        deleted or moved away, or held by another vpod: ``claimed_elsewhere``; watched
        again when a folder has the path or the other vpod stops); they do not make the
        daemon unhealthy: a restart would not bring them back."""
        body: dict[str, object] = {
            "status": "healthy",
            "state": self.state(),
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "workers": self.worker_count(),
            "active": self.active(),
            "unwatched_paths": self._unwatched_paths(),
            # /health answers before the claims exist
            "claimed_elsewhere": self.claims.report() if hasattr(self, "claims") else [],
        }
        try:
            body["queue_depth"] = self.store.ping()
        except (DatabaseBusy, DatabaseError) as exc:
            body.update(status="unhealthy", reason="database_unreachable", error=str(exc))
            return False, body
        if body["state"] != "running":
            body.update(status="unhealthy", reason=body["state"])
            return False, body
        dead = self._dead_threads()
        if dead:
            body.update(status="unhealthy", reason="thread_died", threads=dead)
            return False, body
        return True, body

    def _unwatched_paths(self) -> list[str]:
        watches = getattr(self, "watches", None)  # /health answers before the observers exist
        if watches is None:
            return []
        missing = set(self._missing_roots)  # a root found gone may not be unwatched yet
        return sorted(str(root) for root in self.roots if root in missing or watches.kind(root) is None)

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

    def main_loop(self) -> None:
        """Run until the stop flag is set: reloads, control requests, batch windows,
        re-watching roots, ``STATUS=`` and ``WATCHDOG=1``."""
        while not self.stop.is_set():
            self._wake.clear()
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
            if self._control_requested.is_set():
                self._control_requested.clear()
                self._apply_control()
            self._close_batches()
            self._periodic_checks()
            self._recheck_roots()
            self._record_unwatched()
            self._report_to_systemd()
            self._wake.wait(self._sleep_time())

    def _sleep_time(self) -> float | None:
        now = time.monotonic()
        waits = []
        deadline = self.windows.next_deadline()
        if deadline is not None:
            waits.append(deadline - now)
        if self._missing_roots:
            waits.append(_ROOT_RECHECK_SECONDS)
        waits.append(self._next_identity_check - now)  # roots re-identified, dead owners released
        if self._status_dirty.is_set() and self.notifier.enabled:
            waits.append(self._status_sent_at + _STATUS_MIN_INTERVAL_SECONDS - now)
        if self.notifier.watchdog_seconds is not None:
            waits.append(self._next_watchdog - now)
        return max(0.0, min(waits)) if waits else None

    def _report_to_systemd(self) -> None:
        now = time.monotonic()
        if not self.notifier.enabled:
            return
        if self._status_dirty.is_set() and now - self._status_sent_at >= _STATUS_MIN_INTERVAL_SECONDS:
            self._status_dirty.clear()
            self._status_sent_at = now
            self.notifier.status(self._status_text())
        interval = self.notifier.watchdog_seconds
        if interval is not None and now >= self._next_watchdog:
            # Only a daemon whose threads all run is alive; otherwise systemd's watchdog restarts it.
            if self._dead_threads():
                return
            self.notifier.watchdog()
            self._next_watchdog = now + interval

    def _dead_threads(self) -> list[str]:
        """Names of threads that should run and do not: vpod's own, and the observers of
        watched roots (a dead observer leaves its root unheard); each is logged once
        (``thread_died``)."""
        with self._workers_lock:
            threads = self._essential + [w.thread for w in self.workers if w.thread is not None]
        dead = [t.name for t in threads if not t.is_alive()]
        watches = getattr(self, "watches", None)  # /health answers before the observers exist
        if watches is not None:
            dead += watches.dead_observers()
        for name in set(dead) - self._dead_reported:
            self.log.error("thread_died", thread=name, hint="systemd's watchdog will restart vpod")
        self._dead_reported.update(dead)
        return dead

    def _status_text(self) -> str:
        try:
            queued: object = self.store.queue_depth()
        except (DatabaseBusy, DatabaseError):
            queued = "?"
        with self._active_lock:
            counts = dict(self._counts)
        return (
            f"{self.state()}: {self.active()} active, {queued} queued, {counts['done']} done, "
            f"{counts['failed']} failed, {counts['skipped']} skipped"
        )

    def _record_state(self, state: str, **values: object) -> bool:
        try:
            self.store.set_daemon_info(state=state, **values)
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.warning("daemon_state_not_recorded", state=state, error=str(exc))
            return False
        return True

    def _record_unwatched(self) -> None:
        """Record the ``unwatched_paths`` of ``/health`` for ``vpod status`` when they change."""
        unwatched = self._unwatched_paths()
        if unwatched != self._recorded_unwatched and self._record_state(
            self.state(), unwatched_paths=json.dumps(unwatched)
        ):
            self._recorded_unwatched = unwatched

    # -- reload and control ------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the config (SIGHUP). A bad file is rejected and the old config stays."""
        self.notifier.reloading()
        self.log.info("config_reload_started", config=str(self.config.source) if self.config.source else None)
        try:
            if self._load_config is None:
                raise ConfigError(None, None, "this daemon was started without a config loader")
            new = self._load_config()
        except ConfigError as exc:
            self.log.error(
                "config_reload_failed",
                config=exc.source,
                key=exc.key,
                error=exc.reason,
                hint="the previous configuration stays in force",
            )
        else:
            self._apply(plan_reload(self.config, new))
        self.notifier.ready(self._status_text())
        self._status_sent_at = time.monotonic()

    def _apply(self, plan: ReloadPlan) -> None:
        old = self.config
        if plan.config.http.listen != old.http.listen and not self._restart_http(plan.config.http.listen):
            plan = plan.without(old, "http", "listen")  # the old listener keeps serving
        cfg = plan.config
        if cfg.logging != old.logging:
            configure_logging(cfg.logging.level, cfg.logging.format, timestamps=cfg.logging.timestamps)
        self.config = cfg  # workers read config.policy at the start of each file
        self.controller.on_error = cfg.policy.on_error
        self.windows.window_seconds = cfg.processing.batch_window_seconds
        self.runner.limits = ToolLimits.from_config(cfg.processing)
        self.job_runner.max_attempts = cfg.processing.max_attempts
        self.stabilizer.settle_seconds = cfg.watch.settle_seconds
        roots = tuple(p.absolute() for p in cfg.watch.paths)
        if cfg.watch.library_names != self.library_names:
            self.library_names = cfg.watch.library_names
            self._bind_libraries()
        if roots != self.roots:
            self.processor.options = replace(self.processor.options, roots=roots)
            for root in set(self.roots) - set(roots):
                self.watches.unwatch(root)
                self.claims.release(root)
                self._missing_roots.discard(root)
            previous, self.roots = self.roots, roots
            for root in roots:
                if root not in previous:
                    self._watch_root(root, catch_up=True)
        workers = self._set_worker_count(cfg.processing.workers)
        self._record_state(
            self.state(),
            workers=workers,
            config=str(cfg.source) if cfg.source else None,
            watch_paths=json.dumps([str(r) for r in self.roots]),
        )
        self.log.info(
            "config_reloaded",
            changed=list(plan.changed),
            restart_needed=list(plan.needs_restart),
            not_applied=list(plan.not_applied),
            workers=workers,
            watch_paths=[str(r) for r in self.roots],
            libraries={name: str(root) for root, name in self.library_names.items()},
        )

    def _bind_libraries(self) -> None:
        """Give the database this config's library names and folders; a library that
        moved (same name, new folder) or was renamed (same folder) keeps its files'
        history: logged as ``library_moved`` / ``library_renamed``. A database that
        cannot be written now keeps the old binding (logged); the next reload tries again."""
        try:
            changes = self.store.bind_libraries(self.library_names)
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.error("libraries_not_recorded", error=str(exc), hint="reload (SIGHUP) to try again")
            return
        for change in changes:
            if change.change == "moved":
                self.log.info("library_moved", library=change.name, root=change.path, previous_root=change.previous)
            elif change.change == "renamed":
                self.log.info("library_renamed", library=change.name, root=change.path, previous_name=change.previous)

    def _restart_http(self, listen: str) -> bool:
        """Serve on ``listen`` (``""``: stop); False when it cannot be bound: the old
        listener then keeps serving."""
        try:
            self.http = switch_listener(self.http, listen, self.health, self.metrics.registry)
        except ListenError as exc:
            kept = self.http.listen if self.http is not None and self.http.serving else None
            self.log.error("http_listen_failed", listen=listen, error=str(exc), kept=kept)
            return False
        return True

    def _apply_control(self) -> None:
        """SIGUSR1: a CLI wrote a request into the database (resume) or requeued files (retry)."""
        try:
            info = self.store.daemon_info()
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.error("control_read_failed", error=str(exc))
            return
        requested = float(info.get("resume_requested_at", "nan"))
        if self.paused.is_set() and requested >= float(info.get("paused_at", "0")):
            self.controller.reset()
            self.paused.clear()
            self._record_state("running", paused_at=None, paused_path=None, paused_error=None, resume_requested_at=None)
            self.log.info("processing_resumed", paused_path=info.get("paused_path"))
        self.feeder.poke()  # retried files are queued in the database
        self._status_changed()

    # -- stopping --------------------------------------------------------------------

    def _close_batches(self, *, final: bool = False) -> None:
        idle = final or self._idle()
        if idle and not final and not self.paused.is_set():
            try:
                idle = not self.store.next_queued(1, ())
            except (DatabaseBusy, DatabaseError):
                idle = False
        if idle and self.windows.waiting() and (final or self.paused.is_set() or self._nothing_queued()):
            # Retries that will not come back to this daemon now: their windows close without them.
            self.windows.drop_waiting()
        for batch in self.windows.close_ready(idle):
            self._record_batch(batch)

    def _nothing_queued(self) -> bool:
        """No row is queued, due now or later: a retry a window waits for was taken by
        another process (``vpod process``) and will not come back."""
        try:
            return self.store.queue_depth() == 0
        except (DatabaseBusy, DatabaseError):
            return False

    def _idle(self) -> bool:
        return self.active() == 0 and self.jobs.empty() and self.feeder.inflight() == 0

    def _record_batch(self, batch: BatchResult) -> None:
        try:
            self.store.record_batch(batch, "daemon")
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.error("batch_not_recorded", batch_id=batch.batch_id, error=str(exc))
        self.metrics.observe_batch(batch)
        self.log.info("batch_completed", **batch.counts())

    def _recheck_roots(self) -> None:
        for root in list(self._missing_roots):
            if root in self.watches.roots():
                self.watches.unwatch(root)
            if root.is_dir():
                self._watch_root(root, catch_up=True)
                if root not in self._missing_roots:  # logged once watched, so /health agrees
                    self.log.info("watch_path_restored", root=str(root), library=self.library_names.get(root))

    def shutdown(self) -> None:
        """Orderly drain; see the module docstring. ``/health`` answers 503 meanwhile."""
        self.stop.set()
        self.notifier.stopping()
        self._record_state("stopping")
        self.watches.stop_all()
        self.stabilizer.wake()
        self.scanner.wake()
        self.feeder.poke()
        for _ in range(self.worker_count()):
            try:
                self.jobs.put_nowait(None)
            except queue.Full:
                break  # workers are busy and will see the stop flag after their job
        deadline = time.monotonic() + self.config.processing.shutdown_timeout_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            killed = self.runner.kill_all()
            self.log.warning(
                "shutdown_timeout",
                threads=stuck,
                tools_killed=killed,
                hint="files in progress go back to the queue and are redone at the next start",
            )
            for thread in self._threads:
                thread.join(5.0)
        self._close_batches(final=True)
        self.claims.release_all()  # nothing of ours runs any more: another vpod may take the folders
        self._record_state("stopped", stopped_at=time.time(), claimed_elsewhere=None)
        try:
            self.store.end_owner()
        except (DatabaseBusy, DatabaseError) as exc:  # its heartbeat goes stale instead
            self.log.warning("daemon_state_not_recorded", state="stopped", error=str(exc))
        if self.http is not None:
            self.http.close()
        self.pool.close()
        self.instance.release()
        self.notifier.close()
        self.log.info("daemon_stopped", uptime_seconds=round(time.time() - self.started_at, 3))


def run_daemon(
    config: VPOConfig,
    *,
    dry_run: bool = False,
    load_config: Callable[[], VPOConfig] | None = None,
) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT; returns the exit status.

    Speaks sd_notify when systemd passed ``NOTIFY_SOCKET`` (the variables are then removed
    from the environment, so the tools vpod runs do not inherit them).

    Raises:
        DatabaseError: the database cannot be opened.
        ListenError: ``[http] listen`` cannot be bound.
    """
    notifier = SystemdNotifier.from_environ()
    forget_environ()
    daemon = Daemon(config, dry_run=dry_run, notifier=notifier, load_config=load_config)
    daemon.install_signal_handlers()
    try:
        daemon.startup()
    except BaseException:
        notifier.status("failed to start")
        raise
    try:
        daemon.main_loop()
    finally:
        daemon.shutdown()
    return exitcodes.SOFTWARE if daemon.crashed.is_set() else exitcodes.OK
