"""The transcode lane with the real pipeline in process (issue 18, item 2 and 3): real
media, real tools, a real SQLite Store, :class:`vpod.jobs.JobRunner` and the Feeder as
the daemon wires them, and the daemon itself. The transcodes are the real planner's
(a policy with ``video_codec``, ``audio_compat``, ``audio_convert``, ``keep_if_larger``)
and the encodes the real ffmpeg's; where a test needs an encode that lasts, ffmpeg reads
a long H.264 clip at the rate it plays (``-re``: tests/support/ffmpeg_wrapper.py).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from support.ffmpeg_wrapper import REAL_TIME, ffmpeg_wrapper
from support.media import audio, make_media, video
from support.tools import path_with

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
from vpod.policy.policy import policy_from_table
from vpod.policy.selection import PolicySelector
from vpod.watch.filters import TEMP_PREFIX

pytestmark = pytest.mark.integration

ENCODE = Plan((TranscodeVideo(0, "hevc"),))

# H.264 is re-encoded into HEVC; the header files' MPEG-4 video is not. Their English AAC
# (mono) already is an equivalent of the compat track, and they have no FLAC or PCM.
POLICY_TABLE = {
    "video_codec": {"codec": "hevc", "convert": ["h264"], "crf": 30, "preset": "ultrafast"},
    "audio_compat": {"codec": "aac", "channels": 2, "bitrate_kbps": 128},
    "audio_convert": {"codecs": ["flac", "pcm"], "to": "eac3"},
    "keep_if_larger": True,
}
POLICY = policy_from_table(POLICY_TABLE, source=None, base_dir=None)
POLICIES = PolicySelector.single(POLICY)


def h264_clip(folder: Path, seconds: float) -> Path:
    """An H.264 clip of ``seconds`` with the tracks of ``jpn_eng_mkv`` (English audio
    first, Japanese default): the policy plans two flag changes and a video transcode."""
    return make_media(
        folder / f".h264-{seconds:g}.mkv", [video(codec="libx264"), audio("eng"), audio("jpn", default=True)],
        duration=seconds, video_size="160x120",
    )  # fmt: skip


def real_time_ffmpeg(tmp_path: Path) -> str:
    """A ``PATH`` whose ffmpeg encodes at the rate the media plays (the real ffmpeg, ``-re``)."""
    return path_with(ffmpeg_wrapper(tmp_path / "bin", REAL_TIME))


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    """The daemon's /metrics samples: (name, labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families
    from support.http import get

    code, _, body = get(port, "/metrics")
    assert code == 200
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(body) for s in family.samples]


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
    """enc.mkv (H.264 of 300 s: the policy plans a transcode) and hdr-N.mkv (header
    edits only), queued."""
    folder = tmp_path / "library"
    folder.mkdir()
    store = open_store(DatabaseConfig(path=tmp_path / "v.db", busy_timeout_seconds=5))
    clip = h264_clip(tmp_path, 300.0)
    for name in ("enc.mkv", "hdr-1.mkv", "hdr-2.mkv"):
        (folder / name).write_bytes((clip if name.startswith("enc") else jpn_eng_mkv).read_bytes())
        store.enqueue(folder, name.encode(), *fingerprint_path(folder / name))
    yield folder, store
    store.close()


def make_runner(store, folder: Path, lane: TranscodeLane, tools: ToolRunner) -> JobRunner:
    return JobRunner(
        store, FileProcessor(tools, PipelineOptions(roots=(folder,)), store), max_attempts=3, lane=lane,
        wait_for_space=True,
    )


def test_a_full_lane_defers_the_transcode_uncounted_and_header_files_are_done(library):
    folder, store = library
    lane = TranscodeLane(1)
    feeder = Feeder(store, threading.Event(), threading.Event(), batch_id=lambda: "b1", passed_over=lane.passed_over)
    lane.on_free = feeder.poke
    runner = make_runner(store, folder, lane, ToolRunner(60))
    policies = POLICIES
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


