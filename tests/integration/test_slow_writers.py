"""The slow-writer matrix: nothing is read before it is completely written (issue 5, acceptance)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support.media import default_audio_languages, make_media, audio, video

pytestmark = pytest.mark.integration

SETTLE = 0.5


def config(inbox: Path) -> dict:
    return {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}}


@pytest.fixture(scope="module")
def large_mkv(tmp_path_factory) -> Path:
    """About 4 MB of real Matroska, so copies take many writes."""
    path = tmp_path_factory.mktemp("large") / "large.mkv"
    tracks = [video(codec="ffv1"), audio("jpn", default=True), audio("eng")]
    make_media(path, tracks, duration=8.0, video_size="1280x720", video_source="testsrc2")
    return path


def assert_processed_once_after(daemon, path: Path, done_writing: float) -> None:
    daemon.wait_for("file_processed", path=str(path), timeout=90)
    time.sleep(SETTLE * 4)
    queued = daemon.named("file_queued", path=str(path))
    assert len(queued) == 1, queued
    from datetime import datetime

    queued_at = datetime.fromisoformat(queued[0]["timestamp"].replace("Z", "+00:00")).timestamp()
    assert queued_at >= done_writing - 0.05, "queued before the writer was done"
    assert len(daemon.named("file_processed", path=str(path))) == 1
    assert not daemon.named("file_failed", path=str(path))
    assert default_audio_languages(path) == ["eng"]


def test_cp_of_a_large_file(tmp_path, daemon_factory, large_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    subprocess.run(["cp", str(large_mkv), str(inbox / "large.mkv")], check=True)
    assert_processed_once_after(daemon, inbox / "large.mkv", time.time())
    assert daemon.stop() == 0


def test_rsync_hidden_temp_then_rename(tmp_path, daemon_factory, large_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    subprocess.run(["rsync", "--bwlimit=2000", str(large_mkv), str(inbox / "large.mkv")], check=True)
    assert_processed_once_after(daemon, inbox / "large.mkv", time.time())
    assert daemon.stop() == 0


def test_part_download_renamed_at_the_end(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    data = jpn_eng_mkv.read_bytes()
    with open(inbox / "movie.mkv.part", "wb") as handle:
        for i in range(0, len(data), 1024):
            handle.write(data[i : i + 1024])
            handle.flush()
            time.sleep(0.1)
    os.rename(inbox / "movie.mkv.part", inbox / "movie.mkv")
    assert_processed_once_after(daemon, inbox / "movie.mkv", time.time())
    assert daemon.stop() == 0


def test_writer_pausing_longer_than_settle_with_the_file_open(tmp_path, daemon_factory, jpn_eng_mkv):
    """Size and mtime stand still for 4x settle_seconds, but the writer still has the file open."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    data = jpn_eng_mkv.read_bytes()
    half = len(data) // 2
    with open(inbox / "paused.mkv", "wb") as handle:
        handle.write(data[:half])
        handle.flush()
        time.sleep(SETTLE * 4)
        handle.write(data[half:])
    assert_processed_once_after(daemon, inbox / "paused.mkv", time.time())
    assert daemon.stop() == 0


def test_writer_closing_and_reopening_across_a_long_pause(tmp_path, daemon_factory, jpn_eng_mkv):
    """Impossible to know it is incomplete: the half file may be looked at, but it is
    never corrupted, and the complete file is processed when it changes."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    data = jpn_eng_mkv.read_bytes()
    half = len(data) // 2
    target = inbox / "reopened.mkv"
    target.write_bytes(data[:half])
    daemon.wait_for("file_failed", path=str(target))  # the half file: truncated, left alone
    assert target.read_bytes() == data[:half]
    with open(target, "ab") as handle:
        handle.write(data[half:])
    daemon.wait_for("file_processed", path=str(target), timeout=60)
    assert default_audio_languages(target) == ["eng"]
    assert daemon.stop() == 0


def test_curl_limit_rate_straight_into_the_folder(tmp_path, daemon_factory, large_mkv):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(large_mkv, served / "movie.mkv")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        daemon = daemon_factory(config(inbox))
        size = large_mkv.stat().st_size
        rate = max(size // 3, 65536)  # about 3 s of download
        url = f"http://127.0.0.1:{server.server_address[1]}/movie.mkv"
        subprocess.run(
            ["curl", "-sS", "--limit-rate", str(rate), "-o", str(inbox / "movie.mkv"), url], check=True, timeout=120
        )
        assert_processed_once_after(daemon, inbox / "movie.mkv", time.time())
        assert daemon.stop() == 0
    finally:
        server.shutdown()


def test_other_users_paused_download_is_not_remuxed_under_its_writer(tmp_path_factory, jpn_eng_mkv):
    """Found by a first-time user: the daemon ran as its own user (as under systemd), another
    user's download paused longer than settle_seconds with the file open, and a container
    change to MKV deleted the .ts while the writer still had bytes to write. With
    CAP_LEASE, as systemd/vpod.service grants it, the kernel says the file is still open
    for writing, so it waits; once the writer is done it is processed once, complete."""
    import json
    import tempfile

    from support.daemon import DaemonProcess, daemon_env, write_config

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the daemon as another user")
    base = Path(tempfile.mkdtemp(prefix="vpod-lease-"))
    try:
        base.chmod(0o777)
        inbox = base / "inbox"
        for folder in (inbox, base / "db", base / "home"):
            folder.mkdir()
            folder.chmod(0o777)
        source = tmp_path_factory.mktemp("ts") / "movie.ts"
        make_media(source, [video(), audio("jpn", default=True), audio("eng")], duration=6.0)
        config = write_config(
            base / "config.toml",
            {
                "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
                "policy": {"container": "mkv"},
                "database": {"path": str(base / "db" / "vpod.db")},
                "logging": {"format": "json", "level": "debug"},
            },
        )
        config.chmod(0o644)
        daemon = DaemonProcess(
            config,
            env=daemon_env(base / "home"),
            log_path=base / "daemon.log",
            prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "--inh-caps=+lease,+chown", "--ambient-caps=+lease,+chown", "--"),  # as the unit  # fmt: skip
        )
        daemon.wait_started()
        data = source.read_bytes()
        half = len(data) // 2
        target = inbox / "movie.ts"
        with open(target, "wb") as handle:  # written by root, not by the daemon's user
            os.fchmod(handle.fileno(), 0o666)
            handle.write(data[:half])
            handle.flush()
            time.sleep(SETTLE * 6)  # paused far longer than the settle time, file still open
            handle.write(data[half:])
        event = daemon.wait_for("file_processed", path=str(target), timeout=90)[0]
        assert event["final_path"] == str(inbox / "movie.mkv")
        assert daemon.stop() == 0
        assert not target.exists()
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_format", str(inbox / "movie.mkv")],
            capture_output=True, check=True,
        )  # fmt: skip
        assert float(json.loads(probe.stdout)["format"]["duration"]) > 5.5  # all 6 s, not the first half
        assert len(daemon.named("file_processed")) == 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
