"""``vpod process``: one parallel batch over existing files, through the daemon's pipeline.

Files from :func:`vpod.targets.collect_targets` go, in order, to a
``concurrent.futures.ThreadPoolExecutor`` of ``workers`` threads, except those whose
stat proves them untouched since vpod left them conforming under the policy that would
judge them now (:func:`vpod.unchanged.left_conforming`): no tool runs for those, each
gets a successful result marked ``unchanged`` (counted in ``unchanged_count``) and a
``file_unchanged`` line at debug level; ``force`` (``--force``) looks at every file again. Each file becomes a
Store job (:meth:`Store.job_for_path`) and runs through :meth:`JobRunner.run`, the
same code as ``vpod run``. At most ``2 × workers`` files are submitted ahead of the
workers (backpressure), so a library of any size costs little memory.

The transcode lane (:mod:`vpod.lanes`) holds here too: at most ``[processing]
max_transcodes`` files encode at once. A file whose plan transcodes while the lane is
full is given back (its attempt not counted, ``transcode_deferred`` logged once) and
waits in this batch; it is submitted again, before the next new file, as soon as a slot
is free, so the other workers go on with header edits and remuxes meanwhile. Outside
``transcode_hours`` the command does not wait for a window (a batch run by hand must
end): such a file is reported skipped, reason ``outside_transcode_hours`` (the message
names the next window), nothing of it is changed, and its row stays queued, so a daemon
on this database encodes it inside a window; the rest of the batch runs as usual.

Stopping: under ``on_error = "fail"`` the first failure stops the batch through the
:class:`BatchController`: pending futures are cancelled, files in progress complete,
the :class:`BatchResult` says ``stopped_early``. SIGINT and SIGTERM stop it the same
way. The pipeline waits for each file's ``flock`` (``wait_for_lock``), so a running
daemon and this command never modify one file at once.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Sequence

import structlog

from vpod import __version__
from vpod.batch import BatchController, new_batch_id
from vpod.config import VPOConfig
from vpod.errors import StoreError
from vpod.exitcodes import SIGNAL_BASE, ExitCode
from vpod.fingerprint import StatKey, fingerprint_path
from vpod.integrations.settings import rename_calls_wanted
from vpod.lanes import OUTSIDE_HOURS, TranscodeDeferred
from vpod.import_gc import imports_uncollected
from vpod.outcomes import VIDEO_DECLINED, Reason
from vpod.policy.selection import PolicySelector
from vpod.progress import ProgressTracker, StatusLine
from vpod.results import BatchResult, FileProcessingResult, display_path, utf8_text
from vpod.targets import Target, Targets, relocate

if TYPE_CHECKING:  # imported in run_process: a run with no file needs no database and no pipeline
    from vpod.db.records import Conforming
    from vpod.db.store import Job, Store
    from vpod.events import EventBus
    from vpod.integrations.renames import RenameCalls
    from vpod.jobs import JobRunner
    from vpod.original.resolver import OriginalResolver

WORKER_PREFIX = "process-"
"""Worker threads are named ``process-<pid>_<n>`` (for people: the Store records who owns
a row as an owner record, :mod:`vpod.db.owners`)."""


class ProcessReport:
    """The outcome of one ``vpod process`` run.

    Attributes:
        batch: the :class:`BatchResult` (``total_files`` counts every file found).
        workers / workers_requested: threads used, and asked for before the CPU cap (``None``:
            neither ``--workers`` nor the config set a count; the cap was used).
        dry_run: nothing was written.
        stop_message: why the batch stopped early (failed file and reason, or signal).
        signal_number: the signal that interrupted the run, if any.
        tools_killed: a second signal killed the tools of the files in progress.
        ignored: files named on the command line that the filters dropped, with why.
        unreadable: folders that could not be listed, with the OS error.
        temp_files_removed: temp files of an interrupted vpod swept at the start.
    """

    __slots__ = ("batch", "workers", "workers_requested", "dry_run", "stop_message", "signal_number", "ignored",
                 "unreadable", "temp_files_removed", "tools_killed")

    def __init__(
        self, batch: BatchResult, workers: int, workers_requested: int | None, dry_run: bool = False,
        stop_message: str | None = None, signal_number: int | None = None,
        ignored: list[tuple[str, str]] | None = None, unreadable: list[tuple[str, str]] | None = None,
        temp_files_removed: list[str] | None = None, tools_killed: bool = False,
    ) -> None:
        self.batch = batch
        self.workers = workers
        self.workers_requested = workers_requested
        self.dry_run = dry_run
        self.stop_message = stop_message
        self.signal_number = signal_number
        self.ignored = [] if ignored is None else ignored
        self.unreadable = [] if unreadable is None else unreadable
        self.temp_files_removed = [] if temp_files_removed is None else temp_files_removed
        self.tools_killed = tools_killed

    @property
    def not_started(self) -> int:
        """Files of the batch that never started (stopped early)."""
        return self.batch.total_files - len(self.batch.results)

    def exit_code(self) -> int:
        """The process exit status (README "Exit codes").

        128 + N when stopped by signal N, as shells report a command ended by a fatal
        signal (Bash manual, 3.7.5 "Exit Status"); 3 stopped early at a failure; 1 a
        file failed or a folder could not be read; else 0 (skips are not failures).
        """
        if self.signal_number is not None:
            return SIGNAL_BASE + self.signal_number
        if self.batch.stopped_early:
            return ExitCode.STOPPED_EARLY
        if self.batch.fail_count or self.unreadable:
            return ExitCode.FILES_FAILED
        return ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        """Every :class:`BatchResult` field plus the run's own, JSON-friendly (``--json``)."""
        return {
            **self.batch.as_dict(),
            "not_started": self.not_started,
            "workers": self.workers,
            "workers_requested": self.workers_requested,
            "dry_run": self.dry_run,
            "stop_message": self.stop_message,
            "ignored": [{"path": p, "reason": r} for p, r in self.ignored],
            "unreadable_folders": [{"path": p, "error": e} for p, e in self.unreadable],
            "temp_files_removed": self.temp_files_removed,
            "exit_code": int(self.exit_code()),
        }


