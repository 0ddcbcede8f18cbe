"""A video transcode that cannot keep the picture (T18C findings 4 and 8): HDR10 into
H.264 (``hdr_not_kept``), an interlaced MPEG-2 source (``interlaced_not_kept``), and two
H.264 video tracks to encode (``several_video_tracks``, T18D N3: FFmpeg 5.1 writes the
second so that it fails the verification's decode, on every attempt). The
video encode is declined before anything is encoded; the rest of the plan (a default
flag, an added AAC track) is applied as for ``not_smaller``; the source's video packets
are untouched; `vpod plan` says so beforehand; a second run changes and runs nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.daemon import write_config
from support.transcode_media import picture_not_kept, streams
from test_unchanged import counting_tools, tool_runs

pytestmark = pytest.mark.integration

CASES = {
    # HDR10 HEVC under a policy that converts HEVC to H.264: libx264 cannot write its
    # mastering display metadata.
    "hdr10": ("hdr_not_kept", {"codec": "h264", "convert": ["hevc"], "preset": "ultrafast"}, "HDR10 (PQ)"),
    # Interlaced MPEG-2 under video_codec = "hevc" and its default convert list (mpeg2 in it).
    "interlaced": ("interlaced_not_kept", "hevc", "field order tt"),
    # Two H.264 tracks under a policy that converts H.264 to HEVC.
    "two_h264": (
        "several_video_tracks", {"codec": "hevc", "convert": ["h264"], "preset": "ultrafast"}, "2 video tracks (tracks 0, 1)"
    ),
}


def vpod(tmp_path: Path, env: dict[str, str], video_codec: Any, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path / "c.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"},
        "policy": {"audio_languages": ["eng"], "video_codec": video_codec,
                   "audio_compat": {"codec": "aac", "channels": 2, "bitrate_kbps": 96}},
    })  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "vpod", *args, "--config", str(config)],
        env={**env, **({"PATH": path} if path else {})}, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def video_hash(path: Path) -> str:
    """A hash of the video stream's packets (ffmpeg's streamhash muxer, ffmpeg-formats(1))."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "streamhash", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_video_encode_is_declined_and_the_rest_of_the_plan_applied(tmp_path: Path, env: dict[str, str], kind: str) -> None:
    reason, video_codec, named = CASES[kind]
    source = picture_not_kept(tmp_path / "lib" / "Film.mkv", kind)
    before = streams(source)
    videos = sum(1 for s in before if s["codec_type"] == "video")
    video_before = video_hash(source)

    planned = vpod(tmp_path, env, video_codec, "plan", str(source), "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["skip"]["reason"] == reason and named in plan["skip"]["detail"], plan["skip"]
    assert plan["error"] is None
    video = [a for a in plan["actions"] if a["action"] == "transcode_video"]
    assert [a.get("not_run") for a in video] == [reason] * videos, plan["actions"]
    assert sorted(a["action"] for a in plan["would_apply"]) == ["add_audio", "set_flag"], plan["would_apply"]
    assert plan["would_apply_cost"] == "transcode"  # the AAC encode
    text = vpod(tmp_path, env, video_codec, "plan", str(source)).stdout
    assert f"(not run: {reason}" in text and f"vpod run would not encode its video ({reason})" in text, text
    assert "vpod run would apply the rest (2 change(s)" in text, text

    done = vpod(tmp_path, env, video_codec, "process", str(source), "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert (result["skipped"], result["reason"]) == (True, reason), result
    assert f"applied: track {videos}: set default flag on; add AAC 2 ch" in result["error"], result
    after = streams(source)
    assert video_hash(source) == video_before
    fields = ("codec_name", "pix_fmt", "field_order", "color_transfer")
    assert [{k: s.get(k) for k in fields} for s in after[:videos]] == [{k: s.get(k) for k in fields} for s in before[:videos]]
    assert [(s["codec_name"], s.get("channels"), s["disposition"]["default"]) for s in after[videos:]] == [
        ("flac", 6, 1), ("aac", 2, 0),
    ]  # fmt: skip
    assert not list(source.parent.glob(".vpod-tmp*"))

    # Handled under this policy: vpod process again runs no tool; the plan now declines
    # the video transcode alone, with nothing else to apply.
    log = tmp_path / "tools.log"
    again = vpod(tmp_path, env, video_codec, "process", str(source), "--json", path=counting_tools(tmp_path / "bin", log))
    [result] = json.loads(again.stdout)["results"]
    assert (result["unchanged"], result["skipped"], result["reason"]) == (True, True, reason), result
    assert tool_runs(log) == []
    plan = json.loads(vpod(tmp_path, env, video_codec, "plan", str(source), "--json").stdout)
    assert (plan["skip"]["reason"], plan["would_apply"], plan["would_apply_cost"]) == (reason, [], "none")
    # --force looks again: the same decline, nothing written.
    mtime = source.stat().st_mtime_ns
    forced = json.loads(vpod(tmp_path, env, video_codec, "process", str(source), "--json", "--force").stdout)
    assert [(r["reason"], r.get("changes")) for r in forced["results"]] == [(reason, 0)], forced
    assert source.stat().st_mtime_ns == mtime


def test_the_daemon_applies_the_rest_once_and_a_policy_change_judges_it_again(tmp_path: Path, daemon_factory: Any) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    policy = {"audio_languages": ["eng"], "video_codec": "hevc", "audio_compat": {"codec": "aac", "channels": 2}}
    config = {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "policy": policy}
    daemon = daemon_factory(config, name="first")
    target = picture_not_kept(tmp_path / "Film.mkv", "interlaced").rename(inbox / "Film.mkv")
    [event] = daemon.wait_for("file_skipped", path=str(target))
    assert (event["reason"], event["changes"]) == ("interlaced_not_kept", 2), event
    assert daemon.stop() == 0
    assert [s["codec_name"] for s in streams(target)] == ["mpeg2video", "flac", "aac"]

    again = daemon_factory(config, name="second")
    again.wait_for("scan_completed")
    assert again.stop() == 0
    assert again.named("file_processed", path=str(target)) == again.named("file_skipped", path=str(target)) == []

    # Another policy (a new digest) judges it again at start: queued once, declined again.
    third = daemon_factory({**config, "policy": {**policy, "video_codec": {"codec": "hevc", "crf": 30}}}, name="third")
    [requeued] = third.wait_for("video_declined_requeued")
    assert (requeued["files"], requeued["outcome"]) == (1, "interlaced_not_kept"), requeued
    [event] = third.wait_for("file_skipped", path=str(target))
    assert event["reason"] == "interlaced_not_kept" and not event.get("changes"), event
    assert third.stop() == 0
