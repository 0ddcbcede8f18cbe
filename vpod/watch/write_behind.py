"""Write behind a folder walk: the database writes of a walk's batches on a second thread.

A catch-up scan spends about half its time in the database write of each batch
(``Store.enqueue_many``; BENCHMARKS.md, catch-up scan). SQLite's ``sqlite3_step`` and the
walk's system calls both release the GIL, so while one batch is written the walk can
read the next one. At most :data:`WriteBehind.DEPTH` batches wait, so memory stays
bounded and the database is never far behind the walk.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable


class WriteBehind:
    """One thread that runs the jobs :meth:`submit` gives it, in order, for one walk.

    The thread starts with the first job and ends at :meth:`close`, which waits until
    every job ran: a walk's counts (``scan_completed``) and its rows are complete when
    it returns. A job that raises stops the thread; the exception is raised again in
    the walk's thread by the next :meth:`submit` or by :meth:`close` (as if the walk had
    run it itself), and later jobs are not run.

    Args:
        name: the thread's name.
    """

    DEPTH = 1
    """Jobs waiting besides the one running: :meth:`submit` blocks beyond that."""

    def __init__(self, name: str = "vpod-walk-writer") -> None:
        self.name = name
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=self.DEPTH)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the writer thread after those submitted before; blocks while
        :data:`DEPTH` jobs wait.

        Raises:
            Exception: what an earlier job raised.
        """
        self._raise()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def close(self) -> None:
        """Wait until every submitted job ran, and end the thread.

        Raises:
            Exception: what a job raised.
        """
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._error is not None:
                continue  # a job failed: the rest are dropped, the walk's thread raises
            try:
                job()
            except BaseException as exc:  # raised again in the walk's thread
                self._error = exc