def test_shutdown_kills_a_running_transcode_removes_its_temp_and_requeues_it_uncounted(library, monkeypatch, tmp_path):
    folder, store = library
    monkeypatch.setenv("PATH", real_time_ffmpeg(tmp_path))  # 300 s of media: an encode far longer than the test
    tools = ToolRunner(60)
    lane = TranscodeLane(1)
    runner = make_runner(store, folder, lane, tools)
    job = store.claim("w1", "b1")
    assert job is not None and job.relpath == b"enc.mkv"
    before = sha(folder / "enc.mkv")
    outcome: list[object] = []
    with capture_logs() as logs:
        worker = threading.Thread(
            target=lambda: outcome.append(runner.run(job, POLICIES, "w1", "b1"))
        )
        worker.start()
        temps = lambda: [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]  # noqa: E731
        wait_until(lambda: lane.running() == 1 and temps() and tools.pids_of(worker.ident or 0), "the encode runs")
        # The real encoder's progress reaches the worker's FileProgress as a transcode's
        # (the 30 s log cadence; /metrics and vpod status read it), with speed and fps.
        reported = lambda: runner.progress_board.points().get("w1")  # noqa: E731
        wait_until(lambda: (r := reported()) is not None and r[0].speed is not None, "the encoder reports its speed")
        point, transcoding = reported()
        assert transcoding and 0 < point.percent < 100 and point.speed > 0 and point.fps is not None
        assert list(runner.progress_board.encodes()) == [str(folder / "enc.mkv")]
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


def test_a_transcode_cancelled_before_its_encoder_starts_runs_no_tool_after_the_stop():
    """Shutdown may find a transcode admitted but between two tools (probed, its encoder
    not started yet): nothing is running to kill, and the encoder must not start after
    (it ran to its end, holding the shutdown, before ToolRunner.cancel_thread)."""
    from vpod.errors import ToolError
    from vpod.outcomes import Reason

    tools = ToolRunner(60)
    lane = TranscodeLane(1)
    job = Job(1, Path("/library"), b"enc.mkv", "x", 0)
    with lane.ticket(job) as ticket:
        ticket.admit(ENCODE)  # this thread now transcodes; no tool of it runs at this moment
        assert lane.cancel_all(tools) == [job]
        with pytest.raises(ToolError) as refused:
            tools.run(["ffmpeg", "-version"])  # the encoder it would start next
        assert refused.value.reason is Reason.KILLED and not refused.value.permanent
    assert lane.was_cancelled(job)
    assert tools.run(["ffmpeg", "-version"]).returncode == 0  # the thread's next job runs its tools


def test_the_daemon_does_header_files_during_a_transcode_and_a_stop_cancels_it(tmp_path, daemon_factory, env, jpn_eng_mkv):
    """``vpod run`` with workers = 2, max_transcodes = 1: a second transcode is deferred
    (once, uncounted) and passed over, header-only files dropped meanwhile are all done
    while the first encode still runs; SIGTERM kills that encode at once (not after
    shutdown_timeout_seconds), removes its temp file and requeues both files uncounted;
    the next start begins the transcode again from zero (its first attempt)."""
    import json
    import os

    from support.daemon import run_vpod

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sections = {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "processing": {"workers": 2, "max_transcodes": 1, "shutdown_timeout_seconds": 600},
        "policy": POLICY_TABLE,
        "http": {"listen": "127.0.0.1:0"},
    }
    # The encodes run at the rate the media plays: 300 s, far longer than the test.
    slow = {"PATH": real_time_ffmpeg(tmp_path)}
    daemon = daemon_factory(sections, extra_env=slow)
    clip = h264_clip(tmp_path, 300.0)

    def drop(name: str) -> Path:
        staged = tmp_path / name
        staged.write_bytes((clip if name.startswith("enc") else jpn_eng_mkv).read_bytes())
        os.rename(staged, inbox / name)
        return inbox / name

    first = drop("enc-1.mkv")
    daemon.wait_for("file_started", path=str(first))
    report = None
    for _ in range(600):  # the encode reports progress: percent and ETA in vpod status
        data = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
        busy = [f for f in data["in_progress"] if f["path"] == str(first)]
        if busy and busy[0]["progress_percent"] is not None and busy[0]["speed"] is not None:
            report = busy[0]
            break
        time.sleep(0.1)
    assert report is not None and report["progress_percent"] < 100 and report["eta_seconds"] > 0
    assert report["speed"] > 0 and data["transcodes"] == {"running": 1, "deferred": 0, "outside_hours": 0, "next_window": None}
    text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
    assert "1 encoding" in text and "x, " in text, text
    # As the web page writes it (T18C finding 10: the fps was missing from the text).
    assert re.search(r" \d+ %, \d+\.\d\dx, \d+(\.\d)? fps, (\d+h )?\d+m \d+s left  ", text), text
    # /metrics, read at scrape time from the worker's progress: the real encode's gauges.
    gauges = scrape(daemon.wait_for("http_listening")[0]["port"])
    assert ("vpod_transcodes_running", {}, 1.0) in gauges
    [(worker, percent)] = [(labels["worker"], value) for name, labels, value in gauges
                           if name == "vpod_file_progress_percent" and labels["kind"] == "transcode"]  # fmt: skip
    speed = [value for name, labels, value in gauges if name == "vpod_transcode_speed" and labels == {"worker": worker}]
    fps = [value for name, labels, value in gauges if name == "vpod_transcode_fps" and labels == {"worker": worker}]
    assert 0 < percent < 100 and speed and speed[0] > 0 and fps, gauges
    second = drop("enc-2.mkv")
    daemon.wait_for("transcode_deferred", path=str(second), reason="lane_full")
    headers = [drop(f"hdr-{n}.mkv") for n in range(5)]
    for path in headers:
        daemon.wait_for("file_processed", path=str(path))
    outcomes = ("file_processed", "file_failed", "file_retry", "file_skipped")
    assert not [e for e in daemon.events() if e["event"] in outcomes and e.get("path") in (str(first), str(second))]
    assert len(daemon.named("transcode_deferred", path=str(second))) == 1  # logged once
    assert not daemon.named("transcode_lane_wide")  # workers = 2, max_transcodes = 1: one worker stays free

    assert daemon.stop() == 0
    events = [e["event"] for e in daemon.events()]
    assert "transcode_cancelled" in events and "shutdown_timeout" not in events
    assert daemon.named("transcode_cancelled", path=str(first))
    assert [p.name for p in inbox.iterdir() if p.name.startswith(TEMP_PREFIX)] == []
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db", busy_timeout_seconds=5))
    try:
        for path in (first, second):
            record = store.file_record(path)
            assert record is not None and (record.state, record.attempts) == ("queued", 0), record
    finally:
        store.close()

    again = daemon_factory(sections, extra_env=slow, name="again")
    started = again.wait_for("file_started", where=lambda e: e["path"] in (str(first), str(second)))
    assert started[0]["attempt"] == 1  # the cancelled transcode starts again from zero, its first attempt
    assert again.stop() == 0


