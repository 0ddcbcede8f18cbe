"""Log format: JSON lines under systemd even on a terminal, console on a terminal otherwise;
every line about a file carries path, worker and batch_id (issue 6)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from support.daemon import write_config

pytestmark = pytest.mark.integration


def first_lines_on_a_tty(config, env, count=2, timeout=30.0) -> list[str]:
    """Start `vpod run` with stderr on a pseudo-terminal; return its first lines."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpod", "run", "--config", str(config)],
        env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )
    os.close(follower)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while data.count(b"\n") < count and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    data += os.read(leader, 65536)
                except OSError:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        os.close(leader)
    return data.decode(errors="replace").splitlines()[:count]


@pytest.mark.parametrize("variable", ["INVOCATION_ID", "JOURNAL_STREAM"])
def test_json_under_systemd_even_on_a_terminal(tmp_path, env, variable):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path / "c.toml", {"watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "db")}})
    lines = first_lines_on_a_tty(config, {**env, variable: "8:12345" if variable == "JOURNAL_STREAM" else "abc"}, 1)
    assert json.loads(lines[0])["event"]  # a JSON object per line


def test_console_on_a_terminal_otherwise(tmp_path, env):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path / "c.toml", {"watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "db")}})
    lines = first_lines_on_a_tty(config, env, 1)
    with pytest.raises(ValueError):
        json.loads(lines[0])
    assert "vpod: drop video files into" in lines[0]


def test_file_lines_carry_path_worker_and_batch_id(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}})
    shutil.copyfile(jpn_eng_mkv, inbox / "ok.mkv")
    (inbox / "bad.mkv").write_text("text")
    daemon.wait_for("file_processed", path=str(inbox / "ok.mkv"))
    daemon.wait_for("file_failed", path=str(inbox / "bad.mkv"))
    assert daemon.stop() == 0
    worker_events = [e for e in daemon.events() if e["event"] in ("file_processed", "file_failed", "file_skipped", "file_retry")]
    assert len(worker_events) == 2
    for event in worker_events:
        assert event["path"] and event["worker"].startswith("worker-") and event["batch_id"], event
