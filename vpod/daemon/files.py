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
from vpod.policy.policy import Policy
from vpod.results import FileProcessingResult


class FileHandler:
    """Runs one job for a worker (:class:`vpod.worker.JobHandler`).

    Args:
        job_runner: the shared per-file pipeline with its retry rules.
        feeder: told when a job leaves memory.
        windows: the batch windows files are counted in.
        controller: the ``on_error`` rule; while it says stop, jobs stay queued.
        policy: the policy in force (reloads replace it; read once per file).
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
        policy: Policy,
        active_changed: Callable[[int], None],
        pause: Callable[[FileProcessingResult], None],
        wake: Callable[[], None],
    ) -> None:
        self.job_runner = job_runner
        self.feeder = feeder
        self.windows = windows
        self.controller = controller
        self.policy = policy
        self.active_changed = active_changed
        self.pause = pause
        self.wake = wake
        self.log = structlog.get_logger("vpod")

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[policy]`` (from the next file on) and ``max_attempts``."""
        self.policy = config.policy
        self.job_runner.max_attempts = config.processing.max_attempts

    def release(self, job: Job) -> None:
        """Give ``job`` back: it stays queued in the database."""
        self.feeder.done(job)

    def __call__(self, job: Job, worker: str) -> None:
        """Process ``job`` as ``worker``; while paused it stays queued. Never raises: a
        database error is logged ``result_not_recorded``, a bug ``worker_error`` (the job
        is redone at the next start)."""
        if self.controller.should_stop():
            self.feeder.done(job)  # paused: the job stays queued in the database
            return
        policy = self.policy  # a reload mid-file applies from the next one
        batch_id = self.windows.start_file(job.id)
        self.active_changed(+1)
        result = None
        try:
            result = self.job_runner.run(job, policy, worker, batch_id)
        except StoreError as exc:
            self.log.error("result_not_recorded", path=str(job.path), error=str(exc))
        except Exception:  # a bug JobRunner could not even record: the job is redone at restart
            self.log.exception("worker_error", path=str(job.path))
        finally:
            self.active_changed(-1)
            self.feeder.done(job, requeued=result is None or result.retrying)
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
