"""ProgressTracker and StatusLine: in place on a terminal, plain elsewhere, thread-safe."""

from __future__ import annotations

import io
import threading

from vpod.progress import ProgressTracker, StatusLine


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_terminal_redraws_one_line_in_place():
    term = FakeTerminal()
    tracker = ProgressTracker(3, StatusLine(term))
    tracker.start_file()
    tracker.start_file()
    tracker.complete_file(True)
    tracker.complete_file(False)
    tracker.start_file()
    tracker.complete_file(True)
    tracker.finish()
    out = term.getvalue()
    assert "\rProcessing: 0/3 files [2 active]" in out
    assert "\rProcessing: 1/3 files [1 active]" in out
    assert "\rProcessing: 2/3 files [0 active, 1 failed]" in out
    assert out.endswith("\rProcessing: 3/3 files [0 active, 1 failed]\n")
    assert out.count("\n") == 1  # every update overwrote the same line


def test_log_lines_go_above_the_status_line():
    term = FakeTerminal()
    line = StatusLine(term)
    tracker = ProgressTracker(2, line)
    tracker.start_file()
    line.write("file_failed path=/x.mkv\n")
    out = term.getvalue()
    status = "Processing: 0/2 files [1 active]"
    # the status is erased, the log line written on a clean line, the status drawn again
    erase = "\r" + " " * len(status) + "\r"
    assert out == f"\r{status}{erase}file_failed path=/x.mkv\n\r{status}"


def test_shorter_text_covers_the_longer_one():
    term = FakeTerminal()
    line = StatusLine(term)
    line.show("a long status text")
    line.show("short")
    assert term.getvalue() == "\ra long status text\rshort" + " " * 13


def test_not_a_terminal_never_writes_carriage_returns():
    stream = io.StringIO()
    clock = Clock()
    tracker = ProgressTracker(4, StatusLine(stream), plain_interval_seconds=10.0, clock=clock)
    tracker.start_file()
    tracker.complete_file(True)
    assert stream.getvalue() == ""  # less than the interval since the start
    clock.now = 11.0
    tracker.start_file()
    clock.now = 12.0
    tracker.complete_file(False)  # within 10 s of the last line: nothing
    tracker.finish()
    assert stream.getvalue() == "Processing: 1/4 files [1 active]\n"
    assert "\r" not in stream.getvalue()


def test_not_a_terminal_can_print_nothing():
    stream = io.StringIO()
    tracker = ProgressTracker(2, StatusLine(stream), plain_interval_seconds=None)
    for _ in range(2):
        tracker.start_file()
        tracker.complete_file(True)
    tracker.finish()
    assert stream.getvalue() == ""
    assert tracker.text() == "Processing: 2/2 files [0 active]"


def test_counts_stay_consistent_across_threads():
    stream = FakeTerminal()
    tracker = ProgressTracker(800, StatusLine(stream))
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for i in range(100):
            tracker.start_file()
            tracker.complete_file(i % 10 != 0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (tracker.completed, tracker.active, tracker.failed) == (800, 0, 80)
    # every redraw is whole: no line torn by another thread's write
    for frame in stream.getvalue().split("\r")[1:]:
        assert frame.strip() == "" or frame.startswith("Processing: ")
