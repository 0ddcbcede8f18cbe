"""BatchController and the daemon's batch windows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vpod.batch import BatchController, BatchWindows
from vpod.results import FileProcessingResult

OK = FileProcessingResult(path=Path("/a"), success=True, changes=1)
FAIL = FileProcessingResult(path=Path("/b"), success=False, error="broken")
SKIP = FileProcessingResult(path=Path("/c"), success=False, skipped=True, reason="vanished")


def test_fail_stops_at_the_first_failure():
    controller = BatchController("fail")
    assert not controller.record(OK)
    assert not controller.record(SKIP)
    assert controller.record(FAIL)
    assert controller.should_stop()
    assert controller.first_failure is FAIL
    assert not controller.record(FAIL)  # only the first one stops
    controller.reset()
    assert not controller.should_stop()


def test_skip_never_stops():
    controller = BatchController("skip")
    assert not controller.record(FAIL)
    assert not controller.should_stop()
    controller.signal_stop()
    assert controller.should_stop()


def test_bad_on_error():
    with pytest.raises(ValueError):
        BatchController("retry")


def test_window_closes_when_idle_with_counts():
    windows = BatchWindows(60)
    ids = [windows.start_file() for _ in range(3)]
    assert len(set(ids)) == 1
    windows.finish_file(ids[0], OK)
    windows.finish_file(ids[1], FAIL)
    assert windows.close_ready(idle=True) == []  # one file still in progress
    windows.finish_file(ids[2], SKIP)
    [batch] = windows.close_ready(idle=True)
    assert (batch.total_files, batch.success_count, batch.fail_count, batch.skipped_count) == (3, 1, 1, 1)
    assert batch.total_duration_seconds >= 0 and batch.ended_at >= batch.started_at
    assert windows.close_ready(idle=True) == []


def test_window_deadline_starts_a_new_window():
    windows = BatchWindows(0.05)
    first = windows.start_file()
    time.sleep(0.06)
    second = windows.start_file()
    assert first != second
    windows.finish_file(first, OK)
    [closed] = windows.close_ready(idle=False)
    assert closed.batch_id == first
    windows.finish_file(second, OK)
    time.sleep(0.06)
    [closed] = windows.close_ready(idle=False)
    assert closed.batch_id == second


def test_cancelled_files_do_not_count_and_empty_windows_vanish():
    windows = BatchWindows(60)
    batch_id = windows.start_file()
    windows.cancel_file(batch_id)
    assert windows.close_ready(idle=True) == []


def test_stopped_early():
    windows = BatchWindows(60)
    batch_id = windows.start_file()
    windows.finish_file(batch_id, FAIL, stopped_early=True)
    [batch] = windows.close_ready(idle=False)
    assert batch.stopped_early
    assert windows.start_file() != batch_id  # a new window for what comes after resume


def test_stopped_early_even_when_the_window_already_stopped_taking_files():
    windows = BatchWindows(0.01)
    batch_id = windows.start_file()
    time.sleep(0.02)
    assert windows.close_ready(idle=False) == []  # retired by its deadline, one file in progress
    windows.finish_file(batch_id, FAIL, stopped_early=True)
    [batch] = windows.close_ready(idle=False)
    assert batch.stopped_early and batch.fail_count == 1


def test_a_retried_file_stays_in_the_window_it_started_in():
    """A transient failure is not an outcome: the retry runs under the same batch id,
    the window waits for it (idle or past its deadline) and counts the file once."""
    windows = BatchWindows(60)
    first = windows.start_file(job_id=7)
    windows.defer_file(first, 7)
    assert windows.close_ready(idle=True) == []  # idle while the retry waits: not closed
    other = windows.start_file(job_id=8)  # a file arriving meanwhile opens the next window
    assert other != first
    assert windows.start_file(job_id=7) == first
    windows.finish_file(first, OK)
    windows.finish_file(other, SKIP)
    batches = {b.batch_id: b for b in windows.close_ready(idle=True)}
    assert (batches[first].total_files, batches[first].success_count) == (1, 1)
    assert batches[other].total_files == 1


def test_a_retry_that_will_not_come_back_is_let_go():
    windows = BatchWindows(60)
    batch_id = windows.start_file(job_id=1)
    windows.finish_file(batch_id, OK)
    windows.start_file(job_id=2)
    windows.defer_file(batch_id, 2)
    assert windows.waiting() == 1 and windows.close_ready(idle=True) == []
    assert windows.drop_waiting() == 1
    [batch] = windows.close_ready(idle=True)
    assert (batch.batch_id, batch.total_files, batch.success_count) == (batch_id, 1, 1)
    assert windows.start_file(job_id=2) != batch_id  # a late retry opens a new window


def test_a_stale_idle_does_not_end_a_window_whose_file_runs():
    """The closer reads "idle" (nothing running, nothing queued) a moment before it
    closes windows; a file claimed in between already runs in the open window, so that
    window keeps taking files (CI once split 4 files dropped together into 1 + 3)."""
    windows = BatchWindows(60)
    first = windows.start_file(job_id=1)
    assert windows.close_ready(idle=True) == []  # stale idle: the first file runs
    assert windows.start_file(job_id=2) == first  # the next file joins the same window
    windows.finish_file(first, OK)
    windows.finish_file(first, SKIP)
    [batch] = windows.close_ready(idle=True)
    assert (batch.batch_id, batch.total_files) == (first, 2)


def test_a_window_whose_only_file_waits_for_a_retry_stops_taking_files_when_idle():
    windows = BatchWindows(60)
    first = windows.start_file(job_id=1)
    windows.defer_file(first, 1)
    assert windows.close_ready(idle=True) == []
    assert windows.start_file(job_id=2) != first
