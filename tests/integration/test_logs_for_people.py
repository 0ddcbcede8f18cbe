"""Logs and status for people (issue 11, item 16): retries stay in their batch, failures
of files that are gone stop crowding `vpod status`, local times apply on reload."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal

import pytest

from support.daemon import run_vpod, write_config

pytestmark = pytest.mark.integration

SETTLE = 0.3


def sections(tmp_path, inbox, **logging):
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, "workers": 1},
        "database": {"path": str(tmp_path / "vpod.db")},
        "logging": {"format": "json", "level": "debug", **logging},
    }


def test_a_retried_file_is_one_file_of_one_batch(tmp_path, daemon_factory, env, jpn_eng_mkv):
    """The file is locked when the worker first takes it (a transient failure, retried 5 s
    later) and free at the retry: every line about it carries one batch id, and that
    batch counts it once. Before, each retry ran in a batch of its own."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = sections(tmp_path, inbox)
    config["database"].update(lease_seconds=20, lease_heartbeat_seconds=5)  # a claim waits 5 s for a lock
    daemon = daemon_factory(config)
    staged = tmp_path / "movie.mkv"
    shutil.copyfile(jpn_eng_mkv, staged)
    fd = os.open(staged, os.O_RDONLY)
    writer = -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the lock vpod takes: another process holds it
        os.rename(staged, inbox / "movie.mkv")
        daemon.wait_for("file_started", path=str(inbox / "movie.mkv"))
        # The claimed file waits for the lock a moment, then would go on without it
        # (docs/architecture.md "Claims and leases"); a writer meanwhile makes it busy.
        writer = os.open(inbox / "movie.mkv", os.O_WRONLY)
        [retry] = daemon.wait_for("file_retry", path=str(inbox / "movie.mkv"))
    finally:
        os.close(fd)
        if writer >= 0:
            os.close(writer)
    [done] = daemon.wait_for("file_processed", path=str(inbox / "movie.mkv"), timeout=60)
    [batch] = daemon.wait_for("batch_completed", timeout=60)
    assert retry["reason"] == "locked"
    assert retry["batch_id"] == done["batch_id"] == batch["batch_id"]
    assert (batch["total_files"], batch["success_count"], batch["fail_count"]) == (1, 1, 0)
    report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    assert [(b["batch_id"], b["total_files"]) for b in report["last_batches"]] == [(batch["batch_id"], 1)]
    assert daemon.stop() == 0


def test_status_leaves_out_failures_of_files_that_are_gone(tmp_path, daemon_factory, env):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(tmp_path, inbox))
    for name in ("kept.mkv", "deleted.mkv"):
        (inbox / name).write_text("not a video")
        daemon.wait_for("file_failed", path=str(inbox / name))
    (inbox / "deleted.mkv").unlink()

    report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    gone = {f["path"]: f["gone"] for f in report["last_failures"]}
    assert gone == {str(inbox / "kept.mkv"): False, str(inbox / "deleted.mkv"): True}
    text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
    failures = text.split("last failures:")[1]
    assert str(inbox / "kept.mkv") in failures and str(inbox / "deleted.mkv") not in failures
    assert "1 more of files that no longer exist" in failures
    assert daemon.stop() == 0


def test_local_timestamps_are_applied_by_a_reload(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(tmp_path, inbox), extra_env={"TZ": "Asia/Kolkata"})  # UTC+05:30
    [started] = daemon.named("daemon_started")
    assert started["timestamp"].endswith("Z")
    write_config(daemon.config, sections(tmp_path, inbox, timestamps="local"))
    daemon.signal(signal.SIGHUP)
    [reloaded] = daemon.wait_for("config_reloaded")
    assert "[logging] timestamps" in reloaded["changed"]
    assert reloaded["timestamp"].endswith("+05:30")
    assert daemon.stop() == 0
