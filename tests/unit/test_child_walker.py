"""The catch-up walk in a child process (vpod.watch.walker): its records, its outcome
against the in-process walk, and the walk going on in the daemon when the child dies."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from vpod.config import DatabaseConfig, WatchConfig
from vpod.db.factory import open_store
from vpod.db.store import Outcome
from vpod.fingerprint import fingerprint_path
from vpod.results import FileProcessingResult
from vpod.watch import scanner as scanner_module
from vpod.watch import walker
from vpod.watch.filters import PathFilter
from vpod.watch.intake import Intake
from vpod.watch.scanner import Scanner
from vpod.watch.stabilizer import Stabilizer
from vpod.watch.walk_process import ChildWalk

SETTLE = 1.0

ODD_NAMES = [
    b"\xff\xfe latin-1 \xe9.mkv",  # not UTF-8
    "unicode é 日本.mkv".encode(),
    b"new\nline.mkv",
    b"-dash 'quote' \"dq\" \\back.mkv",
    b"UPPER.MKV",
]


def make_tree(root: Path) -> dict[str, Any]:
    """Every kind of name a walk meets; returns what the test needs to hold open."""
    base = os.fsencode(root)
    os.makedirs(base + b"/show/\xff sub", exist_ok=True)
    os.makedirs(base + b"/.hidden", exist_ok=True)
    os.makedirs(base + b"/folder.mkv", exist_ok=True)  # a folder named like a media file
    for name in ODD_NAMES:
        with open(base + b"/show/" + name, "wb") as handle:
            handle.write(b"x" * len(name))
        with open(base + b"/show/\xff sub/" + name, "wb") as handle:
            handle.write(b"y")
    for name in (b".dot.mkv", b".vpod-tmp-abc.mkv", b"film.orig.mkv", b"notes.txt", b"noext"):
        with open(base + b"/show/" + name, "wb") as handle:
            handle.write(b"z")
    with open(base + b"/.hidden/in-hidden.mkv", "wb") as handle:
        handle.write(b"h")
    os.symlink(base + b"/show/UPPER.MKV", base + b"/show/link.mkv")
    os.symlink(b"/nonexistent/target", base + b"/show/dangling.mkv")
    os.mkfifo(base + b"/show/fifo.mkv")
    writing = open(base + b"/show/writing.mkv", "wb")  # held open for writing by this process
    writing.write(b"partial")
    writing.flush()
    return {"writing": writing}


def child_records(root: Path, lease_age: float | None) -> list[tuple[Any, ...]]:
    walk = ChildWalk(
        os.fspath(root), os.fspath(root), PathFilter.from_config(WatchConfig()), recursive=True, lease_age=lease_age,
        stop=threading.Event(),
    )
    records = list(walk.records())
    assert walk.cpu_seconds is not None and walk.cpu_seconds >= 0
    return records


def test_the_child_walkers_records_name_every_wanted_file_exactly_with_its_lstat_and_writer_verdict(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    held = make_tree(root)
    try:
        records = child_records(root, lease_age=0.0)
        files = {}
        for kind, folder, rel_folder, listed in records:
            assert kind == "d"
            assert os.fsencode(folder) == os.fsencode(root) + (b"/" + rel_folder if rel_folder else b"")
            for name, mode, ino, dev, size, mtime_ns, ctime_ns, verdict in listed:
                path = os.fsencode(folder) + b"/" + os.fsencode(name)  # the bytes on disk, exactly
                st = os.lstat(path)
                assert (mode, ino, dev, size, mtime_ns, ctime_ns) == (
                    st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns
                )
                files[path[len(os.fsencode(root)) + 1 :]] = verdict
    finally:
        held["writing"].close()
    wanted_regular = [b"show/" + n for n in ODD_NAMES] + [b"show/\xff sub/" + n for n in ODD_NAMES]
    expected = {name: walker.VERDICT_FREE for name in wanted_regular}
    expected.update({
        b"show/link.mkv": walker.VERDICT_NOT_REGULAR, b"show/dangling.mkv": walker.VERDICT_NOT_REGULAR,
        b"show/fifo.mkv": walker.VERDICT_NOT_REGULAR, b"folder.mkv": walker.VERDICT_NOT_REGULAR,
        b"show/writing.mkv": walker.VERDICT_BUSY,
    })
    if files[b"show/writing.mkv"] == walker.VERDICT_NO_LEASE:
        pytest.skip("no file lease can be taken here (fs.leases-enable = 0, or a filesystem without leases)")
    assert files == expected  # hidden, temp, backup, non-media and ignored folders are left out


def test_the_child_asks_no_lease_of_a_file_changed_within_the_settle_time(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "new.mkv").write_bytes(b"x")
    [record] = child_records(root, lease_age=3600.0)
    assert [f[-1] for f in record[3]] == [walker.VERDICT_UNCHECKED]
    [record] = child_records(root, lease_age=None)  # ctimes not trusted (a network share): none asked
    assert [f[-1] for f in record[3]] == [walker.VERDICT_UNCHECKED]


def scan(
    tmp_path: Path, root: Path, name: str, child: str | None, *, bulk: list[int] | None = None,
    prepare: Any = None,
) -> tuple[list[Any], list[bytes], Any, list[Any]]:
    """A catch-up walk of ``root`` into the database ``name`` (new, or as an earlier walk
    left it), the intake wired as the daemon wires it; returns (rows, files left to the
    stabilizer as still written, tally, logs). ``bulk``: new folders are queued in bulk
    (Intake.folders_walked), and the number of folders handed to it is appended there.
    ``prepare(store)`` runs before the walk."""
    store = open_store(DatabaseConfig(path=tmp_path / f"{name}.db"))
    if prepare is not None:
        prepare(store)
    stop = threading.Event()
    busy: list[bytes] = []
    stabilizer: Stabilizer | None = None

    def still_writing(paths: list[Path]) -> None:
        busy.extend(os.fsencode(p) for p in paths)

    intake = Intake(
        store, lambda: (root,), policy_digest=lambda r, p: "digest", follow_symlinks=False, on_queued=lambda: None,
        retry=lambda paths, delay: None, still_writing=still_writing,
    )
    stabilizer = Stabilizer(SETTLE, intake.files_ready, stop, on_walked=intake.files_walked)
    def folders_walked(root: Path, folders: Any, *args: Any) -> None:
        assert bulk is not None
        bulk.append(len(folders))
        intake.folders_walked(root, folders, *args)

    scanner = Scanner(
        store, PathFilter.from_config(WatchConfig()), stabilizer, stop, recursive=True,
        trust_ctime=lambda r: True, write_behind=intake.behind, child_walk=child,
        bulk=folders_walked if bulk is not None else None,
    )
    with capture_logs() as logs:
        tally = scanner.tally(root, root, why="catch_up")
    stop.set()
    store.close()
    with sqlite3.connect(tmp_path / f"{name}.db") as conn:
        rows = sorted(conn.execute("SELECT relpath, state, size, inode, fingerprint, policy_digest FROM files"))
    return rows, sorted(busy), tally, logs


def test_a_catch_up_walked_in_the_child_queues_exactly_what_the_in_process_walk_queues(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    held = make_tree(root)
    try:
        time.sleep(SETTLE + 0.5)  # every file quiet for the settle time: handed to the intake by the walk
        in_process = scan(tmp_path, root, "in-process", None)
        in_child = scan(tmp_path, root, "child", sys.executable)
    finally:
        held["writing"].close()
    assert in_child[0] == in_process[0] and len(in_child[0]) == 2 * len(ODD_NAMES) + 4
    assert in_child[1] == in_process[1] == [os.fsencode(root) + b"/show/writing.mkv"]
    assert (in_child[2].seen, in_child[2].candidates, in_child[2].queued) == (
        in_process[2].seen, in_process[2].candidates, in_process[2].queued
    )
    assert in_child[2].walker_cpu_seconds is not None and in_process[2].walker_cpu_seconds is None
    assert not [line for line in in_child[3] if line["event"] == "scan_walker_failed"]


def test_a_catch_up_of_new_folders_in_bulk_queues_exactly_what_the_per_file_walk_queues(tmp_path: Path) -> None:
    """The bulk path (issue 15 item 1: new folders queued by one statement, SQLite): the
    same rows and counts as the in-process walk, on a tree of every kind of name; names
    that are not UTF-8, a file still written, symlinks and a FIFO go the per-file way."""
    root = tmp_path / "lib"
    held = make_tree(root)
    folders: list[int] = []
    try:
        time.sleep(SETTLE + 0.5)
        in_process = scan(tmp_path, root, "in-process", None)
        in_bulk = scan(tmp_path, root, "bulk", sys.executable, bulk=folders)
    finally:
        held["writing"].close()
    assert folders and sum(folders) == 1  # only "show" holds UTF-8 names below a UTF-8 folder
    assert in_bulk[0] == in_process[0] and len(in_bulk[0]) == 2 * len(ODD_NAMES) + 4
    assert in_bulk[1] == in_process[1] == [os.fsencode(root) + b"/show/writing.mkv"]
    assert (in_bulk[2].seen, in_bulk[2].candidates, in_bulk[2].queued) == (
        in_process[2].seen, in_process[2].candidates, in_process[2].queued
    )


def test_a_bulk_walk_leaves_rows_it_finds_to_the_rules_and_other_claims_alone(tmp_path: Path) -> None:
    """A folder with rows goes to the bulk path too: the store writes only paths with no
    row, and hands the rest back to the per-file rules (the stat fast path, then the
    enqueue rules): a file rewritten since vpod left it is queued again, one left as vpod
    recorded it is not, another worker's file in progress keeps its claim."""
    root = tmp_path / "lib"
    (root / "known").mkdir(parents=True)
    for name in ("kept", "rewritten", "busy", "waiting"):
        (root / "known" / f"{name}.mkv").write_bytes(name.encode() * 100)
    time.sleep(SETTLE + 0.5)
    first = scan(tmp_path, root, "db", sys.executable, bulk=[])
    assert first[2].queued == 4

    def claim(store: Any, name: str) -> Any:
        job = next(j for j in store.next_queued(10, ()) if j.relpath == f"known/{name}.mkv".encode())
        return store.start(job, "other-worker", "b1")

    recorded = {name: fingerprint_path(root / "known" / f"{name}.mkv") for name in ("kept", "rewritten")}

    def prepare(store: Any) -> None:
        for name in ("kept", "rewritten"):  # left conforming as found, before the rewrite below
            job = claim(store, name)
            fingerprint, stat_key = recorded[name]
            result = FileProcessingResult(path=job.path, success=True, changes=0)
            store.finish(job, Outcome(result, fingerprint, stat_key, policy_digest="digest"), "b1")
        assert claim(store, "busy") is not None  # in progress elsewhere

    (root / "known" / "rewritten.mkv").write_bytes(b"other bytes" * 100)
    (root / "known" / "new.mkv").write_bytes(b"new")
    time.sleep(SETTLE + 0.5)
    folders: list[int] = []
    rows, busy, tally, _ = scan(tmp_path, root, "db", sys.executable, bulk=folders, prepare=prepare)
    assert folders == [1]
    states = {row[0]: row[1] for row in rows}
    assert states == {
        b"known/kept.mkv": "done", b"known/rewritten.mkv": "queued", b"known/busy.mkv": "processing",
        b"known/waiting.mkv": "queued", b"known/new.mkv": "queued",
    }
    assert [row[4] for row in rows if row[0] == b"known/rewritten.mkv"] != ["unread:1100"]  # read by the rules
    assert (tally.seen, tally.candidates, tally.queued) == (5, 2, 2) and busy == []


