"""Temp files never outlive a failure, whichever front end crashed, and a sweep never takes
one that a live vpod (daemon or ``vpod process``) is still writing.

Real ``vpod process`` / ``vpod run`` subprocesses on media made at test time; a stand-in
mkvmerge on PATH only holds a remux open (after the real mkvmerge wrote the temp file)
so that a kill lands mid-remux whatever the machine's load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.daemon import write_config
from support.filesystems import small_ext4
from support.media import audio, copy_media, mkvmerge_tracks, video
from support.pipeline import sha256
from support.tools import kill_if_running, process_ended

pytestmark = pytest.mark.integration

NEEDS_REMUX = [video(), audio("jpn", default=True), audio("eng")]  # default policy: eng first and default


def held_mkvmerge(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A stand-in mkvmerge: a remux runs the real mkvmerge (the temp file is written), then
    records its pid and waits while the gate file exists; ``mkvmerge -J`` runs normally.

    Returns (folder to put first on PATH, pid file, gate file).
    """
    folder = tmp_path / "heldbin"
    folder.mkdir()
    pidfile, gate = tmp_path / "mkvmerge.pid", tmp_path / "mkvmerge.gate"
    gate.touch()
    script = folder / "mkvmerge"
    script.write_text(
        f"#!{sys.executable}\nimport os, subprocess, sys, time\nREAL = {shutil.which('mkvmerge')!r}\n"
        f"if '--output' in sys.argv:\n"
        f"    done = subprocess.run([REAL, *sys.argv[1:]])\n"
        f"    open({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"    os.rename({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n"
        f"    while os.path.exists({str(gate)!r}):\n"
        f"        time.sleep(0.05)\n"
        f"    sys.exit(done.returncode)\n"
        f"os.execv(REAL, [REAL, *sys.argv[1:]])\n"
    )
    script.chmod(0o755)
    return folder, pidfile, gate


def wait_for_file(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".vpod-tmp-*"))


def config_file(tmp_path: Path, name: str = "process.toml", **sections: object) -> Path:
    sections.setdefault("database", {"path": str(tmp_path / "vpod.db")})
    sections.setdefault("logging", {"format": "json"})
    return write_config(tmp_path / name, sections)


def vpod_process(args: list[str], *, config: Path, env: dict[str, str], **extra_env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", *args],
        env={**env, **extra_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finished(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, json.loads(out) if out.strip() else {}, err


def audio_layout(path: Path) -> list[tuple[str, bool]]:
    return [(t["language"], t["default"]) for t in mkvmerge_tracks(path) if t["type"] == "audio"]


def test_a_killed_vpod_process_leaves_a_temp_file_that_the_next_run_removes(tmp_path, env, media_cache):
    lib = tmp_path / "kp"
    lib.mkdir()
    path = copy_media(media_cache("remux.mkv", NEEDS_REMUX), lib / "k.mkv")
    digest = sha256(path)
    held, pidfile, _gate = held_mkvmerge(tmp_path)
    config = config_file(tmp_path)

    crashed = vpod_process([str(lib)], config=config, env=env, PATH=f"{held}:{os.environ['PATH']}")
    try:
        wait_for_file(pidfile)  # mkvmerge --output has written the temp file and is still "running"
        [leftover] = temps(lib)
        assert leftover.stat().st_size > 0
        crashed.kill()  # kill -9 of vpod process, mid-remux
        crashed.wait(30)
        # its tool ends with it (issue 11, item 11): no remux writes on for nobody
        assert process_ended(int(pidfile.read_text())), "the remux outlived the killed vpod process"
    finally:
        kill_if_running(int(pidfile.read_text()))
    assert temps(lib) == [leftover] and sha256(path) == digest

    code, report, err = finished(vpod_process([str(lib)], config=config, env=env))
    assert code == 0, err
    assert report["temp_files_removed"] == [str(leftover)]
    removed = [json.loads(line) for line in err.splitlines() if '"temp_file_removed"' in line]
    assert [e["path"] for e in removed] == [str(leftover)]  # shown on stderr at the default level
    assert temps(lib) == [] and not leftover.exists()
    [result] = report["results"]
    assert result["success"] and result["changes"] > 0, result
    assert audio_layout(path) == [("eng", True), ("jpn", False)]

    code, report, err = finished(vpod_process([str(lib)], config=config, env=env))
    assert code == 0, err
    assert report["temp_files_removed"] == [] and "temp_file_removed" not in err


def test_a_temp_file_a_live_vpod_process_is_writing_is_left_alone(tmp_path, env, media_cache):
    busy_lib, other_lib = tmp_path / "busy", tmp_path / "other"
    busy_lib.mkdir()
    other_lib.mkdir()
    busy = copy_media(media_cache("remux.mkv", NEEDS_REMUX), busy_lib / "busy.mkv")
    other = copy_media(media_cache("remux.mkv", NEEDS_REMUX), other_lib / "other.mkv")
    held, pidfile, gate = held_mkvmerge(tmp_path)
    config = config_file(tmp_path)  # one database for both runs

    live = vpod_process([str(busy_lib)], config=config, env=env, PATH=f"{held}:{os.environ['PATH']}")
    try:
        wait_for_file(pidfile)
        [in_progress] = temps(busy_lib)

        # A second vpod process on the same database starts while the first one's remux is open.
        code, report, err = finished(vpod_process([str(other_lib)], config=config, env=env))
        assert code == 0, err
        assert report["temp_files_removed"] == []
        assert temps(busy_lib) == [in_progress]
        assert [r["success"] for r in report["results"]] == [True]
        assert audio_layout(other) == [("eng", True), ("jpn", False)]
    finally:
        gate.unlink()  # the first run's remux may finish now
    code, report, err = finished(live)
    assert code == 0, err
    [result] = report["results"]
    assert result["success"] and result["changes"] > 0, result  # its temp file was still there to verify
    assert audio_layout(busy) == [("eng", True), ("jpn", False)]
    assert temps(busy_lib) == []


def test_a_daemon_starting_beside_a_live_vpod_process_leaves_its_temp_file_alone(
    tmp_path, env, media_cache, daemon_factory
):
    lib = tmp_path / "lib"
    lib.mkdir()
    path = copy_media(media_cache("remux.mkv", NEEDS_REMUX), lib / "film.mkv")
    held, pidfile, gate = held_mkvmerge(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    live = vpod_process([str(lib)], config=config_file(tmp_path), env=env, PATH=f"{held}:{os.environ['PATH']}")
    try:
        wait_for_file(pidfile)
        [in_progress] = temps(lib)
        daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}})  # same database
        assert daemon.named("daemon_started")[0]["temp_files_removed"] == 0
        assert temps(lib) == [in_progress]
        assert daemon.stop() == 0
    finally:
        gate.unlink()
    code, report, err = finished(live)
    assert code == 0, err
    assert report["results"][0]["success"], report
    assert audio_layout(path) == [("eng", True), ("jpn", False)]


def test_a_file_a_killed_vpod_process_held_is_taken_up_by_the_running_daemon(
    tmp_path, env, media_cache, daemon_factory
):
    """vpod process dies (kill -9) on a file in a watched folder while a daemon runs on the
    same database: the daemon's events for it were dropped as 'already in progress', so
    the daemon must notice the dead owner itself, not wait for its own restart."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    held, pidfile, _gate = held_mkvmerge(tmp_path)
    path = copy_media(media_cache("remux.mkv", NEEDS_REMUX), inbox / "film.mkv")
    crashed = vpod_process([str(path)], config=config_file(tmp_path), env=env, PATH=f"{held}:{os.environ['PATH']}")
    try:
        wait_for_file(pidfile)
        # Started beside the live vpod process: its catch-up scan finds the row in progress.
        daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}})  # same database
        assert daemon.named("daemon_started")[0]["requeued_after_crash"] == 0  # not a crash: the owner lives
        daemon.wait_for("scan_completed")
        crashed.kill()  # kill -9 of vpod process, mid-remux
        crashed.wait(30)
        assert process_ended(int(pidfile.read_text())), "the remux outlived the killed vpod process"
    finally:
        kill_if_running(int(pidfile.read_text()))
    released = daemon.wait_for("abandoned_file_released", path=str(path), timeout=60)[0]
    assert released["looked_at_again"] is True
    daemon.wait_for("file_processed", path=str(path), timeout=120)
    assert audio_layout(path) == [("eng", True), ("jpn", False)]
    assert daemon.stop() == 0


def test_a_temp_file_a_read_only_mount_keeps_is_logged_and_removed_by_the_next_run(tmp_path, env, media_cache):
    """Found by a tester: the library's mount became read-only during a remux; the temp
    file stayed without a ``temp_file_not_removed`` line, and the next run removed it
    saying a vpod had been killed or crashed, which none had."""
    held, pidfile, gate = held_mkvmerge(tmp_path)
    config = config_file(tmp_path)
    with small_ext4(tmp_path, 128, "ro") as lib:  # room for the remux (its size + 64 MiB)
        path = copy_media(media_cache("remux.mkv", NEEDS_REMUX), lib / "r.mkv")
        digest = sha256(path)
        run = vpod_process([str(lib)], config=config, env=env, PATH=f"{held}:{os.environ['PATH']}")
        try:
            wait_for_file(pidfile)  # the temp file is written; the remux has not ended yet
            [leftover] = temps(lib)
            remount = subprocess.run(["mount", "-o", "remount,ro", str(lib)], capture_output=True, text=True)
            assert remount.returncode == 0, remount.stderr
        finally:
            gate.unlink()
        code, report, err = finished(run)
        assert code == 1, err
        events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        [kept] = [e for e in events if e["event"] == "temp_file_not_removed"]
        assert kept["path"] == str(leftover) and "Read-only" in kept["error"], err
        assert temps(lib) == [leftover] and sha256(path) == digest

        subprocess.run(["mount", "-o", "remount,rw", str(lib)], check=True)
        code, report, err = finished(vpod_process([str(lib)], config=config, env=env))
        assert code == 0, err
        assert report["temp_files_removed"] == [str(leftover)] and temps(lib) == []
        [removed] = [json.loads(line) for line in err.splitlines() if '"temp_file_removed"' in line]
        assert "could not remove it" in removed["why"]
