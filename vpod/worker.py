"""The daemon's worker threads: one job at a time through the shared pipeline."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from vpod.db.pool import DatabaseBusy, DatabaseError
from vpod.db.store import Job
from vpod.results import display_path

if TYPE_CHECKING:
    from vpod.daemon import Daemon


class Worker:
    """One worker thread: take a job, run it, record it; checks the stop flags between jobs.

    A worker retires (its thread ends) between jobs when a reload lowered the worker count.
    """

    def __init__(self, name: str, daemon: "Daemon") -> None:
        self.name = name
        self.daemon = daemon
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """Thread body."""
        d = self.daemon
        while True:
            job = d.jobs.get()
            if job is None:  # shutdown, or a wake-up to retire
                if d.stop.is_set() or d.retire(self):
                    return
                continue
            if d.stop.is_set():
                d.feeder.done(job)
                return
            if d.controller.should_stop():
                d.feeder.done(job)  # paused: the job stays queued in the database
                continue
            if d.feeder.holding() > 0:
                d.feeder.done(job)  # the database cannot record outcomes: the job waits in it
                continue
            self._process(job)
            if d.retire(self):
                return

    def _process(self, job: Job) -> None:
        d = self.daemon
        batch_id = d.windows.start_file(job.id)
        d.active_changed(+1)
        result = None
        not_recorded = False
        try:
            # The policy is read once per file: a reload mid-file applies from the next one.
            result = d.job_runner.run(job, d.config.policy, self.name, batch_id)
        except (DatabaseBusy, DatabaseError) as exc:
            # E.g. the database's disk is full: hold all new work for a backoff (one line
            # per step), then try again; the job stays in the database and is redone.
            not_recorded = True
            step = d.feeder.record_failed(job)
            if step is not None:
                d.log.error(
                    "result_not_recorded", path=display_path(job.path), error=str(exc),
                    attempt=step[0], retry_in_seconds=step[1],
                )
        except Exception:  # a bug JobRunner could not even record: the job is redone at restart
            d.log.exception("worker_error", path=str(job.path))
        finally:
            d.active_changed(-1)
            if not not_recorded:
                d.feeder.done(job, requeued=result is None or result.retrying)
        if result is not None:
            episode = d.feeder.recorded()
            if episode is not None:
                d.log.info(
                    "result_write_recovered", path=display_path(job.path), failed_tries=episode[0],
                    failed_for_seconds=round(episode[1], 3),
                )
        if result is None:
            d.windows.cancel_file(batch_id)  # not processed here after all
        elif result.retrying:
            d.windows.defer_file(batch_id, job.id)  # not finished: its retry stays in this batch
        else:
            stops = d.controller.record(result)
            d.windows.finish_file(batch_id, result, stopped_early=stops)
            if stops:
                d.pause(result)
        d.wake()
