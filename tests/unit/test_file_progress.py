"""Progress of a remux: the tools' lines, the log steps and the bounded database writes."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs
from support.clock import FakeClock

from vpod.db.store import StoreBusy
from vpod.file_progress import STORE_INTERVAL_SECONDS, FileProgress
from vpod.media.tool_progress import ffmpeg_line_reader, mkvmerge_line_reader


def test_mkvmerge_gui_mode_lines_give_percentages():
    seen: list[float] = []
    read = mkvmerge_line_reader(seen.append)
    for line in ["mkvmerge v74.0.0 ('You Oughta Know') 64-bit", "#GUI#progress 0%", "#GUI#progress 39%",
                 "#GUI#warning something", "#GUI#progress 100%", "Multiplexing took 1 second."]:  # fmt: skip
        read(line)
    assert seen == [0.0, 39.0, 100.0]


def test_ffmpeg_progress_blocks_give_the_share_of_the_duration():
    seen: list[float] = []
    read = ffmpeg_line_reader(lambda percent, **_: seen.append(percent), 200.0)
    for line in ["frame=1", "out_time_us=N/A", "out_time_us=50000000", "progress=continue",
                 "out_time_us=250000000", "progress=end"]:  # fmt: skip
        read(line)
    assert seen == [25.0, 99.9, 100.0]  # past the probed duration: not done until the end
    unknown: list[float] = []
    read = ffmpeg_line_reader(lambda percent, **_: unknown.append(percent), None)
    read("out_time_us=50000000")
    read("progress=end")
    assert unknown == [100.0]


def test_log_lines_at_each_ten_percent_step_and_database_writes_at_most_every_five_seconds():
    clock = FakeClock(50.0)
    noted: list[tuple[float, float, float | None]] = []
    with capture_logs() as logs:
        progress = FileProgress(lambda p, eta: noted.append((clock.now, p, eta)), structlog.get_logger("vpod"), clock)
        progress.update(0.0)  # the tool starts
        for percent in (2, 4, 9, 12, 13, 35, 36, 61, 99.5, 100):
            clock.now += 1.0
            progress.update(float(percent))
    lines = [(e["percent"], e["eta_seconds"]) for e in logs if e["event"] == "file_progress"]
    assert lines == [(12.0, 29), (35.0, 11), (61.0, 5), (99.5, 0)]  # 4 s at 12 %: 29 s left at that pace
    # The end (100 %) is written at once, with no estimate: the row must not keep 61 %
    # and an ETA counting down to nothing while the result is verified.
    assert [(t - 50.0, p) for t, p, _ in noted] == [(1.0, 2.0), (6.0, 35.0), (10.0, 100.0)]
    assert all(b - a >= STORE_INTERVAL_SECONDS for (a, _, _), (b, _, _) in zip(noted[:-1], noted[1:-1]))
    assert noted[0][2] == 49.0 and noted[-1][2] is None  # 1 s for 2 %; nothing left to estimate at the end
    assert progress.latest is not None and (progress.latest.percent, progress.latest.eta_seconds) == (100.0, None)


def test_the_end_is_written_once_and_only_after_a_percentage_was():
    noted: list[tuple[float, float | None]] = []
    clock = FakeClock(10.0)
    quick = FileProgress(lambda p, eta: noted.append((p, eta)), structlog.get_logger("vpod"), clock)
    quick.update(0.0)
    quick.update(100.0)  # a tool that ended before its first percentage: no row was written, none now
    assert noted == []
    progress = FileProgress(lambda p, eta: noted.append((p, eta)), structlog.get_logger("vpod"), clock)
    progress.update(0.0)
    clock.now += 1.0
    progress.update(40.0, speed=1.5, fps=24.0)
    progress.update(100.0)  # mkvmerge may print 100 % twice; ffmpeg's end carries no speed
    progress.update(100.0)
    assert noted == [(40.0, 1.5), (100.0, None)]
    assert progress.latest is not None and (progress.latest.speed, progress.latest.fps) == (1.5, 24.0)


def test_a_busy_database_never_stops_the_remux():
    def busy(percent: float, eta: float | None) -> None:
        raise StoreBusy("locked")

    with capture_logs() as logs:
        progress = FileProgress(busy, structlog.get_logger("vpod"), FakeClock())
        progress.update(0.0)
        progress.update(50.0)
    assert [e["event"] for e in logs] == ["progress_not_recorded", "file_progress"]
