"""`vpod process` end to end: the real command as a subprocess, real files, real MKVToolNix (issue 4)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from support.daemon import write_config
from support.media import default_audio_languages
from support.store import batch_record, state_counts
from support.tools import path_with, slow_tool

pytestmark = pytest.mark.integration


def config_file(tmp_path: Path, **sections: Any) -> Path:
    sections.setdefault("database", {"path": str(tmp_path / "vpod.db")})
    sections.setdefault("logging", {"format": "json"})
    return write_config(tmp_path / "process.toml", sections)


def library(tmp_path: Path, source: Path, count: int, *, name: str = "{:02d}.mkv") -> list[Path]:
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    return [Path(shutil.copyfile(source, lib / name.format(i + 1))) for i in range(count)]


def process(args: list[str], *, config: Path, env: dict[str, str], **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``vpod process``; output decoded without newline translation, so a ``\r`` stays visible."""
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), *args],
        env={**env, **extra_env}, capture_output=True, timeout=240,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def overlapping(results: list[dict]) -> list[tuple[str, str]]:
    """Pairs of files that were in progress at the same time (from their start/end times)."""
    pairs = []
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            if max(a["started_at"], b["started_at"]) < min(a["ended_at"], b["ended_at"]):
                pairs.append((a["path"], b["path"]))
    return pairs


def test_two_workers_overlap_and_every_file_conforms(tmp_path, env, jpn_eng_mkv):
    files = library(tmp_path, jpn_eng_mkv, 10)
    slow = slow_tool(tmp_path / "slowbin", "mkvpropedit", 0.3)  # makes the overlap certain, not just likely
    config = config_file(tmp_path)
    # This machine may have 2 CPUs (cap 1): VPOD_CPU_COUNT is the documented override.
    result = process([str(tmp_path / "lib"), "--workers", "2", "--json"], config=config, env=env,
                     VPOD_CPU_COUNT="4", PATH=path_with(slow))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert (data["workers"], data["total_files"], data["success_count"], data["fail_count"]) == (2, 10, 10, 0)
    assert data["stopped_early"] is False
    assert all(r["success"] and r["changes"] == 2 for r in data["results"])
    assert overlapping(data["results"]), "no two files were in progress at the same time"
    assert sorted(r["path"] for r in data["results"]) == [str(f) for f in files]
    for f in files:
        assert default_audio_languages(f) == ["eng"], f
    assert "\r" not in result.stderr and "Processing:" not in result.stdout
    assert "instead of the" not in result.stderr  # 2 workers fit under a cap of 2
    batch = batch_record(tmp_path / "vpod.db", data["batch_id"])
    assert (batch.source, batch.total_files, batch.success_count, batch.fail_count, batch.stopped_early) == (
        "process", 10, 10, 0, False
    )
    with sqlite3.connect(tmp_path / "vpod.db") as conn:  # the results history: no Store method reads it back
        recorded = conn.execute("SELECT COUNT(*) FROM results WHERE batch_id = ?", (data["batch_id"],)).fetchone()[0]
    assert recorded == 10
    assert state_counts(tmp_path / "vpod.db") == {"queued": 0, "processing": 0, "done": 10, "failed": 0, "skipped": 0}


def test_worker_count_is_capped_at_half_the_cpus_with_a_warning(tmp_path, env, jpn_eng_mkv):
    library(tmp_path, jpn_eng_mkv, 1)
    result = process([str(tmp_path / "lib"), "-w", "3", "--json"], config=config_file(tmp_path), env=env,
                     VPOD_CPU_COUNT="2")
    assert result.returncode == 0, result.stderr
    # half the 2 CPUs, plus max_transcodes (1): the encoders' low-priority workers
    assert "using 2 worker(s) instead of the 3 requested" in result.stderr
    data = json.loads(result.stdout)
    assert (data["workers"], data["workers_requested"]) == (2, 3)