def test_a_transcode_not_smaller_frees_its_slot_and_its_content_is_not_encoded_again(tmp_path):
    """The lane admits the transcode in before_apply; exec discards the result as
    ``not_smaller`` and applies the rest of the plan (a flag) the usual way: the slot is
    freed, the outcome recorded skipped and permanent, and the content vpod left is not
    queued again under that policy (the watcher's enqueue after vpod's own edit)."""
    from support.transcode_media import tiny_hevc

    folder = tmp_path / "library"
    folder.mkdir()
    source = tiny_hevc(folder / "small.mkv")  # English audio, not default: the flag is a header edit
    store = open_store(DatabaseConfig(path=tmp_path / "v.db", busy_timeout_seconds=5))
    store.enqueue(folder, b"small.mkv", *fingerprint_path(source))
    # HEVC into H.264 at CRF 10: far larger than the source.
    table = {"audio_languages": ["eng"], "video_codec": {"codec": "h264", "convert": ["hevc"], "crf": 10, "preset": "ultrafast"}}
    policy = policy_from_table(table, source=None, base_dir=None)
    lane = TranscodeLane(1)
    freed: list[bool] = []
    lane.on_free = lambda: freed.append(True)
    job = store.claim("w1", "b1")
    try:
        with capture_logs() as logs:
            result = make_runner(store, folder, lane, ToolRunner(60)).run(job, PolicySelector.single(policy), "w1", "b1")
        assert result is not None and result.skipped and result.reason == "not_smaller" and result.permanent, result
        assert result.actions == ("track 1: set default flag on",)
        assert freed == [True] and lane.running() == 0 and lane.deferred() == 0
        assert not [e for e in logs if e["event"] in ("transcode_deferred", "transcode_cancelled")]
        record = store.file_record(source)
        assert (record.state, record.reason, record.permanent) == ("skipped", "not_smaller", True), record
        assert store.enqueue(folder, b"small.mkv", *fingerprint_path(source), policy_digest=policy.digest).value == "unchanged"
    finally:
        store.close()


