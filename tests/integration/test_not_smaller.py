"""keep_if_larger (issue 18): a file whose video encode was not smaller keeps the audio
actions of its plan, and is then handled: `vpod process` run again runs no tool for it
(unchanged means untouched), and the daemon's restart scan does not queue it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.daemon import write_config
from support.transcode_media import streams, tiny_hevc
from test_unchanged import counting_tools, tool_runs

pytestmark = pytest.mark.integration

# H.264 at CRF 10 from a low-bitrate HEVC: far larger, so the video encode is discarded.
POLICY = {
    "audio_languages": ["eng"],
    "video_codec": {"codec": "h264", "convert": ["hevc"], "crf": 10, "preset": "ultrafast"},
    "audio_compat": {"codec": "ac3", "channels": 2, "bitrate_kbps": 96, "title": "AC-3 Stereo"},
}


def process(tmp_path: Path, env: dict[str, str], *args: str, path: str | None = None) -> dict[str, Any]:
    config = write_config(tmp_path / "process.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"}, "policy": POLICY,
    })
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", *args],
        env={**env, **({"PATH": path} if path else {})}, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_process_again_runs_no_tool_for_a_file_kept_as_not_smaller(tmp_path: Path, env: dict[str, str]) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    source = tiny_hevc(lib / "Small.mkv")

    first = process(tmp_path, env, str(lib))
    [result] = first["results"]
    assert (result["reason"], result["skipped"]) == ("not_smaller", True), result
    assert [s["codec_name"] for s in streams(source)] == ["hevc", "aac", "ac3"]

    log = tmp_path / "tools.log"
    again = process(tmp_path, env, str(lib), path=counting_tools(tmp_path / "bin", log))
    assert tool_runs(log) == []
    [result] = again["results"]
    assert (result["unchanged"], result["reason"], result["skipped"]) == (True, "not_smaller", True), result
    assert again["unchanged_count"] == 1


def test_the_daemon_does_not_queue_a_file_kept_as_not_smaller_again(tmp_path: Path, daemon_factory: Any) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "policy": POLICY}
    daemon = daemon_factory(config, name="first")
    source = tiny_hevc(tmp_path / "Small.mkv")
    source.rename(inbox / "Small.mkv")
    target = inbox / "Small.mkv"
    [event] = daemon.wait_for("file_skipped", path=str(target))
    assert event["reason"] == "not_smaller" and event["changes"] >= 1, event
    assert daemon.stop() == 0
    assert [s["codec_name"] for s in streams(target)] == ["hevc", "aac", "ac3"]

    again = daemon_factory(config, name="second")
    again.wait_for("scan_completed")
    assert again.stop() == 0
    assert again.named("file_processed", path=str(target)) == again.named("file_skipped", path=str(target)) == []

    # A policy that now judges it differently (a larger margin of saving asked for: a new
    # digest) may encode it: the restart puts it back in the queue, once.
    changed = {**config, "policy": {**POLICY, "min_saving_percent": 50}}
    third = daemon_factory(changed, name="third")
    assert third.wait_for("not_smaller_requeued")[0]["files"] == 1
    third.wait_for("file_skipped", path=str(target))  # judged again under the new policy
    assert third.stop() == 0


def test_the_summary_counts_a_not_smaller_file_whose_audio_was_added_as_changed(tmp_path: Path, env: dict[str, str]) -> None:
    """The skip applied the rest of the plan (an AC-3 track): `vpod process`'s summary
    counts the file among the changed (T18D finding N7: it said "0 changed")."""
    (tmp_path / "lib").mkdir()
    source = tiny_hevc(tmp_path / "lib" / "Small.mkv")
    config = write_config(tmp_path / "process.toml", {"database": {"path": str(tmp_path / "vpod.db")}, "policy": POLICY})
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), str(source)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert [s["codec_name"] for s in streams(source)] == ["hevc", "aac", "ac3"]  # the file changed
    first = done.stdout.splitlines()[0]
    assert "0 succeeded (1 changed, 1 of them skipped but changed in part), 0 failed, 1 skipped" in first, done.stdout
    assert "[not_smaller]" in done.stdout
