"""``vpod run``: the watch-folder daemon.

Threads, each with one loop that checks the shared stop Event:

* watchdog observers (one per root) → :class:`WatchEventHandler` → :class:`Stabilizer`
* the stabilizer thread → :class:`Intake` → durable queue (Store, state ``queued``)
* the scanner thread: catch-up scan at start, walks of folders created or moved in
* the feeder thread: queued rows → bounded ``queue.Queue`` (backpressure)
* N worker threads: job → :class:`JobRunner` (the shared per-file pipeline)
* the main thread: signals, batch windows, re-watching roots that come back

Signal handlers only set flags and wake the main loop. Shutdown drains in order:
stop observing, stop feeding, let files in progress finish (at most
``shutdown_timeout_seconds``, then their tools are killed and they go back to the
queue), close the last batch.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import structlog

from vpod import __version__
from vpod.batch import BatchController, BatchWindows
from vpod.config import VPOConfig
from vpod.cpu import effective_workers
from vpod.db.pool import DaemonConnectionPool, DatabaseBusy, DatabaseError
from vpod.db.sqlite_store import SqliteStore
from vpod.db.store import Job
from vpod.jobs import JobRunner
from vpod.media.tools import ToolRunner
from vpod.pipeline import FileProcessor, PipelineOptions
from vpod.results import BatchResult
from vpod.tempfiles import sweep_temps
from vpod.watch.filters import PathFilter
from vpod.watch.handler import WatchEventHandler
from vpod.watch.intake import Intake
from vpod.watch.observers import WatchManager
from vpod.watch.scanner import Scanner
from vpod.watch.stabilizer import Stabilizer

_ROOT_RECHECK_SECONDS = 5.0  # how often a missing watch root is looked for


class Feeder:
    """Moves due jobs from the Store into the bounded in-memory queue.

    Only ``queue_size`` jobs (plus those in progress) are ever in memory; the rest wait
    in the database, so a backlog of any size costs no memory and nothing is lost when
    the queue is full.
    """

    def __init__(self, store: SqliteStore, jobs: "queue.Queue[Job | None]", stop: threading.Event, paused: threading.Event) -> None:
        self.store = store
        self.jobs = jobs
        self.stop = stop
        self.paused = paused
        self.wakeup = threading.Event()
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self.log = structlog.get_logger("vpod")

    def poke(self) -> None:
        """New work was queued or room was freed: look again."""
        self.wakeup.set()

    def done(self, job: Job) -> None:
        """A job left the pipeline (finished, retried later or released)."""
        with self._lock:
            self._inflight.discard(job.id)
        self.poke()

    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def run(self) -> None:
        """Thread body."""
        while not self.stop.is_set():
            self.wakeup.clear()
            timeout = self._feed_once()
            if not self.stop.is_set():
                self.wakeup.wait(timeout)

    def _feed_once(self) -> float | None:
        """Feed what fits; returns how long to sleep unless poked (None: until poked)."""
        if self.paused.is_set():
            return None
        room = self.jobs.maxsize - self.jobs.qsize()
        if room <= 0:
            return None
        with self._lock:
            exclude = set(self._inflight)
        try:
            batch = self.store.next_queued(room, exclude)
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.warning("queue_read_failed", error=str(exc))
            return 1.0
        for job in batch:
            with self._lock:
                self._inflight.add(job.id)
            self.jobs.put(job)  # never blocks: room was measured and only this thread puts jobs
        if len(batch) == room:
            return 0.0
        due = self.store.next_due_at()
        return None if due is None else max(0.05, due - time.time())


class Worker:
    """One worker thread: take a job, run it, record it; checks the stop flags between jobs."""

    def __init__(self, name: str, daemon: "Daemon") -> None:
        self.name = name
        self.daemon = daemon

    def run(self) -> None:
        """Thread body."""
        d = self.daemon
        while True:
            job = d.jobs.get()
            if job is None or d.stop.is_set():
                if job is not None:
                    d.feeder.done(job)
                return
            if d.controller.should_stop():
                d.feeder.done(job)  # paused: the job stays queued in the database
                continue
            batch_id = d.windows.start_file()
            d.active_changed(+1)
            try:
                result = d.job_runner.run(job, d.config.policy, self.name, batch_id)
            except (DatabaseBusy, DatabaseError) as exc:
                d.log.error("result_not_recorded", path=str(job.path), error=str(exc))
                result = None
            except Exception:  # a bug must not kill the worker; the job is redone at restart
                d.log.exception("worker_error", path=str(job.path))
                result = None
            finally:
                d.active_changed(-1)
                d.feeder.done(job)
            if result is None:
                d.windows.cancel_file(batch_id)
            else:
                d.windows.finish_file(batch_id, result)
                if d.controller.record(result):
                    d.windows.mark_stopped_early()
                    d.paused.set()
                    d.log.error(
                        "processing_paused",
                        reason='a file failed and on_error = "fail"',
                        failed_path=str(result.path),
                        error=result.error,
                        hint="queued files stay queued; run `vpod resume` to go on",
                    )
            d.wake()


class Daemon:
    """The daemon's lifecycle: :meth:`startup`, :meth:`main_loop`, :meth:`shutdown`.

    Args:
        config: the configuration (``config.processing.workers`` already holds any CLI
            override); replaced as a whole on reload.
        dry_run: plan and log, never write media files.
    """

    def __init__(self, config: VPOConfig, *, dry_run: bool = False) -> None:
        self.config = config
        self.dry_run = dry_run
        self.log = structlog.get_logger("vpod")
        self.stop = threading.Event()
        self.paused = threading.Event()
        self._wake = threading.Event()
        self._missing_roots: set[Path] = set()
        self._active = 0
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started_at = time.time()

    # -- wiring ----------------------------------------------------------------------

    def startup(self) -> None:
        """Open the database, recover from a crash, start every thread and the observers.

        Raises:
            DatabaseError: the database cannot be opened or migrated.
        """
        cfg = self.config
        self.pool = DaemonConnectionPool(cfg.database.path, busy_timeout_seconds=cfg.database.busy_timeout_seconds)
        self.store = SqliteStore(self.pool)
        requeued = self.store.requeue_interrupted()
        removed = sweep_temps(self.store)
        workers, cap = effective_workers(cfg.processing.workers)
        if workers < cfg.processing.workers:
            self.log.warning(
                "workers_capped",
                requested=cfg.processing.workers,
                used=workers,
                reason=f"at most half the CPUs available to vpod ({cap} workers); set VPOD_CPU_COUNT if the CPU count is wrong",
            )
        self.roots = tuple(p.absolute() for p in cfg.watch.paths)
        self.runner = ToolRunner(cfg.processing.tool_timeout_seconds)
        self.processor = FileProcessor(
            self.runner,
            PipelineOptions(roots=self.roots, follow_symlinks=cfg.watch.follow_symlinks, dry_run=self.dry_run),
            self.store,
        )
        self.job_runner = JobRunner(
            self.store, self.processor, max_attempts=cfg.processing.max_attempts, stop=self.stop
        )
        self.controller = BatchController(cfg.policy.on_error)
        self.windows = BatchWindows(cfg.processing.batch_window_seconds)
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=cfg.processing.queue_size)
        self.feeder = Feeder(self.store, self.jobs, self.stop, self.paused)
        self.path_filter = PathFilter.from_config(cfg.watch)
        self.intake = Intake(
            self.store,
            lambda: self.roots,
            follow_symlinks=cfg.watch.follow_symlinks,
            on_queued=self.feeder.poke,
            retry=lambda path: self.stabilizer.notify(path),
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
        self._spawn("vpod-stabilizer", self.stabilizer.run)
        self._spawn("vpod-scanner", self.scanner.run)
        self._spawn("vpod-feeder", self.feeder.run)
        self.workers = [Worker(f"worker-{i + 1}", self) for i in range(workers)]
        for worker in self.workers:
            self._spawn(f"vpod-{worker.name}", worker.run)
        for root in self.roots:
            self._watch_root(root, catch_up=cfg.watch.scan_on_start)
        self.log.info(
            "daemon_started",
            version=__version__,
            pid=os.getpid(),
            watch_paths=[str(r) for r in self.roots],
            workers=workers,
            database=str(cfg.database.path),
            settle_seconds=cfg.watch.settle_seconds,
            requeued_after_crash=requeued,
            temp_files_removed=removed,
            dry_run=self.dry_run,
        )

    def _spawn(self, name: str, target: object) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _make_handler(self, root: Path) -> WatchEventHandler:
        return WatchEventHandler(
            root,
            self.path_filter,
            self.stabilizer,
            walk_folder=lambda r, folder: self.scanner.request(r, folder),
            on_root_deleted=self._root_deleted,
        )

    def _watch_root(self, root: Path, *, catch_up: bool) -> None:
        if self.watches.watch(root):
            self._missing_roots.discard(root)
            if catch_up:
                self.scanner.request(root, root, catch_up=True)
        else:
            if root not in self._missing_roots:
                self.log.warning("watch_path_missing", root=str(root), hint="watching starts when the folder exists")
            self._missing_roots.add(root)

    def _root_deleted(self, root: Path) -> None:
        # Called from an observer thread: only record it; the main loop unwatches.
        self.log.warning("watch_path_deleted", root=str(root))
        self._missing_roots.add(root)
        self.wake()

    # -- running -------------------------------------------------------------------

    def wake(self) -> None:
        """Wake the main loop (a file finished, a signal arrived)."""
        self._wake.set()

    def active_changed(self, delta: int) -> None:
        with self._active_lock:
            self._active += delta

    def active(self) -> int:
        """Files in progress now."""
        with self._active_lock:
            return self._active

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the daemon; the handler only sets the stop flag."""

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.stop.set()
            self.wake()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)

    def main_loop(self) -> None:
        """Run until the stop flag is set: close batch windows, re-watch roots."""
        while not self.stop.is_set():
            self._wake.clear()
            self._close_batches()
            self._recheck_roots()
            self._wake.wait(self._sleep_time())

    def _sleep_time(self) -> float | None:
        waits = []
        deadline = self.windows.next_deadline()
        if deadline is not None:
            waits.append(max(0.0, deadline - time.monotonic()))
        if self._missing_roots:
            waits.append(_ROOT_RECHECK_SECONDS)
        return min(waits) if waits else None

    def _idle(self) -> bool:
        return self.active() == 0 and self.jobs.empty() and self.feeder.inflight() == 0

    def _close_batches(self, *, final: bool = False) -> None:
        idle = final or self._idle()
        if idle and not final and not self.paused.is_set():
            try:
                idle = not self.store.next_queued(1, ())
            except (DatabaseBusy, DatabaseError):
                idle = False
        for batch in self.windows.close_ready(idle):
            self._record_batch(batch)

    def _record_batch(self, batch: BatchResult) -> None:
        try:
            self.store.record_batch(batch, "daemon")
        except (DatabaseBusy, DatabaseError) as exc:
            self.log.error("batch_not_recorded", batch_id=batch.batch_id, error=str(exc))
        self.log.info("batch_completed", **batch.counts())

    def _recheck_roots(self) -> None:
        for root in list(self._missing_roots):
            if root in self.watches.roots():
                self.watches.unwatch(root)
            if root.is_dir():
                self.log.info("watch_path_restored", root=str(root))
                self._watch_root(root, catch_up=True)

    def shutdown(self) -> None:
        """Orderly drain; see the module docstring."""
        self.stop.set()
        self.watches.stop_all()
        self.stabilizer.wake()
        self.scanner.wake()
        self.feeder.poke()
        for _ in self.workers:
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
        self.pool.close()
        self.log.info("daemon_stopped", uptime_seconds=round(time.time() - self.started_at, 3))


def run_daemon(config: VPOConfig, *, dry_run: bool = False) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT; returns the exit status."""
    daemon = Daemon(config, dry_run=dry_run)
    daemon.install_signal_handlers()
    daemon.startup()
    try:
        daemon.main_loop()
    finally:
        daemon.shutdown()
    return 0
