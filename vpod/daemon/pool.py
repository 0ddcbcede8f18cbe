"""The worker pool: worker threads started, resized on reload, retired, counted."""

from __future__ import annotations

import threading
from typing import Callable

import structlog

from vpod.config import VPOConfig
from vpod.cpu import workers_for
from vpod.feeder import Feeder
from vpod.worker import JobHandler, Worker


class ActiveFiles:
    """How many files are in progress now; thread-safe.

    Args:
        changed: called after each change (the ``STATUS=`` line shows the count).
    """

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self.changed = changed
        self._count = 0
        self._lock = threading.Lock()

    def add(self, delta: int) -> None:
        """A worker started (+1) or ended (-1) a file."""
        with self._lock:
            self._count += delta
        self.changed()

    def count(self) -> int:
        """Files in progress now."""
        with self._lock:
            return self._count


class WorkerPool:
    """Owns the worker threads and the count of files in progress.

    Args:
        feeder: where free workers claim their jobs; its poke wakes idle workers (to
            stop, or to retire).
        stop: the daemon's stop Event.
        handler: what a worker does with each job.
        spawn: starts a thread (:meth:`vpod.daemon.threads.Threads.spawn`).
        active: the count of files in progress the handler keeps.
        worker_class: the class of workers (tests may pass another).
    """

    def __init__(
        self,
        feeder: Feeder,
        stop: threading.Event,
        handler: JobHandler,
        spawn: Callable[[str, Callable[[], None]], threading.Thread],
        active: ActiveFiles,
        worker_class: type[Worker] = Worker,
    ) -> None:
        self.feeder = feeder
        self.stop = stop
        self.handler = handler
        self.spawn = spawn
        self.worker_class = worker_class
        self.log = structlog.get_logger("vpod")
        self.workers: list[Worker] = []
        self.target = 0
        self._seq = 0
        self._lock = threading.Lock()
        self.active_files = active

    def _create_worker(self) -> Worker:
        self._seq += 1
        return self.worker_class(
            f"worker-{self._seq}", source=self.feeder, stop=self.stop, handler=self.handler, retire=self.retire
        )

    def resize(self, config: VPOConfig) -> int:
        """Start or retire workers to reach ``config``'s ``[processing] workers``
        (capped, ``workers_capped`` logged; not set: half the CPUs, plus
        ``max_transcodes`` when a policy encodes: :func:`vpod.cpu.workers_for`); returns
        the count used. Surplus workers retire between files: idle ones are woken by
        sentinels now."""
        workers = workers_for(config)
        if workers.capped:
            self.log.warning(
                "workers_capped", requested=workers.requested, used=workers.used, reason=workers.explanation()
            )
        count = workers.used
        with self._lock:
            self.target = count
            while len(self.workers) < count:
                worker = self._create_worker()
                worker.thread = self.spawn(f"vpod-{worker.name}", worker.run)
                self.workers.append(worker)
            surplus = len(self.workers) - count
        if surplus > 0:
            self.wake_idle()
        return count

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply a reloaded ``[processing] workers`` (or, when not set, reloaded policies
        that start or stop encoding)."""
        self.resize(config)

    def retire(self, worker: Worker) -> bool:
        """Asked by a worker between jobs: True (and forgotten) when there are too many."""
        with self._lock:
            if worker in self.workers and len(self.workers) > self.target:
                self.workers.remove(worker)
                self.log.info("worker_retired", worker=worker.name, workers=len(self.workers))
                return True
        return False

    def wake_idle(self) -> None:
        """Wake the idle workers (to stop or retire); busy ones see the stop flag or
        retire after their current file."""
        self.feeder.poke()

    def count(self) -> int:
        """Worker threads now (retiring ones excluded)."""
        with self._lock:
            return len(self.workers)

    def dead_threads(self) -> list[str]:
        """Names of workers whose thread ended without retiring."""
        with self._lock:
            threads = [w.thread for w in self.workers if w.thread is not None]
        return [t.name for t in threads if not t.is_alive()]

    def active(self) -> int:
        """Files in progress now."""
        return self.active_files.count()
