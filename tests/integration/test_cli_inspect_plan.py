"""`vpod inspect` and `vpod plan` as a user runs them: real subprocesses, nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from support.daemon import run_vpod, write_config
from support.media import audio, copy_media, mkvmerge_tracks, subtitle, video
from support.pipeline import sha256

pytestmark = pytest.mark.integration


@pytest.fixture
def movie(tmp_path, media_cache):
    return copy_media(
        media_cache("cli.mkv", [video(), audio("jpn", default=True, title="Japanese"), audio("eng"), subtitle("eng", forced=True)]),
        tmp_path / "lib" / "movie.mkv",
    )


def snapshot(folder):
    return {p.name: (sha256(p), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_inspect_json_lists_the_tracks(movie, env):
    result = run_vpod(["inspect", str(movie), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["path"] == str(movie) and data["container"] == "matroska"
    got = [(t["index"], t["type"], t["language"], t["default"], t["forced"], t["title"]) for t in data["tracks"]]
    want = [(t["id"], t["type"].replace("subtitles", "subtitle"), t["language"], t["default"], t["forced"], t["title"])
            for t in mkvmerge_tracks(movie)]  # fmt: skip
    assert got == want
    human = run_vpod(["inspect", str(movie)], env=env)
    assert human.returncode == 0 and "jpn (Japanese)" in human.stdout and "forced" in human.stdout


def test_plan_json_says_what_would_change_and_writes_nothing(movie, env, tmp_path):
    before = snapshot(movie.parent)
    result = run_vpod(["plan", str(movie), "--json"], env=env)  # default policy: eng audio
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["path"] == str(movie) and data["skip"] is None
    assert [(a["action"], a.get("track"), a.get("value")) for a in data["actions"]] == [
        ("set_flag", 2, True), ("set_flag", 1, False), ("set_flag", 3, True), ("reorder", None, None),
    ]  # fmt: skip
    assert data["actions"][-1]["order"] == [0, 2, 1, 3]
    assert all("track" in a["description"] or "reorder" in a["description"] for a in data["actions"])
    assert snapshot(movie.parent) == before


def test_plan_of_a_conforming_file_is_empty(movie, env, tmp_path):
    config = write_config(tmp_path / "c.toml", {"policy": {"audio_languages": ["jpn"], "default_subtitle": "none"}})
    result = run_vpod(["plan", str(movie), "--config", str(config), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["actions"] == []
    human = run_vpod(["plan", str(movie), "--config", str(config)], env=env)
    assert "nothing to do" in human.stdout


def test_plan_reports_warnings_and_why_run_would_skip(movie, env, tmp_path):
    os.link(movie, tmp_path / "seeding.mkv")
    config = write_config(tmp_path / "c.toml", {"policy": {"keep_audio_languages": ["ger"]}})
    data = json.loads(run_vpod(["plan", str(movie), "--config", str(config), "--json"], env=env).stdout)
    assert data["warnings"] and "every audio track" in data["warnings"][0]
    assert data["skip"]["reason"] == "hardlinked"  # the default policy reorders: a remux


def test_inspect_and_plan_of_a_non_media_file_exit_1_naming_it(tmp_path, env):
    bad = tmp_path / "notes.mkv"
    bad.write_text("just text")
    for command in (["inspect", str(bad)], ["plan", str(bad)]):
        result = run_vpod(command, env=env)
        assert result.returncode == 1 and str(bad) in result.stderr, result.stderr
    assert run_vpod(["inspect", str(tmp_path / "missing.mkv")], env=env).returncode == 2


def test_plan_json_of_a_non_media_or_truncated_file_prints_the_object_with_error(movie, tmp_path, env):
    bad = tmp_path / "notes.mkv"
    bad.write_text("just text")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(movie.read_bytes()[:200])  # the EBML header and no more
    for path in (bad, cut):
        result = run_vpod(["plan", "--json", str(path)], env=env)
        assert result.returncode == 1 and str(path) in result.stderr, result.stderr
        data = json.loads(result.stdout)
        assert data["error"]["reason"] and str(path) in data["error"]["detail"], data
        assert data["actions"] == [] and data["would_apply"] == [] and data["cost"] is None, data


def test_plan_and_dry_run_agree_with_the_run_on_a_stream_matroska_cannot_hold(tmp_path, env):
    """A QuickTime timecode track (a data stream to FFmpeg 5.1, like WebVTT in MP4) makes
    the run fail as unsupported_stream: `vpod plan` and `--dry-run` must say so instead
    of promising "remux into MKV"."""
    path = tmp_path / "lib" / "camera.mov"
    path.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000", "-map", "0", "-map", "1",
                    "-c:v", "mpeg4", "-c:a", "aac", "-timecode", "00:00:00:00", str(path)], check=True)  # fmt: skip
    config = write_config(tmp_path / "c.toml", {"policy": {"container": "mkv"}, "database": {"path": str(tmp_path / "db")}})
    before = snapshot(path.parent)

    plan = json.loads(run_vpod(["plan", str(path), "--config", str(config), "--json"], env=env).stdout)
    dry = json.loads(run_vpod(["process", str(path), "--config", str(config), "--dry-run", "--json"], env=env).stdout)
    real = json.loads(run_vpod(["process", str(path), "--config", str(config), "--json"], env=env).stdout)

    [dry_result], [real_result] = dry["results"], real["results"]
    assert real_result["reason"] == "unsupported_stream" and not real_result["success"]
    assert plan["skip"] is None and plan["error"]["reason"] == real_result["reason"]
    assert "stream 2 (data, codec tmcd)" in plan["error"]["detail"] and str(path) in plan["error"]["detail"]
    assert (dry_result["reason"], dry_result["skipped"]) == (real_result["reason"], real_result["skipped"])
    assert dry["exit_code"] == real["exit_code"] == 1
    human = run_vpod(["plan", str(path), "--config", str(config)], env=env).stdout
    assert "vpod run would fail it (unsupported_stream)" in human
    assert snapshot(path.parent) == before


def test_dry_run_reports_the_skip_the_run_would_make(movie, env, tmp_path):
    """A hard-linked file whose plan needs a remux is skipped by the run (hardlinked):
    `--dry-run` says so, instead of listing the remux as what would change."""
    os.link(movie, tmp_path / "seeding.mkv")
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "db")}})
    dry = json.loads(run_vpod(["process", str(movie), "--config", str(config), "--dry-run", "--json"], env=env).stdout)
    plan = json.loads(run_vpod(["plan", str(movie), "--config", str(config), "--json"], env=env).stdout)
    [result] = dry["results"]
    assert result["skipped"] and result["reason"] == plan["skip"]["reason"] == "hardlinked"


def test_inspect_and_plan_of_a_fifo_say_it_is_a_fifo(tmp_path, env):
    """Found by a tester: ``vpod inspect`` called a FIFO named x.mkv an "empty file"; the
    daemon's check (vpod.safety) names it."""
    fifo = tmp_path / "x.mkv"
    os.mkfifo(fifo)
    for command in (["inspect", str(fifo)], ["plan", str(fifo)]):
        result = run_vpod(command, env=env, timeout=30)
        assert result.returncode == 1, result.stderr
        assert f"{fifo}: a FIFO, not a regular file" in result.stderr and "empty" not in result.stderr


@pytest.mark.parametrize("command", ["inspect", "plan"])
def test_ctrl_c_exits_130(movie, env, tmp_path, command):
    """Found by a tester: Ctrl-C on ``vpod inspect`` printed "Aborted!" and exited 1, the
    status of a file that cannot be read as media; now 128 + SIGINT, as ``vpod process``."""
    started = tmp_path / "probing"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkvmerge", "ffprobe"):  # whichever probes first waits to be interrupted
        (bin_dir / tool).write_text(
            f"#!{sys.executable}\nimport sys, time\n"
            f"if '--version' not in sys.argv and '-version' not in sys.argv:\n"
            f"    open({str(started)!r}, 'w').close()\n    time.sleep(60)\n"
        )
        (bin_dir / tool).chmod(0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpod", command, str(movie)],
        env={**env, "PATH": f"{bin_dir}:{env['PATH']}"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As from a terminal: a suite started in the background (`cmd &` in a script) hands
        # its children SIGINT ignored, and Python then installs no KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Aborted" not in err
