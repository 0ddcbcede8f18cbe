"""The transcode lane with the real pipeline in process (issue 18, item 2 and 3): real
media, real tools, a real SQLite Store, :class:`vpod.jobs.JobRunner` and the Feeder as
the daemon wires them. The plan's transcode and its encoder come from a test-only hook
(tests/support/transcode_hook.py: the policy keys and the executor are other branches).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from support.transcode_hook import install

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Job
from vpod.feeder import Feeder
from vpod.fingerprint import fingerprint_path
from vpod.jobs import JobRunner
from vpod.lanes import TranscodeLane
from vpod.media.tools import ToolRunner
from vpod.pipeline import FileProcessor, PipelineOptions
from vpod.policy.plan import Plan, TranscodeVideo
from vpod.policy.policy import Policy
from vpod.policy.selection import PolicySelector
from vpod.watch.filters import TEMP_PREFIX

pytestmark = pytest.mark.integration

ENCODE = Plan((TranscodeVideo(0, "hevc"),))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until(condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for ``condition()`` (a bound on a hang, not a timed assertion)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


@pytest.fixture
def library(tmp_path, jpn_eng_mkv):
    """enc.mkv (the hook plans a transcode) and hdr-N.mkv (header edits only), queued."""
    folder = tmp_path / "library"
    folder.mkdir()
    store = open_store(DatabaseConfig(path=tmp_path / "v.db", busy_timeout_seconds=5))
    for name in ("enc.mkv", "hdr-1.mkv", "hdr-2.mkv"):
        (folder / name).write_bytes(jpn_eng_mkv.read_bytes())
        store.enqueue(folder, name.encode(), *fingerprint_path(folder / name))
    yield folder, store
    store.close()


def make_runner(store, folder: Path, lane: TranscodeLane, tools: ToolRunner) -> JobRunner:
    return JobRunner(
        store, FileProcessor(tools, PipelineOptions(roots=(folder,)), store), max_attempts=3, lane=lane,
        wait_for_space=True,
    )


def test_a_full_lane_defers_the_transcode_uncounted_and_header_files_are_done(library, monkeypatch):
    folder, store = library
    install("enc", 30.0, monkeypatch)
    lane = TranscodeLane(1)
    feeder = Feeder(store, threading.Event(), threading.Event(), batch_id=lambda: "b1", passed_over=lane.passed_over)
    lane.on_free = feeder.poke
    runner = make_runner(store, folder, lane, ToolRunner(60))
    policies = PolicySelector.single(Policy())
    busy = lane.ticket(Job(10_000, folder, b"other.mkv", "x", 0))  # another file encodes: the lane is full
    busy.admit(ENCODE)
    before = sha(folder / "enc.mkv")
    with capture_logs() as logs:
        done = []
        while (job := feeder.try_claim("w1")) is not None and isinstance(job, Job):
            done.append((job.relpath, runner.run(job, policies, "w1", "b1")))
            feeder.done(job, requeued=done[-1][1] is None)
    assert [(name, result is None) for name, result in done] == [
        (b"enc.mkv", True), (b"hdr-1.mkv", False), (b"hdr-2.mkv", False),
    ]  # the transcode was given back and passed over; both header files were processed
    assert all(result.success and result.changes == 2 for _, result in done[1:])
    record = store.file_record(folder / "enc.mkv")
    assert (record.state, record.attempts, record.reason) == ("queued", 0, None), record  # not counted
    assert sha(folder / "enc.mkv") == before  # not touched
    deferred = [e for e in logs if e["event"] == "transcode_deferred"]
    assert [(e["reason"], e["path"]) for e in deferred] == [("lane_full", str(folder / "enc.mkv"))]
    assert lane.deferred() == 1
    assert store.claim("w1", "b1", exclude=lane.passed_over()[0]) is None
    busy.__exit__(None, None, None)  # the other encode ends: a slot frees, the workers are poked
    assert lane.passed_over() == ([], None)
    job = feeder.try_claim("w1")
    assert isinstance(job, Job) and job.relpath == b"enc.mkv" and job.attempts == 0


def test_shutdown_kills_a_running_transcode_removes_its_temp_and_requeues_it_uncounted(library, monkeypatch):
    folder, store = library
    install("enc", 600.0, monkeypatch)  # an encode far longer than the test
    tools = ToolRunner(60)
    lane = TranscodeLane(1)
    runner = make_runner(store, folder, lane, tools)
    job = store.claim("w1", "b1")
    assert job is not None and job.relpath == b"enc.mkv"
    before = sha(folder / "enc.mkv")
    outcome: list[object] = []
    with capture_logs() as logs:
        worker = threading.Thread(
            target=lambda: outcome.append(runner.run(job, PolicySelector.single(Policy()), "w1", "b1"))
        )
        worker.start()
        temps = lambda: [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]  # noqa: E731
        wait_until(lambda: lane.running() == 1 and temps() and tools.pids_of(worker.ident or 0), "the encode runs")
        cancelled = lane.cancel_all(tools)
        worker.join(30)
        assert not worker.is_alive()
    assert [j.id for j in cancelled] == [job.id]
    assert outcome == [None]  # no outcome recorded
    record = store.file_record(folder / "enc.mkv")
    assert (record.state, record.attempts) == ("queued", 0), record  # requeued, the attempt not counted
    assert temps() == [] and store.pending_temps() == []  # its temp file removed
    assert sha(folder / "enc.mkv") == before
    assert [e["event"] for e in logs if e["event"] in ("transcode_cancelled", "file_retry", "file_failed")] == [
        "transcode_cancelled"
    ]
    assert lane.running() == 0
