"""BatchProcessor with two workers on real files, and `vpod process` beside a running daemon."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.media import default_audio_languages
from support.tools import path_with, slow_tool
from vpod.batch import BatchController
from vpod.config import WatchConfig
from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.jobs import JobRunner
from vpod.media.tools import ToolRunner
from vpod.pipeline import FileProcessor, PipelineOptions
from vpod.policy.policy import Policy
from vpod.policy.selection import PolicySelector
from vpod.process import BatchProcessor
from vpod.progress import ProgressTracker, StatusLine
from vpod.targets import collect_targets
from vpod.watch.filters import PathFilter

pytestmark = pytest.mark.integration


def test_fail_cancels_pending_files_and_lets_the_running_one_finish(tmp_path, jpn_eng_mkv, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    files = [Path(shutil.copyfile(jpn_eng_mkv, lib / f"{i:02d}.mkv")) for i in range(1, 9)]
    files[1].write_text("this is text, not Matroska")
    # 01 is in mkvpropedit for a second while 02 fails beside it
    monkeypatch.setenv("PATH", path_with(slow_tool(tmp_path / "slowbin", "mkvpropedit", 1.0)))
    targets = collect_targets([lib], PathFilter.from_config(WatchConfig()), recursive=False)
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    options = PipelineOptions(roots=targets.roots, wait_for_lock=True)
    stderr = io.StringIO()
    processor = BatchProcessor(
        targets.files,
        store=store,
        job_runner=JobRunner(store, FileProcessor(ToolRunner(120), options, store), max_attempts=1),
        policies=PolicySelector.single(Policy()),
        workers=2,
        controller=BatchController("fail"),
        progress=ProgressTracker(len(targets.files), StatusLine(stderr)),
    )
    batch = processor.run()
    store.close()

    assert batch.stopped_early and batch.total_files == 8
    by_path = {r.path: r for r in batch.results}
    failure = by_path[files[1]]
    assert failure.failed and failure.reason == "not_media"
    running = by_path[files[0]]  # in progress when 02 failed: it completed
    assert running.success and running.ended_at > failure.ended_at
    assert default_audio_languages(files[0]) == ["eng"]
    assert set(by_path) == {files[0], files[1]}  # nothing started after the failure
    for f in files[2:]:
        assert default_audio_languages(f) == ["jpn"], f
    assert stderr.getvalue() == ""  # not a terminal, and far below the plain-line interval


def test_process_beside_a_running_daemon_changes_each_file_once(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = [Path(shutil.copyfile(jpn_eng_mkv, inbox / f"f{i}.mkv")) for i in range(4)]
    slow = path_with(slow_tool(tmp_path / "slowbin", "mkvpropedit", 0.5))
    daemon = daemon_factory(
        {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "processing": {"batch_window_seconds": 30}},
        extra_env={"PATH": slow, "VPOD_CPU_COUNT": "4"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(daemon.config), str(inbox), "-w", "2", "--json"],
        env={**env, "PATH": slow, "VPOD_CPU_COUNT": "4"}, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["fail_count"] == 0
    for r in data["results"]:
        assert r["success"] or r["reason"] == "in_progress_elsewhere", r
    deadline = time.monotonic() + 60
    while not all(default_audio_languages(f) == ["eng"] for f in files):
        assert time.monotonic() < deadline, daemon.tail()
        time.sleep(0.2)
    assert daemon.stop() == 0
    assert not daemon.named("file_failed"), daemon.tail()
    # Each file was changed exactly once, by one front end or the other: had both read
    # the old header at the same time, both would report changes.
    for f in files:
        by_process = [r for r in data["results"] if r["path"] == str(f) and r["changes"]]
        by_daemon = [e for e in daemon.named("file_processed", path=str(f)) if e["changes"]]
        assert len(by_process) + len(by_daemon) == 1, (f, by_process, by_daemon)
