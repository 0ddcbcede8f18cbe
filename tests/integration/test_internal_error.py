"""A bug in vpod while a file is handled (not a problem of the file) never leaves it
"processing" forever: the file is recorded failed (reason ``internal_error``), its batch
completes and the daemon goes on.

The bug is driven by real input: an mkvmerge stand-in prints JSON of a shape the probe
does not expect (a list instead of an object) for one file name only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import run_vpod, write_config
from support.media import default_audio_languages
from support.store import file_record
from support.tools import odd_output_tool, path_with

pytestmark = pytest.mark.integration

MARKER = "trips-a-bug"


def file_row(db: Path, path: Path) -> tuple[str, str | None, str | None, str | None]:
    record = file_record(db, path)
    return record.state, record.reason, record.error, record.worker


def test_daemon_records_a_bug_as_internal_error_and_goes_on(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    odd = odd_output_tool(tmp_path / "bin", "mkvmerge", MARKER, "[]")
    daemon = daemon_factory(
        {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}}, extra_env={"PATH": path_with(odd)}
    )
    buggy = Path(shutil.copyfile(jpn_eng_mkv, inbox / f"{MARKER}.mkv"))
    before = buggy.read_bytes()

    error = daemon.wait_for("worker_error", path=str(buggy))[0]
    assert "AttributeError" in error["exception"]
    failed = daemon.wait_for("file_failed", path=str(buggy))[0]
    assert failed["reason"] == "internal_error" and str(buggy) in failed["error"], failed
    assert "AttributeError" in failed["error"]
    daemon.wait_for("batch_completed", where=lambda e: e["batch_id"] == failed["batch_id"] and e["fail_count"] == 1)
    state, reason, last_error, worker = file_row(tmp_path / "vpod.db", buggy)
    assert (state, reason, worker) == ("failed", "internal_error", None)
    assert "AttributeError" in last_error

    report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    assert report["in_progress"] == [] and report["counts"]["processing"] == 0

    good = Path(shutil.copyfile(jpn_eng_mkv, inbox / "good.mkv"))
    daemon.wait_for("file_processed", path=str(good))
    assert default_audio_languages(good) == ["eng"]
    assert daemon.stop() == 0
    assert buggy.read_bytes() == before


def test_process_reports_a_bug_as_that_files_failure_and_records_it(tmp_path, env, jpn_eng_mkv):
    lib = tmp_path / "lib"
    lib.mkdir()
    buggy = Path(shutil.copyfile(jpn_eng_mkv, lib / f"{MARKER}.mkv"))
    good = Path(shutil.copyfile(jpn_eng_mkv, lib / "good.mkv"))
    odd = odd_output_tool(tmp_path / "bin", "mkvmerge", MARKER, "[]")
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"}})
    out = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), str(lib), "--json"],
        env={**env, "PATH": path_with(odd)}, capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    by_path = {r["path"]: r for r in data["results"]}
    assert by_path[str(buggy)]["reason"] == "internal_error"
    assert str(buggy) in by_path[str(buggy)]["error"] and "AttributeError" in by_path[str(buggy)]["error"]
    assert by_path[str(good)]["success"] is True
    assert (data["fail_count"], data["success_count"], data["total_files"]) == (1, 1, 2)
    # recorded, not left "processing" for the next run to find abandoned
    state, reason, last_error, worker = file_row(tmp_path / "vpod.db", buggy)
    assert (state, reason, worker) == ("failed", "internal_error", None)
    assert "AttributeError" in last_error
    assert default_audio_languages(good) == ["eng"]
