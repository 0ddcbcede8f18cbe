"""The per-file handler the daemon's workers call: one job through the pipeline, then
its batch window, the pause rule and the events."""

from __future__ import annotations

from typing import Callable

import structlog

from vpod.batch import BatchController, BatchWindows
from vpod.config import VPOConfig
from vpod.db.store import StoreError
from vpod.db.store import Job
from vpod.feeder import Feeder
from vpod.jobs import JobRunner
from vpod.policy.selection import PolicySelector
from vpod.results import FileProcessingResult, display_path


class FileHandler:
    """Runs one job for a worker (:class:`vpod.worker.JobHandler`).

    Args:
        job_runner: the shared per-file pipeline with its retry rules.
        feeder: told when a job leaves memory.
        windows: the batch windows files are counted in.
        controller: the ``on_error`` rule; while it says stop, jobs stay queued.
        policies: chooses the policy of each file (reloads replace it; read once per file).
        active_changed: +1 when a file starts, -1 when it ends.
        pause: called with the result that stopped the batch under ``on_error = "fail"``.
        wake: wakes the main loop (a finished file may close a batch).
    """

    def __init__(
        self,
        *,
        job_runner: JobRunner,
        feeder: Feeder,
        windows: BatchWindows,
        controller: BatchController,
        policies: PolicySelector,
        active_changed: Callable[[int], None],
        pause: Callable[[FileProcessingResult], None],
        wake: Callable[[], None],
    ) -> None:
        self.job_runner = job_runner
        self.feeder = feeder
        self.windows = windows
        self.controller = controller
        self.policies = policies
        self.active_changed = active_changed
        self.pause = pause
        self.wake = wake
        self.log = structlog.get_logger("vpod")

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply reloaded policies (``[policy]``, ``[policies]``, ``[libraries]``: from the
        next file on) and ``max_attempts``."""
        self.policies = PolicySelector.from_config(config)
        self.job_runner.max_attempts = config.processing.max_attempts

    def release(self, job: Job) -> None:
        """Give the claimed ``job`` back untouched: queued again, its attempt given back
        (a database that cannot be written now: its lease ends and it is claimed again)."""
        try:
            self.job_runner.store.release(job)
        except StoreError as exc:
            self.log.warning("job_not_released", path=display_path(job.path), error=str(exc))
        self.feeder.done(job, requeued=True)

    def __call__(self, job: Job, worker: str) -> None:
        """Process ``job`` as ``worker``; while paused, or while the database cannot record
        outcomes (:meth:`vpod.feeder.Feeder.holding`), it is given back (queued). Never raises: a
        database error is logged ``result_not_recorded`` (all new work then waits for a
        backoff of 2 s doubling to 5 min; ``result_write_recovered`` when an outcome is
        recorded again), a bug ``worker_error`` (the job is redone at the next start)."""
        if self.controller.should_stop():
            self.release(job)  # paused: the job goes back to the queue
            return
        if self.feeder.holding() > 0:
            self.release(job)  # the database cannot record outcomes: the job waits in it
            return
        policies = self.policies  # a reload mid-file applies from the next one
        batch_id = self.windows.start_file(job.id)
        self.active_changed(+1)
        result = None
        not_recorded = False
        try:
            result = self.job_runner.run(job, policies, worker, batch_id)
        except StoreError as exc:
            # E.g. the database's disk is full: hold all new work for a backoff (one line
            # per step), then try again; the job stays in the database and is redone.
            not_recorded = True
            step = self.feeder.record_failed(job)
            if step is not None:
                self.log.error(
                    "result_not_recorded", path=display_path(job.path), error=str(exc),
                    attempt=step[0], retry_in_seconds=step[1],
                )
        except Exception:  # a bug JobRunner could not even record: the job is redone at restart
            self.log.exception("worker_error", path=str(job.path))
        finally:
            self.active_changed(-1)
            if not not_recorded:
                self.feeder.done(job, requeued=result is None or result.retrying)
        if result is not None:
            episode = self.feeder.recorded()
            if episode is not None:
                self.log.info(
                    "result_write_recovered", path=display_path(job.path), failed_tries=episode[0],
                    failed_for_seconds=round(episode[1], 3),
                )
        if result is None:
            self.windows.cancel_file(batch_id)  # not processed here after all
        elif result.retrying:
            self.windows.defer_file(batch_id, job.id)  # not finished: its retry stays in this batch
        else:
            stops = self.controller.record(result)
            self.windows.finish_file(batch_id, result, stopped_early=stops)
            if stops:
                self.pause(result)
        self.wake()