def test_a_child_walker_that_dies_is_reported_and_the_walk_goes_on_in_the_daemon_nothing_lost_or_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lib"
    for folder in range(6):
        (root / f"f{folder}").mkdir(parents=True)
        for i in range(600):
            (root / f"f{folder}" / f"e{i}.mkv").write_bytes(b"x")
    # The child's output cut after 3/5 of its bytes: the walker dies by SIGPIPE mid-walk,
    # after some folders reached the daemon (one frame per folder of 600 files).
    whole = sum(len(blob) for blob in _frames(root))
    python = tmp_path / "python-cut"
    python.write_text(f'#!/bin/sh\n"{sys.executable}" "$@" | head -c {whole * 3 // 5}\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    time.sleep(SETTLE + 0.5)
    monkeypatch.setattr(scanner_module, "HANDOFF_BATCH", 100)  # handed over folder by folder
    rows, busy, tally, logs = scan(tmp_path, root, "cut", os.fspath(python))
    [failed] = [line for line in logs if line["event"] == "scan_walker_failed"]
    assert failed["log_level"] == "warning" and 0 < failed["folders_done"] < 6, failed
    assert len(rows) == 3600 and len({row[0] for row in rows}) == 3600
    assert (tally.seen, tally.candidates, tally.queued) == (3600, 3600, 3600)  # each file once
    assert tally.walker_cpu_seconds is None and busy == []


def _frames(root: Path) -> list[bytes]:
    """The child's frames for ``root`` (to size the cut)."""
    import marshal
    import subprocess

    settings = {
        "root": os.fspath(root), "folder": os.fspath(root), "recursive": True,
        "ignore": PathFilter.from_config(WatchConfig()).ignore.pattern, "temp_prefix": ".vpod-tmp-",
        "extensions": ["mkv"], "lease_age": None,
    }
    out = subprocess.run(
        [sys.executable, "-I", "-S", walker.__file__], input=marshal.dumps(settings), capture_output=True, check=True
    ).stdout
    frames = []
    while out:
        size = int.from_bytes(out[:4], "little")
        frames.append(out[4 : 4 + size])
        out = out[4 + size :]
    assert len(frames) >= 6
    return frames


def test_stop_ends_the_child_walker(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    for folder in range(40):
        (root / f"f{folder}").mkdir(parents=True)
        for i in range(200):
            (root / f"f{folder}" / f"e{i}.mkv").write_bytes(b"")
    stop = threading.Event()
    walk = ChildWalk(
        os.fspath(root), os.fspath(root), PathFilter.from_config(WatchConfig()), recursive=True, lease_age=None,
        stop=stop,
    )
    records = walk.records()
    next(records)
    proc = walk.proc
    assert proc is not None
    stop.set()
    assert list(records) == []  # ends at the next frame
    assert proc.returncode is not None and walk.proc is None and walk.cpu_seconds is None


def test_a_child_walker_that_cannot_start_is_reported_and_the_daemon_walks_alone(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    held = make_tree(root)
    try:
        time.sleep(SETTLE + 0.5)
        in_process = scan(tmp_path, root, "in-process", None)
        no_child = scan(tmp_path, root, "no-child", os.fspath(tmp_path / "no-such-python"))
    finally:
        held["writing"].close()
    [failed] = [line for line in no_child[3] if line["event"] == "scan_walker_failed"]
    assert failed["folders_done"] == 0 and "cannot start" in failed["error"]
    assert no_child[0] == in_process[0] and no_child[1] == in_process[1]
