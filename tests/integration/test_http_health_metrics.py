"""/health and /metrics scraped from a running daemon; pause, resume, stopping (issue 6)."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.error

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.daemon import run_vpod, wait_in_progress
from support.http import get, health
from support.media import default_audio_languages
from support.tools import gated_tool, path_with

pytestmark = pytest.mark.integration

SETTLE = 0.3


def sections(inbox, **policy):
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, "workers": 1},
        "http": {"listen": "127.0.0.1:0"},
        "policy": policy,
    }


def port_of(daemon) -> int:
    return daemon.wait_for("http_listening")[0]["port"]


def samples(port) -> dict[tuple[str, tuple], float]:
    code, content_type, body = get(port, "/metrics")
    assert code == 200 and content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_health_and_metrics_from_a_running_daemon(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)

    code, body = health(port)
    assert code == 200
    assert body["status"] == "healthy" and body["state"] == "running" and body["pid"] == daemon.proc.pid
    assert body["queue_depth"] == 0 and body["workers"] == 1

    shutil.copyfile(jpn_eng_mkv, inbox / "good.mkv")
    (inbox / "bad.mkv").write_text("not a video")
    daemon.wait_for("file_processed", path=str(inbox / "good.mkv"))
    failed = daemon.wait_for("file_failed", path=str(inbox / "bad.mkv"))[0]
    # Usually one batch of two; a loaded machine may split them (windows close when the
    # daemon is idle), so the metrics are checked against the batches the log shows.
    deadline = time.monotonic() + 60
    while sum(e["total_files"] for e in daemon.named("batch_completed")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    batches = daemon.named("batch_completed")
    assert sum(e["total_files"] for e in batches) == 2, batches
    last = batches[-1]

    m = samples(port)
    assert m[("vpod_files_processed_total", ())] == 1
    assert m[("vpod_files_failed_total", (("reason", failed["reason"]),))] == 1
    assert m[("vpod_file_processing_seconds_count", ())] == 2
    assert m[("vpod_queue_depth", ())] == 0
    assert m[("vpod_active_workers", ())] == 0
    assert m[("vpod_workers", ())] == 1
    assert m[("vpod_batches_total", ())] == len(batches)
    assert m[("vpod_last_batch_files", (("outcome", "total"),))] == last["total_files"]
    assert m[("vpod_last_batch_files", (("outcome", "failed"),))] == last["fail_count"]
    assert m[("vpod_paused", ())] == 0
    assert get(port, "/nothing-here")[0] == 404

    # the database becomes unreachable: 503, and healthy again once it is back
    db = tmp_path / "vpod.db"
    db.rename(tmp_path / "vpod.db.away")
    db.mkdir()
    try:
        code, body = health(port)
        assert code == 503
        assert body["status"] == "unhealthy" and body["reason"] == "database_unreachable"
        assert str(db) in body["error"]
    finally:
        db.rmdir()
        (tmp_path / "vpod.db.away").rename(db)
    assert health(port)[0] == 200
    assert daemon.stop() == 0


def test_pause_gives_503_until_vpod_resume(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox, on_error="fail"))
    port = port_of(daemon)
    (inbox / "bad.mkv").write_text("not a video")
    daemon.wait_for("processing_paused", failed_path=str(inbox / "bad.mkv"))
    shutil.copyfile(jpn_eng_mkv, inbox / "waits.mkv")
    daemon.wait_for("file_queued", path=str(inbox / "waits.mkv"))

    code, body = health(port)
    assert (code, body["status"], body["reason"]) == (503, "unhealthy", "paused")
    assert samples(port)[("vpod_paused", ())] == 1
    status = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    assert status["state"] == "paused"
    assert status["paused"]["path"] == str(inbox / "bad.mkv")
    assert status["queue_depth"] == 1
    time.sleep(SETTLE * 3)
    assert not daemon.named("file_processed")  # paused: nothing starts

    resumed = run_vpod(["resume", "--config", str(daemon.config)], env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    daemon.wait_for("processing_resumed")
    daemon.wait_for("file_processed", path=str(inbox / "waits.mkv"))
    assert default_audio_languages(inbox / "waits.mkv") == ["eng"]
    assert health(port)[0] == 200

    again = run_vpod(["resume", "--config", str(daemon.config)], env=env)
    assert again.returncode == 0 and "not paused" in again.stdout
    assert daemon.stop() == 0
    stopped = run_vpod(["resume", "--config", str(daemon.config)], env=env)
    assert stopped.returncode == 3 and "no daemon is running" in stopped.stderr


def test_health_is_503_while_stopping(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    gate = tmp_path / "hold-mkvpropedit"
    gate.touch()
    tools = gated_tool(tmp_path / "bin", "mkvpropedit", gate)
    daemon = daemon_factory(sections(inbox), extra_env={"PATH": path_with(tools)})
    port = port_of(daemon)
    shutil.copyfile(jpn_eng_mkv, inbox / "slow.mkv")
    wait_in_progress(daemon.config, env, inbox / "slow.mkv")
    daemon.signal(signal.SIGTERM)  # the drain waits for the file held at the gate
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (seen and seen[-1][0] == 503):
        try:
            seen.append(health(port))
        except (urllib.error.URLError, ConnectionError) as exc:
            raise AssertionError(f"listener gone before reporting 503; saw {seen}") from exc
        time.sleep(0.05)
    assert seen[-1][0] == 503 and seen[-1][1]["reason"] == "stopping"
    gate.unlink()
    assert daemon.proc.wait(30) == 0
    daemon.wait_for("file_processed", path=str(inbox / "slow.mkv"))  # the file in progress finished


def test_reload_to_an_address_in_use_keeps_the_old_listener(tmp_path, daemon_factory):
    """Issue 11 item 14: a reload whose [http] listen cannot be bound is not reported as
    applied, and the old listener keeps answering."""
    import socket

    from support.daemon import write_config

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    port = port_of(daemon)
    with socket.socket() as taken:  # another program holds the new address
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        config = {**sections(inbox), "http": {"listen": busy}, "policy": {"audio_languages": ["jpn"]}}
        config.update(database={"path": str(tmp_path / "vpod.db")}, logging={"format": "json", "level": "debug"})
        write_config(daemon.config, config)
        daemon.signal(signal.SIGHUP)
        reloaded = daemon.wait_for("config_reloaded")[0]
    failed = daemon.named("http_listen_failed")
    assert failed and failed[0]["listen"] == busy and failed[0]["kept"] == "127.0.0.1:0"
    assert "[http] listen" not in reloaded["changed"] and reloaded["not_applied"] == ["[http] listen"]
    assert "[policy] audio_languages" in reloaded["changed"]  # the rest of the file is applied
    code, body = health(port)
    assert code == 200 and body["status"] == "healthy"
    assert daemon.stop() == 0