class BatchProcessor:
    """Runs one batch of files on a thread pool; see the module docstring.

    Args:
        files: the files, in input order.
        store: the Store.
        job_runner: the shared per-file pipeline front (``max_attempts = 1``: a
            one-shot run reports failures instead of retrying them later).
        policies: chooses each file's track policy (as the daemon does).
        workers: thread count (already capped).
        controller: ``on_error`` handling and the stop flag.
        progress: the progress line.
        unchanged: the results of the run's files left alone as unchanged
            (:func:`split_unchanged`); they count in the batch's ``total_files``.
    """

    def __init__(
        self,
        files: list[Target],
        *,
        store: Store,
        job_runner: JobRunner,
        policies: PolicySelector,
        workers: int,
        controller: BatchController,
        progress: ProgressTracker,
        unchanged: Sequence[FileProcessingResult] = (),
    ) -> None:
        self.files = files
        self.store = store
        self.job_runner = job_runner
        self.policies = policies
        self.workers = workers
        self.controller = controller
        self.progress = progress
        self.batch = BatchResult(
            batch_id=new_batch_id(), started_at=time.time(), total_files=len(files) + len(unchanged),
            results=list(unchanged),
        )
        self.signal_number: int | None = None
        self.tools_killed = False  # a second signal killed the tools still running
        self.log = structlog.get_logger("vpod")
        self._lock = threading.Lock()
        self._pending: set[Future[FileProcessingResult | None]] = set()
        self._slots = threading.BoundedSemaphore(2 * workers)
        # Transcodes given back while the lane was full: submitted again when a slot frees.
        self._waiting: list[Target] = []
        self._deferrals: dict[int, TranscodeDeferred] = {}  # job id → why the lane gave it back
        self._changed = threading.Condition(self._lock)  # a file ended or was given back
        job_runner.on_deferred = self._deferred

    # -- signals -------------------------------------------------------------------

    def install_signal_handlers(self, on_repeat: Callable[[], object]) -> Callable[[], None]:
        """SIGINT/SIGTERM stop the batch like a failure under ``fail``; a second one calls
        ``on_repeat`` (kill the tools still running). Returns a function that restores
        the previous handlers. Main thread only."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # No futures are touched here: the main loop cancels them after the flag is set.
            if self.signal_number is not None:
                self.tools_killed = True
                on_repeat()
                return
            self.signal_number = signum
            self.controller.signal_stop()
            self.progress.line.write(
                f"vpod: {signal.Signals(signum).name}: no new file starts; files in progress finish "
                "(send it again to kill their tools)\n"
            )

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

        return restore

    # -- running -------------------------------------------------------------------

    def run(self) -> BatchResult:
        """Process every file (or until stopped); returns the closed batch.

        Never raises for a file: media problems, database errors and bugs all become
        that file's failed result.
        """
        clock = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"{WORKER_PREFIX}{os.getpid()}") as pool:
            for target in self.files:
                self._submit_waiting(pool)  # a transcode whose slot is free goes before new files
                self._slots.acquire()  # backpressure: at most 2 × workers submitted ahead
                if self.controller.should_stop():
                    self._slots.release()
                    break
                self._submit(pool, target)
            self._drain_waiting(pool)
            if self.controller.should_stop():
                self._cancel_pending()
        self.batch.ended_at = time.time()
        self.batch.total_duration_seconds = time.monotonic() - clock
        # A failure under "fail" stops the batch even when it was the last file: the
        # stop was triggered, and the exit status must not depend on input order.
        self.batch.stopped_early = self.controller.first_failure is not None or self.signal_number is not None
        return self.batch

    def _submit(self, pool: ThreadPoolExecutor, target: Target) -> None:
        """Run ``target`` on ``pool`` (a slot of :attr:`_slots` taken by the caller)."""
        future = pool.submit(self._run_one, target)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._collect)

    def _lane_free(self) -> bool:
        lane = self.job_runner.lane
        return lane is None or lane.running() < lane.max_transcodes

    def _submit_waiting(self, pool: ThreadPoolExecutor) -> None:
        """Submit the transcodes given back while the lane was full, while it has room."""
        while True:
            with self._lock:
                if not self._waiting or not self._lane_free() or self.controller.should_stop():
                    return
                target = self._waiting.pop(0)
            self._slots.acquire()
            self._submit(pool, target)

    def _drain_waiting(self, pool: ThreadPoolExecutor) -> None:
        """Every file was submitted: wait until the files in progress end and the
        transcodes given back have run (or the batch stops)."""
        while True:
            self._submit_waiting(pool)
            with self._changed:
                if self.controller.should_stop() or not (self._pending or self._waiting):
                    return
                if self._waiting and not self._pending:
                    target = self._waiting.pop(0)  # nothing holds the lane any more: run it
                else:
                    self._changed.wait(1.0)  # a file ends (notify) or the lane frees
                    continue
            self._slots.acquire()
            self._submit(pool, target)

    def _deferred(self, job: Job, deferral: TranscodeDeferred) -> None:
        """:class:`JobRunner` gave ``job`` back: its transcode may not start now."""
        with self._lock:
            self._deferrals[job.id] = deferral

    def _run_one(self, target: Target) -> FileProcessingResult | None:
        """Worker thread body for one file; ``None`` when the batch stopped before it,
        or when it waits for a slot of the transcode lane (:attr:`_waiting`)."""
        if self.controller.should_stop():
            return None
        worker = threading.current_thread().name
        self.progress.start_file()
        result = self._process(target, worker)
        if result is None:
            self.progress.put_back()
            return None
        self.progress.complete_file(not result.failed)
        if self.controller.record(result):
            self._cancel_pending()
        return result

    def _process(self, target: Target, worker: str) -> FileProcessingResult | None:
        started, clock = time.time(), time.monotonic()

        def own_result(**fields: Any) -> FileProcessingResult:
            return FileProcessingResult(
                path=target.path, duration_seconds=time.monotonic() - clock, started_at=started,
                ended_at=time.time(), worker=worker, **fields,
            )

        try:
            fingerprint, stat_key = _fingerprint(target)
            job = self.store.job_for_path(target.root, target.relpath, fingerprint, stat_key)
            result = None if job is None else self.job_runner.run(job, self.policies, worker, self.batch.batch_id)
        except StoreError as exc:
            self.log.error("result_not_recorded", path=display_path(target.path), worker=worker, error=str(exc))
            return own_result(success=False, reason=Reason.DATABASE_ERROR, permanent=False,
                              error=f"{target.path}: the database failed: {exc}")
        except Exception as exc:  # a bug must not end the batch; it is reported as this file's failure
            self.log.exception("worker_error", path=display_path(target.path), worker=worker)
            return own_result(success=False, reason=Reason.INTERNAL_ERROR, permanent=False,
                              error=f"{target.path}: internal error: {exc!r}")
        with self._lock:
            deferral = self._deferrals.pop(job.id, None) if job is not None else None
            if result is None and deferral is not None and deferral.reason != OUTSIDE_HOURS:
                self._waiting.append(target)  # the lane is full: run again when a slot frees
                self._changed.notify_all()
                return None
        if result is None and deferral is not None:
            return own_result(
                success=False, skipped=True, reason=Reason.OUTSIDE_TRANSCODE_HOURS, permanent=False,
                error=f"{deferral}; nothing was changed (vpod process does not wait for a window; "
                "the row stays queued for a daemon)",
            )
        if result is None:
            return own_result(
                success=False, skipped=True, reason=Reason.IN_PROGRESS_ELSEWHERE, permanent=False,
                error=f"{target.path}: being processed by another vpod (the daemon or another vpod process); left alone",
            )
        return result

    def _collect(self, future: Future[FileProcessingResult | None]) -> None:
        """Done callback: keep the result (completion order) and free the slot, always,
        or the submitting loop would wait for it forever."""
        try:
            result = None if future.cancelled() else future.result()
        except Exception:  # _run_one catches everything; this is a last line of defence
            self.log.exception("worker_error")
            result = None
        finally:
            self._slots.release()
        with self._lock:
            self._pending.discard(future)
            if result is not None:
                self.batch.results.append(result)
            self._changed.notify_all()

    def _cancel_pending(self) -> None:
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.cancel()  # False for running ones: those complete


def split_unchanged(
    files: list[Target], store: Store, policies: PolicySelector
) -> tuple[list[Target], list[FileProcessingResult]]:
    """Split ``files`` (order kept) into those to process and the results of those whose
    ``lstat`` proves them untouched since vpod left them conforming under the policy that
    would judge them now (:func:`vpod.unchanged.left_conforming`): successes with
    ``unchanged`` set, the policy's name as recorded. No file is read and no tool runs:
    one :meth:`Store.conforming_stats` query per folder (consecutive files of one folder
    share it) and one ``lstat`` per file the Store recorded as done.

    Raises:
        StoreError: the database cannot be read.
    """
    from vpod.unchanged import left_conforming  # moved here: its records module only with a file

    libraries = {library.path: library.name for library in store.libraries() if library.path is not None}
    todo: list[Target] = []
    unchanged: list[FileProcessingResult] = []
    folder_key: tuple[Path, bytes] | None = None
    recorded: dict[bytes, Conforming] = {}
    for target in files:
        relpath = target.relpath
        key = (target.root, relpath.rpartition(b"/")[0])
        if key != folder_key:
            folder_key, recorded = key, store.conforming_stats(*key)
        entry = recorded.get(relpath)
        if entry is not None:
            try:
                st = os.lstat(target.path)
            except OSError:
                st = None  # the pipeline records why it cannot be read
            if st is not None:
                digest = policies.digest(target.path, root=target.root, library=libraries.get(str(target.root)))
                if left_conforming(st, entry, digest):
                    unchanged.append(_unchanged_result(target.path, entry))
                    continue
        todo.append(target)
    return todo, unchanged


def _unchanged_result(path: Path, entry: Conforming) -> FileProcessingResult:
    """The result of a file :func:`split_unchanged` leaves alone: a success, or for one whose
    video encode vpod declined (``not_smaller``: not smaller; ``hdr_not_kept`` /
    ``interlaced_not_kept`` / ``several_video_tracks``: it could not keep the picture) that skip again, permanent."""
    now = time.time()
    why = {
        Reason.NOT_SMALLER: "the encode was not smaller under keep_if_larger",
        Reason.HDR_NOT_KEPT: "an encode would not keep its HDR or bit depth",
        Reason.INTERLACED_NOT_KEPT: "an encode would not keep its interlacing",
        Reason.SEVERAL_VIDEO_TRACKS: "it has more than one video track to encode",
    }
    reason = next((r for r in VIDEO_DECLINED if r == entry.reason), Reason.NOT_SMALLER)
    kept = {} if entry.reason is None else {
        "success": False, "skipped": True, "reason": reason, "permanent": True,
        "error": f"{path}: unchanged since vpod kept its video as it was ({reason}: {why[reason]}); --force looks again",
    }
    fields: dict[str, Any] = {"success": True, **kept}
    return FileProcessingResult(
        path=path, final_path=path, started_at=now, ended_at=now, policy=entry.policy_name, unchanged=True, **fields
    )


def _fingerprint(target: Target) -> tuple[str | None, StatKey | None]:
    """Content identity for the Store; no fingerprint for what the pipeline will refuse
    anyway (symlinks, FIFOs, folders) or cannot read (it records why)."""
    try:
        st = os.lstat(target.path)
        if not stat.S_ISREG(st.st_mode):
            return None, StatKey.of(st)
    except OSError:
        return None, None
    try:
        return fingerprint_path(target.path)
    except OSError:
        return None, StatKey.of(st)


def run_process(
    config: VPOConfig,
    targets: Targets,
    *,
    workers: int,
    workers_requested: int | None,
    dry_run: bool,
    line: StatusLine,
    force: bool = False,
) -> ProcessReport:
    """Run the batch and record it (``source = "process"``); returns the report.

    Args:
        config: the configuration, with CLI overrides applied (``policy.on_error``).
        targets: the files and what was dropped while collecting them.
        workers: threads to use (already capped); ``workers_requested`` is for the report.
        dry_run: plan only; never write a media file.
        line: stderr, for the progress line.
        force: look at every file, also those whose stat proves them unchanged since vpod
            left them conforming under the policy now in force (else counted, not run).

    Raises:
        StoreError: the database cannot be opened or migrated (nothing was processed).
    """
    log = structlog.get_logger("vpod")
    ignored = [(display_path(p), why) for p, why in targets.ignored]
    unreadable = [(display_path(p), err) for p, err in targets.unreadable]
    for path, why in ignored:
        log.warning("path_ignored", path=path, reason=why)
    for path, error in unreadable:
        log.warning("folder_unreadable", path=path, error=error)
    controller = BatchController(config.policy.on_error)
    progress = ProgressTracker(len(targets.files), line)
    if not targets.files:
        empty = BatchResult(batch_id=new_batch_id(), started_at=time.time(), ended_at=time.time())
        return ProcessReport(empty, workers, workers_requested, dry_run, ignored=ignored, unreadable=unreadable)

    # Moved here from the top of the module: the database and the pipeline, only when
    # there is a file to process (contrib/bench/startup.py); collected as the command's are.
    with imports_uncollected():
        from vpod.db.factory import open_store
        from vpod.events import BatchClosed, FileFinished, FileStarted
        from vpod.heartbeat import OwnerHeartbeat
        from vpod.jobs import JobRunner
        from vpod.lanes import TranscodeLane
        from vpod.leases import LeaseKeeper
        from vpod.library_paths import store_library_paths
        from vpod.media.encoders import TranscodeSettings
        from vpod.media.limits import ToolLimits
        from vpod.media.tools import ToolRunner
        from vpod.original.resolver import OriginalResolver
        from vpod.pipeline import FileProcessor, PipelineOptions
        from vpod.tempfiles import log_sweep, sweep_temps
        from vpod.watch.ownership import MarkerLookup
        from vpod.writability import PROCESS_AGAIN

    store = open_store(config.database, node=config.node.node_name)
    try:
        store.register_owner("process", node=config.node.node_name, version=__version__, workers=workers)
        # The config's library names, as the daemon gives them: a file of a watched
        # folder is the same row for both.
        store.bind_libraries(config.watch.library_names)
        # A file named through another name of a library folder (a bind mount, a symlink,
        # another node's mount with the library's marker) is that library's row.
        targets = relocate(targets, store_library_paths(store, config.watch.paths))
        abandoned = len(store.abandon_dead_owners())
        # A crashed run's temp files (this command's or the daemon's): only those no live
        # vpod owns go; a dry run changes nothing on disk, so it leaves them for later.
        swept: list[str] = []
        if not dry_run:
            sweep = sweep_temps(store)
            log_sweep(sweep)
            swept = [display_path(p) for p in sweep.removed]
        policies = PolicySelector.from_config(config)
        files, unchanged = (targets.files, []) if force else split_unchanged(targets.files, store, policies)
        quiet = log.bind()  # one logger, not one per line (10,000 files, usually below the level)
        for result in unchanged:
            quiet.debug("file_unchanged", path=display_path(result.path), policy=result.policy)
        progress.count_unchanged(len(unchanged))
        runner = ToolRunner(ToolLimits.from_config(config.processing))
        # The same leases as the daemon's (docs/architecture.md "Claims and leases").
        leases_done = threading.Event()
        leases = LeaseKeeper(
            store, runner, leases_done, lease_seconds=config.database.lease_seconds,
            heartbeat_seconds=config.database.lease_heartbeat_seconds,
        )
        options = PipelineOptions(
            roots=targets.roots, follow_symlinks=config.watch.follow_symlinks, dry_run=dry_run, wait_for_lock=True,
            # Files in the library of a running vpod with another database are skipped.
            refusal=MarkerLookup(store.database_id()).refusal,
            confirm_lease=leases.confirm, claimed_lock_wait=leases.lock_wait_seconds,
            try_again=PROCESS_AGAIN,  # its next run tries a failed file again: no `vpod retry` needed
        )
        give_up = threading.Event()  # a second signal: stop waiting for a locked database too
        events = process_events()
        # vpod process never retries a file: its failure text says so (not "tried again later").
        original = OriginalResolver(config.arr, retried=False)
        renames = _rename_calls(config, original)
        if renames is not None:  # a renamed file: the *arr rescans it, media servers refresh it
            events.subscribe(renames)
        job_runner = JobRunner(
            store, FileProcessor(runner, options, leases.temps, original, TranscodeSettings.from_config(config.processing)),
            max_attempts=1, stop=give_up,
            leases=leases, lease_seconds=config.database.lease_seconds, lane=TranscodeLane.from_config(config.processing),
            on_outcome=lambda result, retrying: events.publish(FileFinished(result, retrying)),
            on_start=lambda job, worker, batch_id: events.publish(FileStarted(job.path, worker, batch_id)),
        )
        processor = BatchProcessor(
            files, store=store, job_runner=job_runner, policies=policies,
            workers=workers, controller=controller, progress=progress, unchanged=unchanged,
        )
        log.info(
            "process_started", batch_id=processor.batch.batch_id, total_files=len(targets.files),
            unchanged=len(unchanged), workers=workers, on_error=config.policy.on_error, dry_run=dry_run,
            abandoned_rows=abandoned, temp_files_removed=len(swept), force=force,
        )
        in_main = threading.current_thread() is threading.main_thread()

        def on_repeat() -> None:
            give_up.set()
            runner.kill_all()

        restore = processor.install_signal_handlers(on_repeat=on_repeat) if in_main else None
        beating = threading.Event()
        heartbeat = threading.Thread(target=OwnerHeartbeat(store).run, args=(beating,), name="vpod-heartbeat", daemon=True)
        heartbeat.start()
        keepers = [
            threading.Thread(target=body, name=name, daemon=True)
            for name, body in (("vpod-lease-renew", leases.renew_loop), ("vpod-lease-watch", leases.watch_loop))
        ]
        for keeper in keepers:
            keeper.start()
        try:
            batch = processor.run()
        finally:
            beating.set()
            leases_done.set()
            heartbeat.join()
            for keeper in keepers:
                keeper.join()
            if restore is not None:
                restore()
            progress.finish()
        if renames is not None:
            renames.close()  # what is still queued, for at most a few seconds
        report = ProcessReport(
            batch, workers, workers_requested, dry_run, signal_number=processor.signal_number,
            tools_killed=processor.tools_killed, ignored=ignored, unreadable=unreadable, temp_files_removed=swept,
        )
        report.stop_message = _stop_message(report, controller)
        if report.stop_message:
            log.error("batch_stopped", batch_id=batch.batch_id, reason=report.stop_message, not_started=report.not_started)
        try:
            store.record_batch(batch, "process")
        except StoreError as exc:
            log.error("batch_not_recorded", batch_id=batch.batch_id, error=str(exc))
        events.publish(BatchClosed(batch, "process"))  # logged batch_completed
        try:
            store.end_owner()
        except StoreError as exc:  # its heartbeat goes stale instead
            log.warning("heartbeat_failed", error=str(exc))
        return report
    finally:
        store.close()


def _rename_calls(config: VPOConfig, resolver: OriginalResolver) -> RenameCalls | None:
    """The rescan and refresh calls after renames (:mod:`vpod.integrations.renames`), or
    ``None`` when the config asks for none (then nothing of it is imported)."""
    if not rename_calls_wanted(config.arr, config.media_servers):
        return None
    from vpod.integrations.renames import process_rename_calls

    return process_rename_calls(config, resolver)


def process_events() -> EventBus:
    """The event bus of one ``vpod process`` run: logging subscribes (the daemon's
    subscribers are in :func:`vpod.daemon.wiring.wire`)."""
    from vpod.eventlog import EventLog  # moved here with run_process's imports
    from vpod.events import EventBus

    events = EventBus()
    events.subscribe(EventLog())
    return events


def _stop_message(report: ProcessReport, controller: BatchController) -> str | None:
    if report.signal_number is not None:
        name = signal.Signals(report.signal_number).name
        if report.tools_killed:
            return (
                f"interrupted by {name} twice: {report.not_started} file(s) not started; the files in progress "
                "were stopped, their tools killed (each fails as killed and is left as it was: run again to do them)"
            )
        return f"interrupted by {name}: {report.not_started} file(s) not started, files in progress completed"
    failure = controller.first_failure
    if failure is None:
        return None
    return (
        f"{display_path(failure.path)} failed ({failure.reason}): {utf8_text(failure.error)}; "
        f'on_error = "fail" stopped the batch: {report.not_started} file(s) not started'
    )
