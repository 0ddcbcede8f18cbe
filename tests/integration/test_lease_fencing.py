"""Claims and leases in a real ``vpod run`` (issue 14, must-have 2; docs/architecture.md
"Claims and leases").

* A tool that hangs and ignores SIGTERM makes no progress: its claim's lease is not
  renewed, the worker fences itself before the lease ends (the tool is killed, the temp
  file removed, ``lease_self_fenced``) and the source is left as it was.
* A slow tool that works (its CPU time grows) keeps its lease past several lease periods.
* A claim taken by someone else while the file was worked on (written into the store by
  the test, as another node's claim would be): the compare-and-set before the replace,
  or before an in-place edit, fails, the result is discarded and ``lease_lost`` is
  logged; the file is not changed.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.daemon import write_config
from support.flocks import hold_flock
from support.media import audio, video
from support.pipeline import sha256
from support.tools import busy_tool, gated_tool, kill_if_running, path_with, process_ended, stubborn_tool

pytestmark = pytest.mark.integration

NEEDS_REMUX = [video(), audio("jpn", default=True), audio("eng")]  # default policy: eng first, so a remux
HEADER_ONLY = [video(), audio("eng"), audio("jpn", default=True)]  # default policy: two flags, edited in place
SETTLE = 0.3


def sections(inbox: Path, **database: float) -> dict:
    return {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}, "database": dict(database)}


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".vpod-tmp-"))


def test_a_hung_tool_that_ignores_sigterm_is_fenced_and_the_source_left_intact(
    tmp_path, env, daemon_factory, media_cache
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    pidfile = tmp_path / "mkvmerge.pid"
    # Only the remux (its output is vpod's temp file) hangs; mkvmerge -J runs for real.
    bin_dir = stubborn_tool(tmp_path / "bin", "mkvmerge", ".vpod-tmp-", pidfile)
    daemon = daemon_factory(
        sections(inbox, lease_seconds=2.0, lease_heartbeat_seconds=1.0), extra_env={"PATH": path_with(bin_dir)}
    )
    source = inbox / "movie.mkv"
    shutil.copyfile(media_cache("jpn-eng-remux.mkv", NEEDS_REMUX), source)
    before = sha256(source)
    try:
        [fenced] = daemon.wait_for("lease_self_fenced", timeout=90)
        tool = int(pidfile.read_text())
        assert fenced["reason"] == "no_progress" and fenced["tools_killed"] == 1
        assert fenced["path"] == str(source)
        assert process_ended(tool), f"the hung mkvmerge (pid {tool}) ignored SIGTERM and was not killed"
        # Recorded as a hung tool (a timeout: tried once more), the claim kept its row.
        daemon.wait_for("file_retry", reason="timeout", timeout=30)
        assert sha256(source) == before
        assert temps(inbox) == []
        assert not daemon.named("file_processed")
    finally:
        daemon.stop()
        if pidfile.exists():
            kill_if_running(int(pidfile.read_text()))
    assert sha256(source) == before and temps(inbox) == []


def test_a_slow_tool_that_makes_progress_keeps_its_lease(tmp_path, env, daemon_factory, media_cache):
    """The other side of the fence: a remux that runs past several leases while it works
    (CPU time grows) is renewed, never fenced, and its file is replaced."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bin_dir = busy_tool(tmp_path / "bin", "mkvmerge", 5, ".vpod-tmp-")  # 5 s of work: 2.5 leases
    daemon = daemon_factory(
        sections(inbox, lease_seconds=2.0, lease_heartbeat_seconds=1.0), extra_env={"PATH": path_with(bin_dir)}
    )
    source = inbox / "movie.mkv"
    shutil.copyfile(media_cache("jpn-eng-remux.mkv", NEEDS_REMUX), source)
    before = sha256(source)
    try:
        [processed] = daemon.wait_for("file_processed", timeout=90)
        assert processed["duration_seconds"] > 2.0  # it did outlast its first lease
        assert not daemon.named("lease_self_fenced") and not daemon.named("lease_lost")
        assert sha256(source) != before and temps(inbox) == []
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    "media, tracks",
    [
        ("jpn-eng-remux.mkv", NEEDS_REMUX),  # a remux: the compare-and-set before put_in_place
        ("eng-jpn.mkv", HEADER_ONLY),  # flags only: the compare-and-set before mkvpropedit edits in place
    ],
)
def test_a_claim_taken_by_another_node_discards_the_result_and_replaces_nothing(
    tmp_path, env, daemon_factory, media_cache, media, tracks
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    gate = tmp_path / "gate"
    gate.touch()  # every mkvmerge (the probe first) waits while it exists
    bin_dir = gated_tool(tmp_path / "bin", "mkvmerge", gate)
    # A long renewal period: the compare-and-set before the replace is what notices.
    daemon = daemon_factory(
        sections(inbox, lease_seconds=120.0, lease_heartbeat_seconds=60.0), extra_env={"PATH": path_with(bin_dir)}
    )
    source = inbox / "movie.mkv"
    shutil.copyfile(media_cache(media, tracks), source)
    before = sha256(source)
    database = tmp_path / "vpod.db"
    foreign = "f" * 32
    deadline = time.monotonic() + 60
    with sqlite3.connect(database, timeout=10, isolation_level=None) as conn:
        while (row := conn.execute("SELECT id FROM files WHERE state = 'processing'").fetchone()) is None:
            assert time.monotonic() < deadline, f"the file was never claimed; log:\n{daemon.tail()}"
            time.sleep(0.05)
        # Another node's claim: a new token and a lease of its own.
        conn.execute(
            "UPDATE files SET lease_token = ?, lease_until = ? WHERE id = ?", (foreign, time.time() + 3600, row[0])
        )
    gate.unlink()
    try:
        [lost] = daemon.wait_for("lease_lost", timeout=90)
        assert lost["path"] == str(source)
        assert sha256(source) == before
        assert temps(inbox) == []
        assert not daemon.named("file_processed") and not daemon.named("lease_self_fenced")
    finally:
        daemon.stop()
    with sqlite3.connect(database) as conn:
        state, token = conn.execute("SELECT state, lease_token FROM files WHERE id = ?", (row[0],)).fetchone()
    assert (state, token) == ("processing", foreign)  # the other claim's row: nothing written over it
    assert sha256(source) == before and temps(inbox) == []


def test_vpod_process_fences_a_hung_tool_by_the_same_lease(tmp_path, env, media_cache):
    """`vpod process` claims its file with a lease too: a hung remux is killed at the
    lease's deadline and the file fails as a timeout, left as it was."""
    folder = tmp_path / "files"
    folder.mkdir()
    source = folder / "movie.mkv"
    shutil.copyfile(media_cache("jpn-eng-remux.mkv", NEEDS_REMUX), source)
    before = sha256(source)
    pidfile = tmp_path / "mkvmerge.pid"
    bin_dir = stubborn_tool(tmp_path / "bin", "mkvmerge", ".vpod-tmp-", pidfile)
    config = write_config(tmp_path / "process.toml", {
        "database": {"path": str(tmp_path / "vpod.db"), "lease_seconds": 2.0, "lease_heartbeat_seconds": 1.0},
        "logging": {"format": "json"},
    })  # fmt: skip
    try:
        result = subprocess.run(
            [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", str(source)],
            env={**env, "PATH": path_with(bin_dir)}, capture_output=True, text=True, timeout=180,
        )
    finally:
        if pidfile.exists():
            kill_if_running(int(pidfile.read_text()))
    [outcome] = json.loads(result.stdout)["results"]
    assert outcome["reason"] == "timeout" and "made no progress" in outcome["error"], outcome
    assert '"lease_self_fenced"' in result.stderr
    assert process_ended(int(pidfile.read_text()))
    assert sha256(source) == before and temps(folder) == []


def test_a_claimed_file_is_not_kept_from_its_claim_by_a_lock_held_elsewhere(tmp_path, env, daemon_factory, media_cache):
    """Another process keeps the file's flock (a node whose claim ended, still frozen or
    cut off): the node that holds the live claim waits a moment, then works without the
    lock (``lock_held_elsewhere``) instead of failing the file ``locked``."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    staged = tmp_path / "movie.mkv"
    shutil.copyfile(media_cache("jpn-eng-remux.mkv", NEEDS_REMUX), staged)
    holder = hold_flock(staged)  # the lock moves with the inode into the library
    try:
        daemon = daemon_factory(sections(inbox, lease_seconds=2.0, lease_heartbeat_seconds=1.0))
        source = inbox / "movie.mkv"
        before = sha256(staged)
        staged.rename(source)
        try:
            daemon.wait_for("file_processed", timeout=60)
            [waited] = daemon.named("lock_held_elsewhere")
            assert waited["path"] == str(source)
            assert not daemon.named("file_retry", reason="locked") and not daemon.named("file_failed", reason="locked")
            assert sha256(source) != before and temps(inbox) == []
        finally:
            daemon.stop()
    finally:
        holder.kill()
        holder.wait()