def test_default_worker_count_fits_the_machine_without_a_warning(tmp_path, env, jpn_eng_mkv):
    """Issue 11 item 13: on 2 CPUs, a config that does not set workers runs 1, silently;
    only a count the user asked for is capped with a warning."""
    library(tmp_path, jpn_eng_mkv, 1)
    result = process([str(tmp_path / "lib"), "--json"], config=config_file(tmp_path), env=env, VPOD_CPU_COUNT="2")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    data = json.loads(result.stdout)
    assert (data["workers"], data["workers_requested"]) == (1, None)
    explicit = config_file(tmp_path, processing={"workers": 3})
    capped = process([str(tmp_path / "lib"), "--json"], config=explicit, env=env, VPOD_CPU_COUNT="2")
    assert "using 2 worker(s) instead of the 3 requested" in capped.stderr


def test_config_workers_used_and_overridden_by_the_flag(tmp_path, env, jpn_eng_mkv):
    files = library(tmp_path, jpn_eng_mkv, 4)
    slow = slow_tool(tmp_path / "slowbin", "mkvpropedit", 1.0)
    config = config_file(tmp_path, processing={"workers": 4})
    extra = {"VPOD_CPU_COUNT": "8", "PATH": path_with(slow)}

    first = process([str(tmp_path / "lib"), "--json"], config=config, env=env, **extra)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["workers"] == 4 and "instead of the" not in first.stderr
    assert len({r["worker"] for r in data["results"]}) == 4  # four threads really worked
    assert all(default_audio_languages(f) == ["eng"] for f in files)

    # --force: the files conform and are untouched since, so without it no worker would run.
    second = process([str(tmp_path / "lib"), "--json", "--workers", "1", "--force"], config=config, env=env, **extra)
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["workers"] == 1 and data["workers_requested"] == 1
    assert len({r["worker"] for r in data["results"]}) == 1


def test_fail_stops_after_the_third_of_six(tmp_path, env, jpn_eng_mkv):
    files = library(tmp_path, jpn_eng_mkv, 6)
    files[2].write_text("this is text, not Matroska")
    config = config_file(tmp_path, policy={"on_error": "fail"})

    result = process([str(tmp_path / "lib"), "--workers", "1", "--json"], config=config, env=env)
    assert result.returncode == 3, result.stderr  # the stopped-early status
    data = json.loads(result.stdout)
    assert (data["success_count"], data["fail_count"], data["not_started"]) == (2, 1, 3)
    assert data["stopped_early"] is True and data["total_files"] == 6
    assert [r["path"] for r in data["results"]] == [str(f) for f in files[:3]]
    assert str(files[2]) in data["stop_message"] and "not_media" in data["stop_message"]
    assert [default_audio_languages(f) for f in files[3:]] == [["jpn"]] * 3  # never started, untouched
    assert files[2].read_text() == "this is text, not Matroska"

    human = process([str(tmp_path / "lib"), "-w", "1"], config=config, env=env)
    assert human.returncode == 3
    assert f"Stopped early: {files[2]} failed (not_media)" in human.stdout
    assert "3 not started" in human.stdout and f"Failed:\n  {files[2]}: " in human.stdout


def test_skip_goes_on_in_input_order_and_overrides_the_policy(tmp_path, env, jpn_eng_mkv):
    files = library(tmp_path, jpn_eng_mkv, 6)
    truncated = jpn_eng_mkv.read_bytes()[:3000]
    files[2].write_bytes(truncated)
    config = config_file(tmp_path, policy={"on_error": "fail"})  # --on-error skip must win

    result = process([str(tmp_path / "lib"), "--workers", "1", "--on-error", "skip", "--json"], config=config, env=env)
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert (data["success_count"], data["fail_count"], data["stopped_early"]) == (5, 1, False)
    # --workers 1 is strictly sequential, in input order
    assert [r["path"] for r in data["results"]] == [str(f) for f in files]
    for before, after in zip(data["results"], data["results"][1:]):
        assert after["started_at"] >= before["ended_at"]
    [failure] = [r for r in data["results"] if not r["success"]]
    assert failure["reason"] == "truncated" and str(files[2]) in failure["error"]
    assert files[2].read_bytes() == truncated
    assert all(default_audio_languages(f) == ["eng"] for i, f in enumerate(files) if i != 2)


