"""`vpod status` facts a fresh user saw wrong (issue 14): a daemon whose worker count is
not configured shows its workers from the start (it registers the count it runs, not
"?"); a config whose `[node] name` has no daemon record is still named as the config
read, not "built-in defaults". A real daemon on SQLite; a real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from support.daemon import run_vpod, write_config

pytestmark = pytest.mark.integration


def test_status_shows_the_workers_and_the_config_it_read(tmp_path, daemon_factory, env):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)]}})  # [processing] workers not set: the CPU default
    [started] = daemon.wait_for("daemon_started")
    report = json.loads(run_vpod(["status", "--json", "--config", str(daemon.config)], env=env).stdout)
    [node] = report["nodes"]
    assert node["alive"] and node["workers"] == started["workers"] >= 1
    text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
    assert f"{started['workers']} workers, heartbeat" in text and "? workers" not in text



def test_status_names_the_config_it_read_when_this_node_has_no_daemon_record(tmp_path, env, postgres):
    db = postgres.database(tmp_path)
    section = {"url": db.url, "password_file": db.password_file, "path": str(db.path)}
    config = write_config(tmp_path / "B.toml", {"database": section, "node": {"name": "never-ran"}})
    text = run_vpod(["status", "--config", str(config)], env=env).stdout
    assert f"config: {config} (read by this command)" in text and "built-in defaults" not in text, text
    out = run_vpod(["status", "--json", "--config", str(config)], env=env).stdout
    assert json.loads(out)["config_file"] == str(config)
