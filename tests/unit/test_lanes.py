"""The transcode lane: slots, transcode_hours windows (fake wall clock), logged-once
deferrals, and the 30 s progress cadence of a transcode (fake monotonic clock)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from support.clock import FakeClock

from vpod.config import ProcessingConfig, VPOConfig
from vpod.db.store import Job
from vpod.file_progress import TRANSCODE_LOG_SECONDS, FileProgress
from vpod.lanes import LANE_FULL, OUTSIDE_HOURS, HoursWindow, TranscodeDeferred, TranscodeHours, TranscodeLane, lane_warning
from vpod.policy.plan import Plan, SetFlag, TranscodeVideo

ENCODE = Plan((TranscodeVideo(0, "hevc", crf=22, preset="medium"),))
HEADER = Plan((SetFlag(1, "default", True),))


class WallClock:
    """Local wall-clock time the test moves."""

    def __init__(self, when: dt.datetime) -> None:
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when


def job(n: int) -> Job:
    return Job(n, Path("/library"), f"f{n}.mkv".encode(), f"fp{n}", 0)


def at(hour: int, minute: int, day: int = 5) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, 30)


def test_a_window_crossing_midnight_holds_the_night_and_ends_exclusive():
    night = HoursWindow.parse("22:00-07:00")
    assert night == HoursWindow(22 * 60, 7 * 60)
    inside = ["22:00", "23:59", "00:00", "03:15", "06:59"]
    outside = ["07:00", "12:00", "21:59"]
    minute = lambda t: int(t[:2]) * 60 + int(t[3:])  # noqa: E731
    assert all(night.contains(minute(t)) for t in inside)
    assert not any(night.contains(minute(t)) for t in outside)
    assert HoursWindow.parse("00:00-00:00").contains(minute("12:00"))  # a whole day
    # Any window whose start is its end is the whole day, as the README's config block says.
    assert all(HoursWindow.parse("22:00-22:00").contains(minute(t)) for t in [*inside, *outside])
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert '"22:00-22:00", is the whole day' in readme


def test_next_window_opens_later_today_or_tomorrow():
    hours = TranscodeHours(["22:00-07:00", "12:00-13:00"])
    assert hours.next_open(at(7, 0)) == dt.datetime(2026, 12, 5, 12, 0)
    assert hours.next_open(at(13, 5)) == dt.datetime(2026, 12, 5, 22, 0)
    assert hours.next_open(at(2, 0)) == at(2, 0)  # open now
    only_morning = TranscodeHours(["01:00-02:00"])
    assert only_morning.next_open(at(3, 0)) == dt.datetime(2026, 12, 6, 1, 0)  # the next day
    assert TranscodeHours().next_open(at(3, 0)) is None and TranscodeHours().open_at(at(3, 0))


def test_a_full_lane_defers_a_transcode_but_passes_header_edits_and_frees_with_a_poke():
    pokes: list[int] = []
    lane = TranscodeLane(1, on_free=lambda: pokes.append(1))
    with capture_logs() as logs:
        with lane.ticket(job(1)) as running:
            running.admit(ENCODE)
            assert running.holds and lane.running() == 1
            header = lane.ticket(job(2))
            header.admit(HEADER)  # a header edit never needs a slot
            assert not header.holds
            for _ in range(2):  # claimed again while still full: deferred again, logged once
                with pytest.raises(TranscodeDeferred) as deferred, lane.ticket(job(3)) as waiting:
                    waiting.admit(ENCODE)
                assert deferred.value.reason == LANE_FULL
            assert lane.passed_over() == ([3], None)  # until a slot frees, which pokes
            assert lane.deferred() == 1
        assert pokes == [1] and lane.running() == 0
        assert lane.passed_over() == ([], None)
        with lane.ticket(job(3)) as now_free:
            now_free.admit(ENCODE)
            assert now_free.holds
    lines = [e for e in logs if e["event"] == "transcode_deferred"]
    assert [(e["path"], e["reason"]) for e in lines] == [("/library/f3.mkv", LANE_FULL)]


def test_outside_the_hours_a_transcode_waits_for_the_window_across_midnight():
    clock = WallClock(at(21, 58))
    lane = TranscodeLane(2, TranscodeHours(["22:00-07:00"]), now=clock)
    with capture_logs() as logs:
        with pytest.raises(TranscodeDeferred) as deferred, lane.ticket(job(1)) as ticket:
            ticket.admit(ENCODE)
        lane.ticket(job(2)).admit(HEADER)  # header edits are not limited by the hours
    assert deferred.value.reason == OUTSIDE_HOURS
    assert deferred.value.next_window == dt.datetime(2026, 12, 5, 22, 0)
    ids, wait = lane.passed_over()
    assert ids == [1] and wait == pytest.approx(90.0)  # 21:58:30 → 22:00
    assert [e["next_window"] for e in logs if e["event"] == "transcode_deferred"] == ["2026-12-05T22:00"]
    clock.when = at(23, 59)
    assert lane.passed_over() == ([], None)
    clock.when = at(6, 59, day=6)  # after midnight: still inside
    with lane.ticket(job(1)) as ticket:
        ticket.admit(ENCODE)
        assert ticket.holds
    clock.when = at(7, 0, day=6)
    with pytest.raises(TranscodeDeferred), lane.ticket(job(3)) as late:
        late.admit(ENCODE)


def test_a_reload_changes_the_slots_and_the_hours_and_pokes():
    pokes: list[int] = []
    lane = TranscodeLane(1, now=lambda: at(12, 0), on_free=lambda: pokes.append(1))
    lane.reconfigure(VPOConfig(processing=ProcessingConfig(max_transcodes=3, transcode_hours=("22:00-07:00",))))
    assert lane.max_transcodes == 3 and pokes == [1]
    with pytest.raises(TranscodeDeferred):
        lane.ticket(job(1)).admit(ENCODE)


def test_the_warning_when_the_lane_is_as_wide_as_the_workers():
    assert lane_warning(workers=2, max_transcodes=1) is None
    assert "header edits" in (lane_warning(workers=2, max_transcodes=2) or "")
    assert "header edits" in (lane_warning(workers=3, max_transcodes=4) or "")
    assert lane_warning(workers=1, max_transcodes=1) is None  # nothing to change in the lane: doctor says it


def test_one_worker_beside_a_policy_that_encodes_is_warned_about_naming_the_fix():
    # T18C finding 2: workers = 1 and max_transcodes = 1 while [policy] encodes: a flag
    # fix waits for the whole encode.
    warning = lane_warning(workers=1, max_transcodes=1, encoding=("default",))
    assert warning is not None and "policy default encodes" in warning
    assert "set workers = 2" in warning and "leave workers unset" in warning
    assert "max_transcodes below workers" not in warning  # it cannot go below 1
    wide = lane_warning(workers=2, max_transcodes=2, encoding=("default", "anime"))
    assert wide is not None and "set workers = 3" in wide and "max_transcodes below workers" in wide
    assert lane_warning(workers=2, max_transcodes=1, encoding=("default",)) is None


def test_a_transcode_logs_progress_every_30_seconds_with_speed_fps_and_eta():
    clock = FakeClock(100.0)
    with capture_logs() as logs:
        progress = FileProgress(lambda p, eta: None, structlog.get_logger("vpod"), clock)
        progress.transcoding = True
        progress.update(0.0)
        for tick in range(1, 201):  # ffmpeg reports every 0.5 s: 100 s of encoding, 1 % per second
            clock.now = 100.0 + tick * 0.5
            progress.update(tick * 0.5, speed=0.25, fps=6.0)
    lines = [e for e in logs if e["event"] == "file_progress"]
    assert [e["percent"] for e in lines] == [30.0, 60.0, 90.0]  # 10 % steps would be 9 lines
    assert all(e["speed"] == 0.25 and e["fps"] == 6.0 for e in lines)
    assert [e["eta_seconds"] for e in lines] == [70, 40, 10]
    assert progress.latest is not None and progress.latest.speed == 0.25
    assert TRANSCODE_LOG_SECONDS == 30.0


def test_a_remux_keeps_its_ten_percent_steps_and_accepts_speed():
    clock = FakeClock(0.0)
    with capture_logs() as logs:
        progress = FileProgress(lambda p, eta: None, structlog.get_logger("vpod"), clock)
        progress.update(0.0)
        for percent in range(1, 100):
            clock.now += 1.0
            progress.update(float(percent), speed=2.0)
    assert len([e for e in logs if e["event"] == "file_progress"]) == 9


def test_the_daemon_logs_the_wide_lane_at_start_and_reload():
    with capture_logs() as logs:
        TranscodeLane(2).check_width(2)
        TranscodeLane(1).check_width(2)
        TranscodeLane(1).check_width(1)
        TranscodeLane(1).check_width(1, ("default",))
    assert [(e["event"], e["log_level"]) for e in logs] == [("transcode_lane_wide", "warning")] * 2


def test_metrics_show_the_lane_and_each_busy_workers_progress():
    from prometheus_client import generate_latest

    from vpod.file_progress import ProgressBoard
    from vpod.metrics import Metrics

    lane = TranscodeLane(1)
    board = ProgressBoard()
    clock = FakeClock(0.0)
    encode = FileProgress(lambda p, eta: None, structlog.get_logger("vpod"), clock)
    encode.transcoding = True
    encode.update(0.0)
    clock.now = 10.0
    encode.update(20.0, speed=1.5, fps=36.0)
    board.follow("worker-1", encode, "/library/film.mkv")
    metrics = Metrics(
        queue_depth=lambda: 0, active=lambda: 1, workers=lambda: 2, paused=lambda: False, started_at=0.0,
        node="n", version="v", lane=lane, progress=board.points,
    )
    with lane.ticket(job(1)) as ticket:
        ticket.admit(ENCODE)
        with pytest.raises(TranscodeDeferred):
            lane.ticket(job(2)).admit(ENCODE)
        text = generate_latest(metrics.registry).decode()
    assert "vpod_transcodes_running 1.0" in text and "vpod_transcodes_deferred 1.0" in text
    assert 'vpod_file_progress_percent{kind="transcode",worker="worker-1"} 20.0' in text
    assert 'vpod_file_eta_seconds{kind="transcode",worker="worker-1"} 40.0' in text
    assert 'vpod_transcode_speed{worker="worker-1"} 1.5' in text and 'vpod_transcode_fps{worker="worker-1"} 36.0' in text
    assert board.encodes() == {"/library/film.mkv": {"speed": 1.5, "fps": 36.0}}
    board.drop("worker-1")
    assert "vpod_file_progress_percent{" not in generate_latest(metrics.registry).decode()


def test_a_freed_slot_lets_one_deferred_file_through_not_all():
    lane = TranscodeLane(1)
    with lane.ticket(job(1)) as running:
        running.admit(ENCODE)
        for n in (2, 3, 4):
            with pytest.raises(TranscodeDeferred):
                lane.ticket(job(n)).admit(ENCODE)
        assert lane.passed_over() == ([2, 3, 4], None)
    assert lane.passed_over() == ([3, 4], None)  # one slot: the oldest deferral may be claimed
    with lane.ticket(job(2)) as next_one:
        next_one.admit(ENCODE)
        assert lane.passed_over() == ([3, 4], None)
    assert lane.passed_over() == ([4], None)


def test_when_the_window_opens_the_waiting_files_queue_for_the_slots():
    clock = WallClock(at(21, 0))
    lane = TranscodeLane(1, TranscodeHours(["22:00-07:00"]), now=clock)
    for n in (1, 2):
        with pytest.raises(TranscodeDeferred):
            lane.ticket(job(n)).admit(ENCODE)
    assert lane.passed_over()[0] == [1, 2]
    clock.when = at(22, 0)
    assert lane.passed_over() == ([2], None)  # one slot: one file through, the other waits for it


def test_the_status_record_is_written_when_an_encode_starts_and_ends_at_most_once_a_second():
    """vpod status shows an encode at once (issue 18 fix): the lane's start and end wake
    the main loop and the record is written at the next tick, not at the next timer
    (which, for an idle daemon, is the heartbeat's, up to 30 s later); never twice
    within MIN_RECORD_SECONDS."""
    from vpod.daemon.transcodes import MIN_RECORD_SECONDS, TranscodeStatus
    from vpod.file_progress import ProgressBoard

    lane = TranscodeLane(2)
    writes: list[tuple[float, object]] = []
    wakes: list[int] = []
    now = [100.0]
    status = TranscodeStatus(
        lane, ProgressBoard(), lambda **keys: writes.append((now[0], keys["transcodes"])) or True,
        wake=lambda: wakes.append(1),
    )
    lane.on_change = status.changed
    assert status.tick(now[0]) == float("inf") and writes == [(100.0, None)]  # idle: no timer

    now[0] = 130.0
    with lane.ticket(job(1)) as first:
        first.admit(ENCODE)
        assert wakes == [1]
        status.tick(now[0])  # the woken main loop's tick
        assert [json.loads(w) if w else w for _, w in writes[1:]] == [{"deferred": 0, "encodes": {}, "running": 1}]
        now[0] = 130.2
        with lane.ticket(job(2)) as second:
            second.admit(ENCODE)
            assert status.tick(now[0]) == 130.0 + MIN_RECORD_SECONDS  # too soon: written at 131
            assert len(writes) == 2
            now[0] = 131.0
            status.tick(now[0])
            assert json.loads(writes[-1][1])["running"] == 2
    now[0] = 132.5
    status.tick(now[0])  # both ended
    assert writes[-1] == (132.5, None) and len(wakes) == 4
    assert status.tick(133.0) == float("inf")
