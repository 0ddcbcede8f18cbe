"""The policy engine inside the real daemon (`vpod run` subprocess): remux to MKV, dry run,
a remux killed midway, on_error = "fail"."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from support.media import audio, copy_media, mkvmerge_tracks, subtitle, video
from support.pipeline import sha256
from support.tools import kill_if_running, process_ended

pytestmark = pytest.mark.integration

SETTLE = 0.5
NEEDS_REMUX = [video(), audio("jpn", default=True), audio("eng")]  # default policy: eng first and default


def config(inbox: Path, **policy: object) -> dict:
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30},
        "policy": policy,
    }


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".vpod-tmp-*"))


def test_mp4_becomes_mkv_and_the_new_file_is_not_processed_again(tmp_path, daemon_factory, media_cache):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox, container="mkv", audio_languages=["jpn"]))
    source = media_cache("daemon.mp4", [video(), audio("eng", default=True), audio("jpn"), subtitle("eng")])
    copy_media(source, inbox / "film.mp4")
    event = daemon.wait_for("file_processed", path=str(inbox / "film.mp4"))[0]
    assert "remux into MKV" in event["actions"]
    assert event["final_path"] == str(inbox / "film.mkv")
    time.sleep(SETTLE * 4)  # events caused by vpod's own new file come and go
    assert daemon.stop() == 0
    assert sorted(p.name for p in inbox.iterdir()) == ["film.mkv"]
    assert [(t["type"], t["language"], t["default"]) for t in mkvmerge_tracks(inbox / "film.mkv")] == [
        ("video", "und", True), ("audio", "jpn", True), ("audio", "eng", False), ("subtitles", "eng", False),
    ]  # fmt: skip
    assert [e["path"] for e in daemon.named("file_queued")] == [str(inbox / "film.mp4")]


def test_dry_run_logs_the_plan_and_writes_nothing(tmp_path, daemon_factory, media_cache):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = copy_media(media_cache("remux.mkv", NEEDS_REMUX), inbox / "movie.mkv")
    mp4 = copy_media(media_cache("daemon.mp4", [video(), audio("eng", default=True)]), inbox / "clip.mp4")
    russian = copy_media(media_cache("rus.mkv", [video(), audio("rus", default=True)]), inbox / "russian.mkv")
    digests = sha256(path), sha256(mp4), sha256(russian)
    mtime = path.stat().st_mtime_ns
    daemon = daemon_factory(config(inbox, container="mkv", keep_audio_languages=["eng", "jpn"]), args=("--dry-run",))
    planned = daemon.wait_for("file_planned", path=str(path))[0]
    assert "reorder tracks to 0, 2, 1" in planned["actions"]
    assert daemon.wait_for("file_planned", path=str(mp4))[0]["actions"] == ["remux into MKV"]
    warning = daemon.wait_for("policy_warning", path=str(russian))[0]
    assert "every audio track" in warning["warning"]
    assert daemon.stop() == 0
    assert (sha256(path), sha256(mp4), sha256(russian)) == digests and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in inbox.iterdir()) == ["clip.mp4", "movie.mkv", "russian.mkv"]
    assert [e["changes"] for e in daemon.named("file_processed")] == [0]  # the Russian file already conforms


def _hanging_mkvmerge(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in mkvmerge: for a remux it runs the real one (the temp file is written),
    records its pid, then hangs until killed. mkvmerge -J runs normally."""
    folder = tmp_path / "bin"
    folder.mkdir()
    pidfile = tmp_path / "mkvmerge.pid"
    script = folder / "mkvmerge"
    script.write_text(
        f"#!{sys.executable}\nimport os, subprocess, sys, time\nREAL = {shutil.which('mkvmerge')!r}\n"
        f"if '--output' in sys.argv:\n"
        f"    subprocess.run([REAL, *sys.argv[1:]], stdout=subprocess.DEVNULL)\n"
        f"    open({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"    os.rename({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n"
        f"    time.sleep(600)\n"
        f"os.execv(REAL, [REAL, *sys.argv[1:]])\n"
    )
    script.chmod(0o755)
    return folder, pidfile


def _wait_for_pid(pidfile: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while not pidfile.exists():
        assert time.monotonic() < deadline, "the remux never started"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    pidfile.unlink()
    return pid


def test_remux_killed_midway_leaves_the_original_and_no_temp_after_the_next_start(tmp_path, daemon_factory, media_cache):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = copy_media(media_cache("remux.mkv", NEEDS_REMUX), inbox / "movie.mkv")
    digest = sha256(path)
    bin_dir, pidfile = _hanging_mkvmerge(tmp_path)
    daemon = daemon_factory(config(inbox), extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})

    # 1. The remux tool dies: the temp file goes at once, the file is retried later.
    pid = _wait_for_pid(pidfile)
    assert len(temps(inbox)) == 1 and temps(inbox)[0].stat().st_size > 0
    os.kill(pid, signal.SIGKILL)
    retry = daemon.wait_for("file_retry", path=str(path))[0]
    assert retry["reason"] == "killed" and str(path) in retry["error"]
    assert temps(inbox) == [] and sha256(path) == digest

    # 2. The daemon itself is killed during the retry's remux: its tool ends with it (issue
    # 11, item 11; no remux writes on for nobody), the temp file stays behind...
    pid = _wait_for_pid(pidfile)
    daemon.kill()
    try:
        assert process_ended(pid), "the remux outlived the daemon killed with -9"
    finally:
        kill_if_running(pid)
    assert len(temps(inbox)) == 1 and sha256(path) == digest

    # ...until the next start sweeps it, then the file is processed normally.
    again = daemon_factory(config(inbox), name="again")
    assert again.named("daemon_started")[0]["temp_files_removed"] == 1
    again.wait_for("file_processed", path=str(path))
    assert again.stop() == 0
    assert temps(inbox) == []
    assert [(t["language"], t["default"]) for t in mkvmerge_tracks(path) if t["type"] == "audio"] == [
        ("eng", True), ("jpn", False),
    ]  # fmt: skip


def test_on_error_fail_pauses_processing(tmp_path, daemon_factory, media_cache):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox, on_error="fail"))
    (inbox / "broken.mkv").write_text("not Matroska")
    daemon.wait_for("file_failed", path=str(inbox / "broken.mkv"))
    paused = daemon.wait_for("processing_paused")[0]
    assert paused["failed_path"] == str(inbox / "broken.mkv")
    good = copy_media(media_cache("remux.mkv", NEEDS_REMUX), inbox / "good.mkv")
    digest = sha256(good)
    daemon.wait_for("file_queued", path=str(good))
    time.sleep(SETTLE * 6)  # time enough to process it, were processing not paused
    assert daemon.stop() == 0
    assert not daemon.named("file_processed", path=str(good))
    assert sha256(good) == digest
