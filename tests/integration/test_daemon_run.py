"""`vpod run` end to end: a real daemon subprocess, real files, real mkvtoolnix (issue 2)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from support.media import default_audio_languages
from support.store import batch_record, state_counts

pytestmark = pytest.mark.integration

SETTLE = 0.5


def watch_config(inbox: Path, **processing: object) -> dict:
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, **processing},
    }


def processed_count(db: Path, name: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM results WHERE success = 1 AND changes > 0 AND CAST(path AS TEXT) LIKE ?", (f"%/{name}",)
        ).fetchone()[0]


def test_cp_mv_rsync_each_processed_once(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    sibling = tmp_path / "staging"
    inbox.mkdir()
    sibling.mkdir()
    daemon = daemon_factory(watch_config(inbox))

    subprocess.run(["cp", str(jpn_eng_mkv), str(inbox / "copied.mkv")], check=True)
    shutil.copyfile(jpn_eng_mkv, sibling / "moved.mkv")
    subprocess.run(["mv", str(sibling / "moved.mkv"), str(inbox / "moved.mkv")], check=True)
    subprocess.run(["rsync", "-a", str(jpn_eng_mkv), str(inbox / "synced.mkv")], check=True)

    names = ("copied.mkv", "moved.mkv", "synced.mkv")
    for name in names:
        daemon.wait_for("file_processed", path=str(inbox / name))
    time.sleep(SETTLE * 4)  # let any event caused by vpod's own rewrite come and go
    assert daemon.stop() == 0

    for name in names:
        assert default_audio_languages(inbox / name) == ["eng"], name
        assert len(daemon.named("file_processed", path=str(inbox / name))) == 1, name
        assert len(daemon.named("file_queued", path=str(inbox / name))) == 1, name
        assert processed_count(tmp_path / "vpod.db", name) == 1
    # rsync's hidden temp file was never queued
    assert all(Path(e["path"]).name in names for e in daemon.named("file_queued"))


def test_slow_writer_processed_only_after_close(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(watch_config(inbox))
    data = jpn_eng_mkv.read_bytes()
    target = inbox / "slow.mkv"
    chunks = 8
    step = len(data) // chunks + 1
    with open(target, "wb") as handle:
        for i in range(chunks):
            handle.write(data[i * step : (i + 1) * step])
            handle.flush()
            time.sleep(SETTLE * 0.6)  # total ≈ 2.4 s, far longer than settle_seconds
    closed_at = time.time()

    event = daemon.wait_for("file_processed", path=str(target))[0]
    queued = daemon.named("file_queued", path=str(target))
    assert len(queued) == 1
    assert _epoch(queued[0]["timestamp"]) >= closed_at - 0.05
    assert event["changes"] == 2
    assert default_audio_languages(target) == ["eng"]
    time.sleep(SETTLE * 4)
    assert len(daemon.named("file_processed", path=str(target))) == 1
    assert daemon.stop() == 0


def test_txt_and_part_files_are_never_queued(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(watch_config(inbox))
    (inbox / "notes.txt").write_text("not a video")
    shutil.copyfile(jpn_eng_mkv, inbox / "movie.mkv.part")
    shutil.copyfile(jpn_eng_mkv, inbox / "Movie.MKV")  # extensions are case-insensitive
    daemon.wait_for("file_processed", path=str(inbox / "Movie.MKV"))
    time.sleep(SETTLE * 3)
    assert daemon.stop() == 0
    assert [e["path"] for e in daemon.named("file_queued")] == [str(inbox / "Movie.MKV")]
    assert default_audio_languages(inbox / "movie.mkv.part") == ["jpn"]  # untouched


def test_batch_completed_counts_and_sigterm(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # In place before the start, so the catch-up scan queues all four at once: dropped
    # while it runs, the first could finish before the others are queued (two batches).
    for i in range(3):
        shutil.copyfile(jpn_eng_mkv, inbox / f"ok-{i}.mkv")
    (inbox / "broken.mkv").write_text("this is text, not Matroska")
    daemon = daemon_factory(watch_config(inbox, shutdown_timeout_seconds=20))
    batches = daemon.wait_for("batch_completed", where=lambda e: e["total_files"] >= 4, timeout=60)
    batch = batches[-1]
    assert (batch["success_count"], batch["fail_count"], batch["skipped_count"]) == (3, 1, 0)
    assert batch["stopped_early"] is False and batch["batch_id"]
    failed = daemon.named("file_failed", path=str(inbox / "broken.mkv"))
    assert failed and "broken.mkv" in failed[0]["error"]

    started = time.monotonic()
    assert daemon.stop(timeout=25) == 0
    assert time.monotonic() - started < 20
    assert daemon.named("daemon_stopped")
    stored = batch_record(tmp_path / "vpod.db", batch["batch_id"])
    assert (stored.total_files, stored.success_count, stored.fail_count) == (4, 3, 1)


def test_sigterm_leaves_unstarted_files_queued(tmp_path, daemon_factory, jpn_eng_mkv, env):
    """Files not started at shutdown stay queued in the database and are done at the next start."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(6):
        shutil.copyfile(jpn_eng_mkv, inbox / f"f{i}.mkv")
    slow_tools = _slow_mkvpropedit(tmp_path, seconds=1.0)
    env_slow = {"PATH": f"{slow_tools}:{os.environ['PATH']}"}
    daemon = daemon_factory(watch_config(inbox), extra_env=env_slow)
    daemon.wait_for("file_processed")
    assert daemon.stop() == 0
    done_first = len(daemon.named("file_processed"))
    assert done_first < 6
    assert state_counts(tmp_path / "vpod.db")["queued"] == 6 - done_first

    again = daemon_factory(watch_config(inbox), name="again")
    again.wait_for("file_processed", count=6 - done_first)
    assert again.stop() == 0
    for i in range(6):
        assert default_audio_languages(inbox / f"f{i}.mkv") == ["eng"]


