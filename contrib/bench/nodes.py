"""Several nodes: claims on PostgreSQL against SQLite, and one library shared by 1, 2 and 3 nodes.

Claim + finish: one thread of this process records whole claims through the Store, as
a worker does: the files are queued first (``enqueue_many``, not timed), then each is
claimed (``claim``: one statement, a lease token and ``lease_until``) and its result
recorded with three tracks (``finish``); the figure is the time per file of that
claim + finish pair. SQLite is a file in the work folder; PostgreSQL is a server of
this machine's own (``initdb`` + ``pg_ctl``, tests/support/postgres.py: fsync off, on
127.0.0.1 over TCP), so the figure is the cost of the engine and its round trips, not
of a network.

Nodes: 1, 2 and then 3 ``vpod run`` processes (workers 1 each, the default lease of
60 s and heartbeat of 15 s) on one fresh PostgreSQL database, each reaching the one
library folder through a path of its own (a symlink), are started; then this process
writes the tiny header-only MKVs into the library. The figure is the time from the
first ``file_started`` to the last ``file_processed``, over every node's log. Each
file must be processed exactly once, by one node, and end with English as its
default audio track; no speedup is expected where the nodes share 2 CPUs (the CPU
count is in the header), none may lose or repeat a file.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from common import REPO, BenchFailure, Daemon, MediaSource, Row, check_normalized, parse_ts

_TRACKS_NOTE = "claim + finish with a result row of three tracks"


@contextlib.contextmanager
def postgres_server() -> Iterator[Any]:
    """A PostgreSQL server of this machine's own, stopped and removed after
    (tests/support/postgres.py's :func:`running_postgres`).

    Raises:
        BenchFailure: initdb/pg_ctl are missing (Debian: ``apt-get install postgresql``).
    """
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from support.postgres import running_postgres
    finally:
        sys.path.remove(str(REPO / "tests"))
    try:
        with running_postgres() as server:
            yield server
    except RuntimeError as exc:
        raise BenchFailure(str(exc)) from None


def claim_finish_ms(open_store: Callable[[], Any], files: int, tag: str) -> float:
    """Milliseconds per file of ``claim`` + ``finish`` on a store ``open_store()`` opens."""
    from vpod.db.store import EnqueueEntry, Outcome
    from vpod.fingerprint import StatKey
    from vpod.media.model import Track
    from vpod.results import FileProcessingResult

    store = open_store()
    try:
        root = Path("/bench") / tag
        store.bind_libraries({root: f"bench-{tag}"})
        store.register_owner("daemon", node=f"bench-{tag}", version="bench", workers=1)
        entries = [
            EnqueueEntry(root, f"f{i:05d}.mkv".encode(), f"3000:{tag}{i}", StatKey(3000, i, i, 1))
            for i in range(files)
        ]
        store.enqueue_many(entries)
        tracks = (Track(0, "video", "mpeg4", "und", None, True, False, None),
                  Track(1, "audio", "aac", "eng", None, True, False, 1),
                  Track(2, "audio", "aac", "jpn", None, False, False, 1))
        done = 0
        start = time.perf_counter()
        while (job := store.claim("bench-w0", "bench")) is not None:
            result = FileProcessingResult(path=job.path, success=True, changes=2, duration_seconds=0.1,
                                          actions=("track 1: set default flag on",))
            store.finish(job, Outcome(result, f"{job.fingerprint}-after", StatKey(3000, done, done, 2), None, tracks),
                         "bench")
            done += 1
        seconds = time.perf_counter() - start
        if done != files:
            raise BenchFailure(f"claim + finish ({tag}): {done} of {files} files claimed")
        return 1000 * seconds / files
    finally:
        store.close()


def claims(work: Path, server: Any, *, files: int, runs: int) -> list[Row]:
    """Rows: claim + finish per file on SQLite and on PostgreSQL, and their ratio."""
    from vpod.config import DatabaseConfig
    from vpod.db.factory import open_store

    sqlite, postgres, ratio = [], [], []
    for run in range(runs):
        lite = claim_finish_ms(lambda: open_store(DatabaseConfig(path=work / f"claims-{run}.db")), files, f"s{run}")
        database = server.database(work)
        pg = claim_finish_ms(lambda: open_store(database, node="bench"), files, f"p{run}")
        sqlite.append(lite)
        postgres.append(pg)
        ratio.append(pg / lite)
    note = f"{files} files per run, one thread, {_TRACKS_NOTE}"
    return [
        Row("nodes", "claim + finish per file, SQLite (WAL, one file)", sqlite, "ms", note=note),
        Row("nodes", "claim + finish per file, PostgreSQL (127.0.0.1, TCP)", postgres, "ms"),
        Row("nodes", "PostgreSQL ÷ SQLite, claim + finish", ratio, "×"),
    ]


def shared_library(work: Path, media: MediaSource, server: Any, *, nodes: int, files: int,
                   settle_seconds: float) -> tuple[float, list[int]]:
    """(seconds from the first start to the last done, files done by each node) for
    ``files`` header-only files dropped into a library ``nodes`` nodes share.

    Raises:
        BenchFailure: a file was lost, processed twice, failed, or not normalized.
    """
    database = server.database(work)
    library = work / f"library-{nodes}"
    library.mkdir(parents=True)
    daemons: list[Daemon] = []
    try:
        for n in range(nodes):
            mount = work / f"n{nodes}-{n}" / "library"  # each node's own path to the library
            mount.parent.mkdir(parents=True)
            mount.symlink_to(library, target_is_directory=True)
            daemon = Daemon(
                work / f"n{nodes}-{n}", [mount], watch={"settle_seconds": settle_seconds},
                events=("file_started", "file_processed", "file_failed", "file_skipped"), level="debug",
                name=f"node{n}",
                sections={"node": {"name": f"bench-{n}"},
                          "database": {"url": database.url, "password_file": str(database.password_file)}},
            )
            daemons.append(daemon.start())
        for daemon in daemons:
            daemon.wait_started()
        time.sleep(0.5)
        paths = media.copies(library, files)
        first = daemons[0]

        def done() -> int:
            for d in daemons:
                d.tail.poll()
            return sum(len(d.events("file_processed")) + len(d.events("file_failed")) + len(d.events("file_skipped"))
                       for d in daemons)

        first.wait(lambda: done() >= files, timeout=600, what=f"{files} files processed by {nodes} nodes", interval=0.5)
        time.sleep(1.0)  # a file processed twice would show up now
        processed = [[e for e in d.events("file_processed")] for d in daemons]
        failed = [e for d in daemons for e in (*d.events("file_failed"), *d.events("file_skipped"))]
        if failed:
            raise BenchFailure(f"{nodes} nodes: {len(failed)} files failed or skipped, e.g. {failed[0]}")
        seen = [e["path"] for p in processed for e in p]
        names = sorted(Path(p).name for p in seen)
        if names != sorted(p.name for p in paths):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise BenchFailure(f"{nodes} nodes: {len(names)} results for {files} files (twice: {twice[:5]})")
        check_normalized(paths, f"{nodes} nodes")
        started = min(parse_ts(e["timestamp"]) for d in daemons for e in d.events("file_started"))
        ended = max(parse_ts(e["timestamp"]) for p in processed for e in p)
        return ended - started, [len(p) for p in processed]
    finally:
        for daemon in daemons:
            status = daemon.stop()
            if status != 0:
                raise BenchFailure(f"a node exited {status} at SIGTERM; log: {daemon.log_path}")


def nodes(work: Path, media: MediaSource, *, claim_files: int, node_files: int, runs: int,
          settle_seconds: float) -> list[Row]:
    """Every row of the section."""
    rows: list[Row] = []
    with postgres_server() as server:
        rows += claims(work, server, files=claim_files, runs=runs)
        for count in (1, 2, 3):
            seconds, shares = [], []
            for run in range(runs):
                took, share = shared_library(work / f"run{count}-{run}", media, server, nodes=count,
                                             files=node_files, settle_seconds=settle_seconds)
                seconds.append(took)
                shares.append(min(share))
            rows.append(Row("nodes", f"{node_files} header-only files, {count} node(s) × 1 worker: first start → last done",
                            seconds, "s", note="every file processed exactly once, checked"))
            if count > 1:
                rows.append(Row("nodes", f"{count} nodes: files done by the node that did the fewest", shares,
                                "files", digits=0))
    return rows
