"""vpod status across nodes on PostgreSQL (issue 14, must-have 6): two real daemons, one
with its wall clock 10 minutes ahead (its monotonic clock untouched: support.faketime); status
lists both and warns about the skewed one, which logs ``node_clock_skew`` itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from support.faketime import skewed_env
from vpod import __version__

pytestmark = pytest.mark.integration

def test_status_shows_every_node_and_warns_about_a_skewed_clock(tmp_path, daemon_factory, env, postgres):
    try:
        ahead, _how = skewed_env(600, tmp_path / "clock")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    database = postgres.database(tmp_path)
    section = {"url": database.url, "password_file": database.password_file, "path": str(database.path)}

    def node(name: str, **extra_env: str):
        inbox = tmp_path / f"inbox-{name}"
        inbox.mkdir()
        return daemon_factory(
            {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "database": section, "node": {"name": name},
             "processing": {"workers": 1}},
            name=name, extra_env=extra_env,
        )

    node("steady")
    skewed = node("ahead", **ahead)
    [event] = skewed.wait_for("node_clock_skew")
    assert event["node"] == "ahead" and 590 < event["offset_seconds"] < 610

    config = write_config(tmp_path / "status.toml", {"database": section})
    out = run_vpod(["status", "--json", "--config", str(config)], env=env)
    assert out.returncode == 0, out.stderr
    nodes = {n["node"]: n for n in json.loads(out.stdout)["nodes"]}
    assert set(nodes) == {"steady", "ahead"}
    assert all(n["alive"] and n["version"] == __version__ and n["workers"] == 1 for n in nodes.values())
    assert nodes["ahead"]["clock_skewed"] and 590 < nodes["ahead"]["clock_offset_seconds"] < 610
    assert not nodes["steady"]["clock_skewed"]

    text = run_vpod(["status", "--config", str(config)], env=env).stdout
    assert "nodes: 2 (2 alive)" in text
    assert "warning: the clock of node ahead is 6" in text and "s ahead of the database clock" in text
    assert "clock of node steady" not in text