def batch(tmp_path: Path, jpn_eng_mkv: Path, names: list[str], lane: TranscodeLane, seconds: float = 3.0):  # type: ignore[no-untyped-def]
    """A ``vpod process`` batch (BatchProcessor, two workers) over copies of ``names``:
    those with ``enc`` in their name an H.264 clip of ``seconds`` (a transcode), the
    others ``jpn_eng_mkv`` (a header edit)."""
    import io
    import shutil

    from vpod.batch import BatchController
    from vpod.config import WatchConfig
    from vpod.process import BatchProcessor
    from vpod.progress import ProgressTracker, StatusLine
    from vpod.targets import collect_targets
    from vpod.watch.filters import PathFilter

    lib = tmp_path / "lib"
    lib.mkdir()
    clip = h264_clip(tmp_path, seconds)
    for name in names:
        shutil.copyfile(clip if "enc" in name else jpn_eng_mkv, lib / name)
    targets = collect_targets([lib], PathFilter.from_config(WatchConfig()), recursive=False)
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db"))
    runner = JobRunner(
        store, FileProcessor(ToolRunner(120), PipelineOptions(roots=targets.roots, wait_for_lock=True), store),
        max_attempts=1, lane=lane,
    )
    processor = BatchProcessor(
        targets.files, store=store, job_runner=runner, policies=POLICIES, workers=2,
        controller=BatchController("skip"), progress=ProgressTracker(len(targets.files), StatusLine(io.StringIO())),
    )
    return lib, store, processor


def test_vpod_process_runs_header_files_while_a_second_transcode_waits_for_the_slot(tmp_path, jpn_eng_mkv, monkeypatch):
    monkeypatch.setenv("PATH", real_time_ffmpeg(tmp_path))  # each encode lasts its 3 s of media at least
    names = ["a-enc.mkv", "b-enc.mkv", "c.mkv", "d.mkv", "e.mkv"]
    lib, store, processor = batch(tmp_path, jpn_eng_mkv, names, TranscodeLane(1))
    with capture_logs() as logs:
        result = processor.run()
    store.close()
    by_name = {r.path.name: r for r in result.results}
    assert sorted(by_name) == names and not result.stopped_early  # every file has its result
    assert all(by_name[n].success for n in ("c.mkv", "d.mkv", "e.mkv"))
    [deferred] = [Path(e["path"]).name for e in logs if e["event"] == "transcode_deferred"]  # the two workers race
    [first] = {"a-enc.mkv", "b-enc.mkv"} - {deferred}
    # the deferred one waited for the other's slot; the header files did not wait for either
    assert by_name[deferred].started_at >= by_name[first].ended_at
    assert max(by_name[n].ended_at for n in ("c.mkv", "d.mkv", "e.mkv")) <= by_name[first].ended_at


def test_vpod_process_outside_the_hours_skips_the_transcode_and_does_the_rest(tmp_path, jpn_eng_mkv):
    import datetime as dt

    from vpod.lanes import TranscodeHours

    noon = lambda: dt.datetime(2026, 12, 5, 12, 0)  # noqa: E731
    lane = TranscodeLane(1, TranscodeHours(["22:00-07:00"]), now=noon)
    lib, store, processor = batch(tmp_path, jpn_eng_mkv, ["a-enc.mkv", "c.mkv"], lane)
    before = sha(lib / "a-enc.mkv")
    result = processor.run()
    by_name = {r.path.name: r for r in result.results}
    skipped = by_name["a-enc.mkv"]
    assert skipped.skipped and skipped.reason == "outside_transcode_hours" and "2026-12-05 22:00" in skipped.error
    assert by_name["c.mkv"].success and not result.stopped_early
    assert sha(lib / "a-enc.mkv") == before  # nothing changed, not even its header part
    record = store.file_record(lib / "a-enc.mkv")
    assert (record.state, record.attempts) == ("queued", 0), record  # left for a daemon, uncounted
    store.close()


def test_vpod_status_says_a_file_waits_for_transcode_hours_and_when_the_window_opens(tmp_path, daemon_factory, env):
    """A file deferred outside ``transcode_hours`` is shown as such in ``vpod status``
    (text and JSON), with the next window, not as waiting for the lane."""
    import datetime as dt
    import json
    import os

    from support.daemon import run_vpod

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # A one-minute window two hours from now (local time): closed now, whatever the hour.
    opens = dt.datetime.now() + dt.timedelta(hours=2)
    window = f"{opens:%H:%M}-{opens + dt.timedelta(minutes=1):%H:%M}"
    sections = {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "processing": {"workers": 2, "max_transcodes": 1, "transcode_hours": [window]},
        "policy": POLICY_TABLE,
    }
    daemon = daemon_factory(sections)
    staged = h264_clip(tmp_path, 2.0)
    os.rename(staged, inbox / "enc.mkv")
    daemon.wait_for("transcode_deferred", path=str(inbox / "enc.mkv"), reason="outside_transcode_hours")
    data: dict = {}
    for _ in range(600):  # the daemon records the lane's state within seconds
        data = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
        if data["transcodes"]["deferred"]:
            break
        time.sleep(0.1)
    expected = f"{opens:%Y-%m-%d %H:%M}"
    assert data["transcodes"] == {"running": 0, "deferred": 1, "outside_hours": 1, "next_window": expected}, data
    text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
    assert f"1 waiting for transcode_hours (next window {expected})" in text, text
    assert "waiting for a transcode slot" not in text, text
    assert daemon.stop() == 0


