"""`vpod run` on PostgreSQL (issue 14, must-have 1): a real daemon, a real server, a real
file processed, and the password in no log line and no command's output."""

from __future__ import annotations

import pytest

from support.daemon import run_vpod, write_config
from support.media import default_audio_languages
from support.postgres import PASSWORD

pytestmark = pytest.mark.integration


def test_a_daemon_on_postgresql_processes_a_file_and_never_shows_the_password(
    tmp_path, daemon_factory, jpn_eng_mkv, postgres, env
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    database = postgres.database(tmp_path)
    with_password = database.url.replace("vpod@", f"vpod:{PASSWORD}@")
    sections = {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.5},
        "processing": {"batch_window_seconds": 30},
        "database": {"path": str(tmp_path / "unused.db"), "url": with_password},
    }
    daemon = daemon_factory(sections)
    [started] = daemon.named("daemon_started")
    assert started["database"] == database.url  # the URL, without its password
    (inbox / "a.mkv").write_bytes(jpn_eng_mkv.read_bytes())
    daemon.wait_for("file_processed", path=str(inbox / "a.mkv"))
    assert default_audio_languages(inbox / "a.mkv") == ["eng"]
    config = write_config(tmp_path / "status.toml", sections)
    status = run_vpod(["status", "--config", str(config)], env=env)
    shown = run_vpod(["config", "check", "--config", str(config)], env=env)
    assert daemon.stop() == 0
    assert status.returncode == 0, status.stderr
    assert "a.mkv" in status.stdout or "done" in status.stdout
    for text in (daemon.log_path.read_text(), status.stdout, status.stderr, shown.stdout, shown.stderr):
        assert PASSWORD not in text
    assert not (tmp_path / "unused.db").exists()  # SQLite was not used