def _slow_mkvpropedit(tmp_path: Path, seconds: float) -> Path:
    """A stand-in mkvpropedit on PATH that sleeps, then runs the real one."""
    folder = tmp_path / "slowbin"
    folder.mkdir()
    real = shutil.which("mkvpropedit")
    script = folder / "mkvpropedit"
    script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize(
    "sections, key",
    [
        ({"watch": {"pathz": ["/tmp"]}}, "[watch] pathz"),
        ({"processing": {"workers": 0}}, "[processing] workers"),
        ({"processing": {"workers": "two"}}, "[processing] workers"),
        ({"policy": {"audio_languages": ["xx-not-a-language"]}}, "[policy] audio_languages"),
        ({"wrong": {}}, "[wrong]"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, env, sections, key):
    config = write_config(tmp_path / "bad.toml", sections)
    for command in (["run", "--config", str(config)], ["config", "check", "--config", str(config)]):
        result = run_vpod(command, env=env, timeout=30)
        assert result.returncode == 2, result.stderr
        assert key in result.stderr and str(config) in result.stderr


def test_default_workers_start_without_a_cap_warning(tmp_path, daemon_factory, env):
    """Issue 11 item 13: on 2 CPUs the default worker count is 1, with no workers_capped;
    `vpod config check` shows the count and where it comes from."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    two_cpus = {"VPOD_CPU_COUNT": "2"}
    daemon = daemon_factory(watch_config(inbox), extra_env=two_cpus)
    assert daemon.named("daemon_started")[0]["workers"] == 1
    assert daemon.stop() == 0
    assert not daemon.named("workers_capped")
    check = run_vpod(["config", "check", "--config", str(daemon.config)], env={**env, **two_cpus})
    assert "workers = 1  # not set: as many as fit, half of the 2 CPU(s) available to vpod" in check.stdout

    asked = daemon_factory(watch_config(inbox, workers=3), extra_env=two_cpus, name="asked")
    capped = asked.wait_for("workers_capped")[0]
    # half the 2 CPUs plus the transcode lane's max_transcodes (1)
    assert (capped["requested"], capped["used"]) == (3, 2)
    assert asked.stop() == 0


def test_config_check_prints_effective_config(tmp_path, env):
    config = write_config(tmp_path / "ok.toml", {"processing": {"workers": 3}, "policy": {"audio_languages": ["English", "de"]}})
    result = run_vpod(["config", "check", "--config", str(config), "--json"], env={**env, "VPOD_CPU_COUNT": "8"})
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert (data["processing"]["workers"], data["processing"]["workers_requested"]) == (3, 3)
    assert data["policy"]["audio_languages"] == ["eng", "ger"]


def test_vpod_config_env_variable(tmp_path, env):
    config = write_config(tmp_path / "env.toml", {"processing": {"queue_size": 7}})
    result = run_vpod(["config", "check", "--json"], env={**env, "VPOD_CONFIG": str(config)})
    assert result.returncode == 0
    assert '"queue_size": 7' in result.stdout


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_sigint_also_stops_cleanly(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(watch_config(inbox))
    daemon.signal(signal.SIGINT)
    assert daemon.proc.wait(20) == 0
    assert daemon.named("daemon_stopped")


def test_jpn_first_file_is_remuxed_once_and_its_output_not_requeued(tmp_path, daemon_factory, media_cache):
    """audio jpn (default) then eng: the default track_order puts eng first, so this is a
    remux (mkvmerge into a temp file, then os.replace). The rename of vpod's own output
    into place must not queue the file again."""
    from support.media import audio, mkvmerge_tracks, video

    source = media_cache("jpn-first.mkv", [video(), audio("jpn", default=True), audio("eng")])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(watch_config(inbox))
    subprocess.run(["cp", str(source), str(inbox / "copied.mkv")], check=True)
    subprocess.run(["rsync", "-a", str(source), str(inbox / "synced.mkv")], check=True)
    for name in ("copied.mkv", "synced.mkv"):
        event = daemon.wait_for("file_processed", path=str(inbox / name))[0]
        assert any("reorder" in a for a in event["actions"]), event
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    for name in ("copied.mkv", "synced.mkv"):
        tracks = [t for t in mkvmerge_tracks(inbox / name) if t["type"] == "audio"]
        assert [(t["language"], t["default"]) for t in tracks] == [("eng", True), ("jpn", False)]
        assert len(daemon.named("file_queued", path=str(inbox / name))) == 1
        assert len(daemon.named("file_processed", path=str(inbox / name))) == 1
    assert not [p for p in inbox.iterdir() if p.name.startswith(".vpod-tmp-")]


def test_second_daemon_on_the_same_database_is_refused(tmp_path, daemon_factory, env):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = daemon_factory(watch_config(inbox))
    result = run_vpod(["run", "--config", str(first.config)], env=env, timeout=60)
    assert result.returncode == 75, result.stderr
    assert f"pid {first.proc.pid}" in result.stderr and "already using the database" in result.stderr
    assert first.proc.poll() is None
    assert first.stop() == 0