def test_unset_workers_beside_an_encoding_policy_keep_a_worker_for_header_edits(tmp_path, daemon_factory, jpn_eng_mkv):
    """T18C finding 2: on a 2-CPU machine with ``workers`` not set, the one default
    worker took the encode and a flag fix waited for all of it. A policy that encodes
    now makes the default half the CPUs plus max_transcodes (2 workers): a header-only
    file dropped while a long encode runs is done during it. (Without such a policy the
    default stays half the CPUs: test_daemon_run.py, test_default_workers_start_without_a_cap_warning.)"""
    import os

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sections = {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "processing": {"shutdown_timeout_seconds": 600},  # no workers: the default
        "policy": POLICY_TABLE,
    }
    # The encode runs at the rate the media plays: 300 s, far longer than the test.
    daemon = daemon_factory(sections, extra_env={"PATH": real_time_ffmpeg(tmp_path), "VPOD_CPU_COUNT": "2"})
    assert daemon.named("daemon_started")[0]["workers"] == 2
    assert not daemon.named("transcode_lane_wide") and not daemon.named("workers_capped")
    clip = h264_clip(tmp_path, 300.0)

    def drop(name: str, source: Path) -> Path:
        staged = tmp_path / name
        staged.write_bytes(source.read_bytes())
        os.rename(staged, inbox / name)
        return inbox / name

    encode = drop("enc.mkv", clip)
    daemon.wait_for("file_started", path=str(encode))
    wait_until(lambda: any(p.name.startswith(TEMP_PREFIX) for p in inbox.iterdir()), "the encode writes its temp file")
    header = drop("hdr.mkv", jpn_eng_mkv)
    daemon.wait_for("file_processed", path=str(header))  # one worker: it would wait the 300 s encode
    outcomes = ("file_processed", "file_failed", "file_retry", "file_skipped")
    assert not [e for e in daemon.events() if e["event"] in outcomes and e.get("path") == str(encode)]
    assert daemon.stop() == 0


def test_one_worker_set_beside_an_encoding_policy_is_warned_and_status_says_why_files_wait(tmp_path, daemon_factory, env, jpn_eng_mkv):
    """``workers = 1`` asked for while the policy encodes: the daemon logs
    ``transcode_lane_wide`` at start (it did only from two workers), and while the one
    worker encodes, ``vpod status`` says why the queued header file waits and where the
    fix is named."""
    import os

    from support.daemon import run_vpod

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sections = {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "processing": {"workers": 1, "shutdown_timeout_seconds": 600},
        "policy": POLICY_TABLE,
    }
    daemon = daemon_factory(sections, extra_env={"PATH": real_time_ffmpeg(tmp_path), "VPOD_CPU_COUNT": "2"})
    [wide] = daemon.named("transcode_lane_wide")
    assert (wide["workers"], wide["max_transcodes"]) == (1, 1) and "set workers = 2" in wide["warning"], wide
    clip = h264_clip(tmp_path, 300.0)
    for name, source in (("enc.mkv", clip), ("hdr.mkv", jpn_eng_mkv)):
        staged = tmp_path / name
        staged.write_bytes(source.read_bytes())
        os.rename(staged, inbox / name)
        if name == "enc.mkv":
            daemon.wait_for("file_started", path=str(inbox / name))
    daemon.wait_for("file_queued", path=str(inbox / "hdr.mkv"))
    text = ""
    for _ in range(300):
        text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
        if "1 queued" in text and "1 encoding" in text:
            break
        time.sleep(0.1)
    assert "every worker is encoding: queued header edits and remuxes wait for an encode to end" in text, text
    assert not daemon.named("file_processed", path=str(inbox / "hdr.mkv"))
    assert daemon.stop() == 0
