"""A claimed file a worker finds gone (issue 14, several nodes): with its library's
marker still there the file really vanished and is recorded so; with the marker gone
too (the share was unmounted since the last check) the job is given back, its attempt
not counted, and the library is unverified at once, so no more of its jobs are
claimed and turned into ``vanished`` rows.

In process, with the real pipeline (:class:`vpod.pipeline.FileProcessor`) and
:class:`vpod.jobs.JobRunner` as the daemon wires them, on a store the checks treat as
shared (``LibraryMounts(shared=True)``, what a node of a database server runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.fingerprint import fingerprint_path
from vpod.jobs import JobRunner
from vpod.media.tools import ToolRunner
from vpod.pipeline import FileProcessor, PipelineOptions
from vpod.policy.policy import Policy
from vpod.policy.selection import PolicySelector
from vpod.watch.library_id import LibraryMounts

pytestmark = pytest.mark.integration


def test_a_file_gone_with_its_librarys_marker_is_given_back_not_recorded_vanished(tmp_path, jpn_eng_mkv):
    mountpoint = tmp_path / "nas"
    mountpoint.mkdir()
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        (mountpoint / name).write_bytes(jpn_eng_mkv.read_bytes())
    store = open_store(DatabaseConfig(path=tmp_path / "v.db", busy_timeout_seconds=5))
    try:
        names = {mountpoint: "tv"}
        store.bind_libraries(names)
        for name in ("a.mkv", "b.mkv", "c.mkv"):
            store.enqueue(mountpoint, name.encode(), *fingerprint_path(mountpoint / name))
        mounts = LibraryMounts(store, lambda: names, node="node-a")
        mounts.check()  # marks the folder: it holds the library's files
        assert mounts.verified() == {"tv"}
        runner = JobRunner(
            store, FileProcessor(ToolRunner(60), PipelineOptions(roots=(mountpoint,)), store),
            max_attempts=3, mount_lost=mounts.lost,
        )
        policies = PolicySelector.single(Policy())

        # A file the user deleted, the marker still there: it vanished.
        job = store.claim("w1", "b1", libraries=mounts.claim_libraries())
        assert job is not None
        os.unlink(job.path)
        result = runner.run(job, policies, "w1", "b1")
        assert result is not None and result.reason == "vanished"
        assert store.file_record(job.path).state == "skipped"

        # The share is unmounted after the last check: an empty mount point.
        job = store.claim("w1", "b1", libraries=mounts.claim_libraries())
        assert job is not None
        os.rename(mountpoint, tmp_path / "share")
        mountpoint.mkdir()
        with capture_logs() as logs:
            assert runner.run(job, policies, "w1", "b1") is None  # nothing recorded
        events = [e["event"] for e in logs]
        assert "library_mount_unverified" in events and "file_given_back" in events, events
        record = store.file_record(job.path)
        assert (record.state, record.attempts, record.reason) == ("queued", 0, None), record
        assert mounts.claim_libraries() == frozenset()  # no more claims from it
        assert store.claim("w1", "b1", libraries=mounts.claim_libraries()) is None

        # Mounted again: both files left are there, still queued, and claimed again.
        mountpoint.rmdir()
        os.rename(tmp_path / "share", mountpoint)
        mounts.check()
        assert mounts.verified() == {"tv"}
        assert store.queue_report().counts["queued"] == 2
    finally:
        store.close()
