"""A symlinked root re-pointed, while vpod runs, into another watched root (issue 11,
items 6/7 follow-up): the config load refuses overlapping roots, and so does the daemon
when a re-point makes them overlap later. The link is not watched while it overlaps
(one job per file), says so in the log, /health and vpod status, and is watched again
once it points elsewhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
from support.daemon import run_vpod
from support.http import health

pytestmark = pytest.mark.integration


def test_a_link_repointed_into_another_root_is_not_watched_while_it_overlaps(tmp_path, daemon_factory, env, jpn_eng_mkv):
    lib, other = tmp_path / "lib", tmp_path / "other"
    (lib / "sub").mkdir(parents=True)
    other.mkdir()
    link = tmp_path / "sl2"
    link.symlink_to(other)
    daemon = daemon_factory(
        {"watch": {"paths": [str(lib), str(link)], "settle_seconds": 0.3}, "http": {"listen": "127.0.0.1:0"}}
    )
    subprocess.run(["ln", "-sfn", str(lib / "sub"), str(link)], check=True)
    refused = daemon.wait_for("watch_path_overlaps", root=str(link), timeout=30)
    assert refused[0]["other"] == str(lib) and f"{link} is inside {lib}" in refused[0]["error"]
    # The watch and the marker in the old folder are given up just after that line.
    daemon.wait_for("watch_stopped", root=str(link))
    deadline = time.monotonic() + 10
    while (other / ".vpod-library").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (other / ".vpod-library").exists()
    assert not daemon.named("watch_started", root=str(link), target=str(lib / "sub"))

    x = shutil.copyfile(jpn_eng_mkv, lib / "sub" / "x.mkv")
    daemon.wait_for("file_processed", path=str(x), success=True)
    assert not [e for e in daemon.events() if e.get("path") == str(link / "x.mkv")]

    code, body = health(daemon.wait_for("http_listening")[0]["port"])
    assert code == 200 and body["unwatched_paths"] == [str(link)]
    assert [(u["path"], u["reason"]) for u in body["unwatched"]] == [(str(link), "overlaps")]
    text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
    assert "not watched (it reaches the files of another watch folder now" in text, text
    assert f"{link}: {link} is inside {lib}" in text and "missing, deleted" not in text
    out = run_vpod(["status", "--config", str(daemon.config), "--json"], env=env)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [(u["path"], u["reason"]) for u in listed["unwatched"]] == [(str(link), "overlaps")]

    # Pointed elsewhere again: watched again, at its new folder.
    subprocess.run(["ln", "-sfn", str(other), str(link)], check=True)
    daemon.wait_for("watch_path_restored", root=str(link), timeout=30)
    daemon.wait_for("watch_started", root=str(link), target=str(other))
    y = shutil.copyfile(jpn_eng_mkv, other / "y.mkv")
    daemon.wait_for("file_processed", path=str(link / "y.mkv"), success=True)
    assert daemon.stop() == 0
