"""ProcessReport: exit statuses and the human summary of a vpod process run."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from vpod.exitcodes import ExitCode
from vpod.cli.process_cmd import _log_level, summary_text
from vpod.process import ProcessReport
from vpod.results import BatchResult, FileProcessingResult


def ok(name: str, changes: int = 2) -> FileProcessingResult:
    return FileProcessingResult(path=Path(f"/lib/{name}"), success=True, changes=changes, duration_seconds=0.1)


def failed(name: str) -> FileProcessingResult:
    return FileProcessingResult(
        path=Path(f"/lib/{name}"), success=False, reason="unreadable",
        error=f"/lib/{name}: not a readable media file: ffprobe exited with status 1:\nEBML header parsing failed",
    )


def skipped(name: str) -> FileProcessingResult:
    return FileProcessingResult(
        path=Path(f"/lib/{name}"), success=False, skipped=True, reason="container_not_supported",
        error=f"/lib/{name}: mp4 files need a remux",
    )


def report(results, total=None, **kw) -> ProcessReport:
    batch = BatchResult("b-1", 0.0, total_files=len(results) if total is None else total, results=list(results),
                        total_duration_seconds=1.25, stopped_early=kw.pop("stopped_early", False))
    return ProcessReport(batch, workers=2, workers_requested=2, **kw)


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda: report([]), ExitCode.OK),
        (lambda: report([ok("a.mkv"), skipped("b.mp4")]), ExitCode.OK),
        (lambda: report([ok("a.mkv"), failed("b.mkv")]), ExitCode.FILES_FAILED),
        (lambda: report([ok("a.mkv")], unreadable=[("/lib/locked", "Permission denied")]), ExitCode.FILES_FAILED),
        (lambda: report([ok("a.mkv"), failed("b.mkv")], total=5, stopped_early=True), ExitCode.STOPPED_EARLY),
        (lambda: report([ok("a.mkv")], total=5, stopped_early=True, signal_number=signal.SIGINT), 130),
    ],
)
def test_exit_codes(make, code):
    assert make().exit_code() == code


def test_stopped_early_code_is_distinct():
    codes = {ExitCode.OK, ExitCode.FILES_FAILED, ExitCode.USAGE}
    assert ExitCode.STOPPED_EARLY not in codes


def test_summary_names_counts_time_and_each_failed_file():
    r = report([ok("a.mkv"), ok("same.mkv", changes=0), failed("b.mkv"), skipped("c.mp4")], total=6,
               stopped_early=True, stop_message="/lib/b.mkv failed (unreadable): ...")
    text = summary_text(r)
    first = text.splitlines()[0]
    assert "6 file(s) in 1.2 s with 2 worker(s)" in first
    assert "2 succeeded (1 changed), 1 failed, 1 skipped, 2 not started" in first
    assert "Failed:\n  /lib/b.mkv: not a readable media file" in text
    assert "\n      EBML header parsing failed [unreadable]" in text  # the tool's lines stay under their file
    assert "Skipped:\n  /lib/c.mp4: mp4 files need a remux [container_not_supported]" in text
    assert text.endswith("Stopped early: /lib/b.mkv failed (unreadable): ...")


def test_summary_of_nothing_to_do():
    assert summary_text(report([])).startswith("vpod process: nothing to do")


def test_json_form_holds_every_batch_result_field():
    data = json.loads(json.dumps(report([ok("a.mkv"), failed("b.mkv")], total=3).as_dict()))
    for key in ("total_files", "success_count", "fail_count", "skipped_count", "results",
                "total_duration_seconds", "stopped_early", "batch_id", "not_started", "exit_code"):
        assert key in data
    assert (data["total_files"], data["success_count"], data["fail_count"], data["not_started"]) == (3, 1, 1, 1)
    for item in data["results"]:
        assert {"path", "success", "changes", "duration_seconds", "error"} <= item.keys()


def test_log_level_is_warning_unless_verbose():
    assert _log_level("info", verbose=False) == "warning"
    assert _log_level("error", verbose=False) == "error"
    assert _log_level("debug", verbose=True) == "debug"