def test_progress_line_on_a_terminal_never_on_stdout(tmp_path, env, jpn_eng_mkv):
    library(tmp_path, jpn_eng_mkv, 3)
    config = config_file(tmp_path)
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), str(tmp_path / "lib"), "-w", "1"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
    )
    os.close(slave)
    terminal = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    stdout = proc.stdout.read().decode()
    assert proc.wait(60) == 0
    text = terminal.decode(errors="replace")
    assert "\rProcessing: 0/3 files [1 active]" in text
    assert "\rProcessing: 3/3 files [0 active]" in text
    assert "Processing" not in stdout and "3 succeeded" in stdout


def test_waits_for_a_file_locked_by_another_process(tmp_path, env, jpn_eng_mkv):
    """A running daemon holds flock on the file it works on: vpod process waits, then processes it."""
    [target] = library(tmp_path, jpn_eng_mkv, 1)
    config = config_file(tmp_path, logging={"format": "json", "level": "info"})
    holder = os.open(target, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vpod", "process", "--config", str(config), str(target), "-v", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while b'"process_started"' not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(1.0)  # let it reach the lock
        assert proc.poll() is None, log.read_text()  # still waiting, not failed with "locked"
        released = time.time()
    finally:
        os.close(holder)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log.read_text()
    [item] = json.loads(stdout)["results"]
    assert item["success"] and item["ended_at"] >= released
    assert default_audio_languages(target) == ["eng"]


def test_dry_run_recursive_each_file_once_writes_nothing(tmp_path, env, jpn_eng_mkv):
    files = library(tmp_path, jpn_eng_mkv, 2)
    (tmp_path / "lib" / "sub").mkdir()
    files.append(Path(shutil.copyfile(jpn_eng_mkv, tmp_path / "lib" / "sub" / "03.mkv")))
    before = [f.read_bytes() for f in files]
    lib = str(tmp_path / "lib")
    result = process([lib, str(files[0]), lib, "-R", "--dry-run", "--json"], config=config_file(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dry_run"] is True and data["total_files"] == 3 and data["skipped_count"] == 3
    assert sorted(r["path"] for r in data["results"]) == sorted(str(f) for f in files)
    assert all(r["reason"] == "dry_run" and r["actions"] for r in data["results"])
    assert [f.read_bytes() for f in files] == before


def test_nothing_to_do_and_ignored_names(tmp_path, env):
    (tmp_path / "lib").mkdir()
    notes = tmp_path / "lib" / "notes.txt"
    notes.write_text("not a video")
    result = process([str(tmp_path / "lib"), str(notes)], config=config_file(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert f"{notes}: its extension is not one of" in result.stdout


def test_sigint_finishes_the_file_in_progress_and_starts_no_other(tmp_path, env, jpn_eng_mkv):
    files = library(tmp_path, jpn_eng_mkv, 4)
    slow = slow_tool(tmp_path / "slowbin", "mkvpropedit", 1.0)
    config = config_file(tmp_path, logging={"format": "json", "level": "info"})
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vpod", "process", "--config", str(config), str(tmp_path / "lib"),
             "-w", "1", "-v", "--json"],
            env={**env, "PATH": path_with(slow)}, stdout=subprocess.PIPE, stderr=err,
        )
    deadline = time.monotonic() + 60
    while b'"file_processed"' not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, log.read_text()
    data = json.loads(stdout)
    assert data["stopped_early"] is True and "SIGINT" in data["stop_message"]
    done = [r for r in data["results"] if r["success"]]
    assert len(done) == len(data["results"]) and 1 <= len(done) < 4
    assert data["not_started"] == 4 - len(done)
    for f in files:
        expected = ["eng"] if str(f) in {r["path"] for r in done} else ["jpn"]
        assert default_audio_languages(f) == expected, f


def test_a_second_sigint_kills_the_tools_in_progress(tmp_path, env, jpn_eng_mkv):
    [target] = library(tmp_path, jpn_eng_mkv, 1)
    slow = slow_tool(tmp_path / "slowbin", "mkvpropedit", 300)  # would outlive any test timeout
    config = config_file(tmp_path, logging={"format": "json", "level": "info"})
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vpod", "process", "--config", str(config), str(target), "-v", "--json"],
            env={**env, "PATH": path_with(slow)}, stdout=subprocess.PIPE, stderr=err,
        )
    deadline = time.monotonic() + 60
    while b'"process_started"' not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    time.sleep(1.0)  # into the (sleeping) mkvpropedit
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # the first one lets the file finish
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, log.read_text()
    data = json.loads(stdout)
    [item] = data["results"]
    assert not item["success"] and item["reason"] == "killed"
    # The summary says the file was stopped, not "files in progress completed".
    assert "files in progress were stopped" in data["stop_message"], data["stop_message"]
    assert default_audio_languages(target) == ["jpn"]  # killed before it wrote anything
    assert "send it again to kill" in log.read_text()


def test_public_corpus_every_file_reported_and_failures_untouched(tmp_path, env):
    """Files nobody on the team made: each gets one result, each failure names its file."""
    from conftest import CORPUS

    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} not present")
    lib = tmp_path / "lib"
    lib.mkdir()
    originals = {}
    for source in sorted(CORPUS.iterdir()):
        if source.suffix.lower() in (".mkv", ".mp4", ".m4v", ".mov", ".avi", ".webm"):
            originals[lib / source.name] = source
            shutil.copyfile(source, lib / source.name)
    result = process([str(lib), "-w", "2", "--json"], config=config_file(tmp_path), env=env, VPOD_CPU_COUNT="4")
    data = json.loads(result.stdout)
    assert result.returncode == (1 if data["fail_count"] else 0), result.stderr
    assert sorted(r["path"] for r in data["results"]) == sorted(str(p) for p in originals)
    for r in data["results"]:
        path = Path(r["path"])
        if not r["success"]:
            assert r["reason"] and r["path"] in r["error"], r
        if not r["changes"]:
            assert path.read_bytes() == originals[path].read_bytes(), path  # nothing written


def test_two_process_runs_with_different_databases_on_the_same_files(tmp_path, env, media_cache):
    """Found by a first-time user: the second run waited for each file's lock, found the
    file replaced by the first run's remux, and reported it "locked". Now it looks at the
    new file, which conforms already: both runs succeed and every file conforms once."""
    from support.media import audio, mkvmerge_tracks, video

    source = media_cache("jpn-first.mkv", [video(), audio("jpn", default=True), audio("eng")])
    files = library(tmp_path, source, 5)
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vpod", "process", "--json", "--config", str(config_file(folder)), str(files[0].parent)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for folder in (first, second)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err.decode()[-2000:]
    reports = [json.loads(out) for out, _ in outputs]
    for report in reports:
        assert report["fail_count"] == 0 and report["success_count"] == 5, report
    for path in files:
        audio_tracks = [t for t in mkvmerge_tracks(path) if t["type"] == "audio"]
        assert [(t["language"], t["default"]) for t in audio_tracks] == [("eng", True), ("jpn", False)]
    changed = sum(r["changes"] > 0 for report in reports for r in report["results"])
    assert changed == 5  # each file changed by exactly one of the two runs


@pytest.mark.parametrize("count, message", [("0", "at least 1"), ("-2", "at least 1"), ("257", "at most 256")])
def test_a_worker_count_out_of_range_is_a_usage_error(tmp_path, env, count, message):
    result = process([str(tmp_path), "--workers", count], config=config_file(tmp_path), env=env)
    assert result.returncode == 2
    assert message in result.stderr and result.stdout == ""
