"""Issue 18's acceptance list: transcoding under the policy, with the real daemon, the real
``vpod process`` and the real ffmpeg/MKVToolNix; every outcome read back with
``mkvmerge -J``/``ffprobe``.

1. Files with H.264 video, TrueHD (or PCM, "DTS-like") 5.1 audio, subtitles, chapters and an
   attachment, under ``audio_compat`` = AAC stereo and ``video_codec`` = HEVC, end with the
   planned streams, the original audio kept, a stereo AAC track right after it, chapters and
   attachments intact, the duration kept, a smaller size, and a second pass planning nothing.
2. A daemon killed with -9 mid-transcode: restarted, the file is transcoded once, no temp
   file is left, the source untouched until the verified replace.
3. ``workers = 2``, ``max_transcodes = 1``: ten header-only files dropped during a long
   transcode are all done while it still runs (order of events, never a timing).
4. ``keep_if_larger``: a file already small is left as it is, outcome ``not_smaller``; the
   saving is the video's, so big lossless audio beside a video that shrank does not hide it.

"A long transcode" is a real encode held before it starts (tests/support/encoder_hold.py:
the test's wrapper stops the ffmpeg process vpod started, with vpod's own arguments, until
the test lets it go), so nothing here depends on the machine's speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from support.daemon import run_vpod, write_config
from support.encoder_hold import ToolRecorder, alive
from support.media import audio, make_media, mkvmerge_tracks, video
from support.transcode_media import video_packet_bytes, video_with_lossless_audio
from support.tools import path_with, tool_failing_with
from support.acceptance_media import (
    ATTACHMENT_NAME,
    ATTACHMENT_TEXT,
    CHAPTER_TITLES,
    ffprobe_json,
    make_small_hevc,
    make_surround_file,
    mkvmerge_json,
    video_frames,
)

pytestmark = pytest.mark.integration

SETTLE = 0.3
DURATION_TOLERANCE = 0.5  # seconds: the AAC encoder's priming samples and Matroska's ms timestamps
COMPAT = {"codec": "aac", "channels": 2}
HEVC = {"codec": "hevc", "convert": ["h264"]}
TRANSCODE_POLICY = {"audio_compat": COMPAT, "video_codec": HEVC}
# mkvmerge -J codec names (MKVToolNix's "codec" strings)
MKV_CODEC = {"hevc": "HEVC/H.265/MPEG-H", "h264": "AVC/H.264/MPEG-4p10", "aac": "AAC", "truehd": "TrueHD",
             "pcm": "PCM", "flac": "FLAC", "srt": "SubRip/SRT"}  # fmt: skip


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stream_md5(path: Path, selector: str) -> str:
    """MD5 of the packets of stream ``selector`` (``a:0``), copied, not decoded
    (ffmpeg-formats(1) "md5"): a stream kept as it was has the same sum."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:{selector}", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def attachments(path: Path, folder: Path) -> list[tuple[str, str, bytes]]:
    """(name, MIME type, bytes) of every attachment, extracted by ``mkvextract``."""
    found = []
    for item in mkvmerge_json(path)["attachments"]:
        out = folder / f"attachment-{item['id']}"
        subprocess.run(["mkvextract", "-q", str(path), "attachments", f"{item['id']}:{out}"], check=True)
        found.append((item["file_name"], item["content_type"], out.read_bytes()))
        out.unlink()
    return found


def chapters(path: Path) -> list[tuple[float, float, str | None]]:
    return [
        (round(float(c["start_time"]), 3), round(float(c["end_time"]), 3), c.get("tags", {}).get("title"))
        for c in ffprobe_json(path)["chapters"]
    ]


def duration(path: Path) -> float:
    return float(ffprobe_json(path)["format"]["duration"])


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".vpod-tmp-")]


def process(config: Path, env: dict[str, str], *paths: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """``vpod process PATHS --workers 1 --json``; the report."""
    done = run_vpod(["process", *map(str, paths), "--workers", "1", "--json", "--config", str(config), *extra],
                    env=env, timeout=300)  # fmt: skip
    assert done.stdout, f"vpod process printed nothing (exit {done.returncode}): {done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    report["stderr"] = done.stderr
    return report


def plan_json(config: Path, env: dict[str, str], path: Path) -> dict[str, Any]:
    done = run_vpod(["plan", str(path), "--config", str(config), "--json"], env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def process_config(tmp_path: Path, policy: dict[str, Any], name: str = "process") -> Path:
    return write_config(tmp_path / f"{name}.toml", {"database": {"path": str(tmp_path / f"{name}.db")},
                                                    "policy": policy})  # fmt: skip


def successes_with_changes(db: Path, path: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM results WHERE success = 1 AND skipped = 0 AND changes > 0 AND CAST(path AS TEXT) = ?",
            (str(path),),
        ).fetchone()[0]


def writing_runs(recorder: ToolRecorder) -> list[dict[str, Any]]:
    """Recorded runs that write or check a new file: mkvpropedit, mkvmerge with an output,
    ffmpeg reading an input (an encode, a remux, a decode check); not probes nor ``-version``."""
    return [
        r for r in recorder.runs()
        if r["tool"] == "mkvpropedit"
        or (r["tool"] == "mkvmerge" and any(a in ("-o", "--output") or a.startswith("--output=") for a in r["args"]))
        or (r["tool"] == "ffmpeg" and "-i" in r["args"])
    ]  # fmt: skip


# -- 1. the planned streams, a smaller file, and a second pass that plans nothing ---------------


@pytest.mark.parametrize("source_audio", ["truehd", "pcm"])
def test_transcoded_file_has_the_planned_streams_and_plans_nothing_after(tmp_path, env, source_audio):
    library = tmp_path / "library"
    source = make_surround_file(library / f"film-{source_audio}.mkv", source_audio, marker=f"film {source_audio}")
    before_size, before_duration, before_frames = source.stat().st_size, duration(source), video_frames(source)
    before_audio, before_subs = stream_md5(source, "a:0"), stream_md5(source, "s:0")
    before_chapters, before_attachments = chapters(source), attachments(source, tmp_path)
    assert [c[2] for c in before_chapters] == list(CHAPTER_TITLES)  # the generator's own promise
    assert before_attachments == [(ATTACHMENT_NAME, "text/plain", ATTACHMENT_TEXT.encode())]
    config = process_config(tmp_path, TRANSCODE_POLICY)

    planned = plan_json(config, env, source)
    kinds = {a["action"] for a in planned["actions"]}
    assert {"add_audio", "transcode_video"} <= kinds and not kinds & {"remove_track", "convert_audio"}, planned
    assert planned.get("cost") == "transcode", planned

    report = process(config, env, source)
    assert report["exit_code"] == 0, report
    (result,) = report["results"]
    assert result["success"] and not result["skipped"] and result["changes"] > 0, result

    tracks = mkvmerge_json(source)["tracks"]
    assert [(t["type"], t["codec"]) for t in tracks] == [
        ("video", MKV_CODEC["hevc"]),
        ("audio", MKV_CODEC[source_audio]),  # the original, kept ...
        ("audio", MKV_CODEC["aac"]),  # ... and the stereo AAC right after it
        ("subtitles", MKV_CODEC["srt"]),
    ], tracks
    original, compat = tracks[1]["properties"], tracks[2]["properties"]
    assert original["audio_channels"] == 6 and original["language"] == "eng" and original["default_track"]
    assert compat["audio_channels"] == 2 and compat["language"] == "eng"
    assert compat["default_track"] is False, "the added track is not the default unless the policy says so"
    assert compat.get("track_name"), "the added track has a title"
    assert stream_md5(source, "a:0") == before_audio, "the original audio was re-encoded"
    assert stream_md5(source, "s:0") == before_subs
    probed = {s["index"]: s for s in ffprobe_json(source)["streams"]}
    assert probed[0]["codec_name"] == "hevc" and (probed[0]["width"], probed[0]["height"]) == (320, 240)
    assert probed[2]["codec_name"] == "aac" and probed[2]["channels"] == 2
    assert video_frames(source) == before_frames
    assert chapters(source) == before_chapters
    assert attachments(source, tmp_path) == before_attachments
    assert abs(duration(source) - before_duration) <= DURATION_TOLERANCE
    assert source.stat().st_size < before_size, (source.stat().st_size, before_size)
    assert temps(library) == []

    # The second pass: nothing to plan; a re-run runs no tool at all, and one forced to probe
    # and plan again (--force) runs no tool that writes.
    again = plan_json(config, env, source)
    assert again["actions"] == [] and again["would_apply"] == [], again
    recorder = ToolRecorder(tmp_path / "tools")
    after = sha(source)
    rerun = process(config, {**env, **recorder.env()}, source)
    assert rerun["results"][0]["unchanged"] and recorder.runs() == [], (rerun, recorder.runs())
    second = process(config, {**env, **recorder.env()}, source, extra=("--force",))
    (result,) = second["results"]
    assert second["exit_code"] == 0 and result["success"] and result["changes"] == 0, second
    assert writing_runs(recorder) == [], writing_runs(recorder)
    assert sha(source) == after


# -- 2. kill -9 mid-transcode ---------------------------------------------------------------------


def daemon_config(inbox: Path, policy: dict[str, Any], **processing: Any) -> dict[str, Any]:
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 5, **processing},
        # a held encode makes no progress: long leases keep the claim while the test holds it
        "database": {"lease_seconds": 600.0, "lease_heartbeat_seconds": 15.0},
        "policy": policy,
    }


EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # a Matroska file starts with the EBML header, Element ID 0x1A45DFA3 (RFC 8794)


def stop_when_written(pid: int, temp_dir: Path, timeout: float = 60) -> Path:
    """Let the held encoder ``pid`` run until its temp file starts with a Matroska header
    (written by ffmpeg: not space vpod reserved), then stop it again: a transcode in
    progress, its output half written."""
    os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            written = [p for p in temps(temp_dir) if p.read_bytes()[:4] == EBML_MAGIC]
            if written:
                return written[0]
            assert alive(pid), "the encode ended before it wrote anything the test could see"
            time.sleep(0.005)
        raise AssertionError(f"no temp file with bytes appeared in {temp_dir}")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGSTOP)


def test_kill_9_mid_transcode_transcodes_once_and_leaves_no_temp(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = make_surround_file(tmp_path / "src" / "film.mkv", "truehd", duration=8.0, marker="kill -9 film")
    recorder = ToolRecorder(tmp_path / "tools")
    recorder.hold()
    config = daemon_config(inbox, TRANSCODE_POLICY)
    daemon = daemon_factory(config, extra_env=recorder.env(), name="first")
    film = inbox / "film.mkv"
    os.link(source, film)  # one atomic appearance; the source copy stays for comparison
    os.unlink(source)
    original, inode = sha(film), film.stat().st_ino

    (pid,) = recorder.wait_held()
    temp = stop_when_written(pid, inbox)
    assert alive(pid), "the encode finished before the kill: nothing was mid-transcode"
    assert sha(film) == original, "the source changed before the verified replace"
    daemon.kill()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid), "the encoder outlived the vpod that started it"
    assert sha(film) == original, "the source changed although vpod never replaced it"
    assert temp.exists(), "the kill left no half-written temp file: the test proved nothing"

    recorder.release()
    daemon = daemon_factory(config, extra_env=recorder.env(), name="second")
    assert daemon.named("daemon_started")[0]["requeued_after_crash"] >= 1
    daemon.wait_for("file_processed", path=str(film), timeout=180)
    assert daemon.stop() == 0
    assert temps(inbox) == [], "a temp file was left"
    assert film.stat().st_ino != inode, "the result was not renamed over the source"
    assert [t["codec"] for t in mkvmerge_json(film)["tracks"]] == [
        MKV_CODEC["hevc"], MKV_CODEC["truehd"], MKV_CODEC["aac"], MKV_CODEC["srt"]
    ]
    assert successes_with_changes(tmp_path / "vpod.db", film) == 1
    assert len(recorder.encodes()) == 2, recorder.encodes()  # the killed one and the one that finished

    # A third start finds the file vpod left and encodes nothing.
    daemon = daemon_factory(config, extra_env=recorder.env(), name="third")
    daemon.wait_for("scan_completed")
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    assert daemon.named("file_processed") == [] and daemon.named("file_started") == []
    assert len(recorder.encodes()) == 2


# -- 3. two lanes: header edits are not starved by a transcode ------------------------------------


def test_header_edits_are_done_while_a_transcode_runs(tmp_path, daemon_factory):
    """``workers = 2``, ``max_transcodes = 1``. Film A is encoding (held); film B, queued
    next, needs a transcode too: with one lane it must wait, so the second worker takes
    the ten header-only files dropped after it, all done while A still encodes."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    staging = tmp_path / "staging"
    film_a = make_surround_file(staging / "a.mkv", "truehd", marker="lane film A")
    film_b = make_surround_file(staging / "b.mkv", "pcm", marker="lane film B")
    headers = [
        make_media(staging / f"episode-{i:02d}.mkv", [video(), audio("eng", title=f"English {i}"), audio("jpn", default=True)])
        for i in range(10)
    ]
    recorder = ToolRecorder(tmp_path / "tools")
    recorder.hold()
    daemon = daemon_factory(
        daemon_config(inbox, TRANSCODE_POLICY, workers=2, max_transcodes=1),
        extra_env=recorder.env(),  # the cap is half the CPUs plus max_transcodes: 2 on 2 CPUs
    )
    assert daemon.named("daemon_started")[0]["workers"] == 2
    a, b = inbox / "a.mkv", inbox / "b.mkv"
    film_a.rename(a)
    (held_a,) = recorder.wait_held()
    film_b.rename(b)
    daemon.wait_for("file_queued", path=str(b))
    episodes = []
    for path in headers:
        episodes.append(inbox / path.name)
        path.rename(episodes[-1])

    for episode in episodes:
        daemon.wait_for("file_processed", path=str(episode), timeout=120)
    assert alive(held_a), "A's encoder is gone"
    assert len(recorder.encodes()) == 1, f"B was encoded beside A: max_transcodes = 1 not kept: {recorder.encodes()}"
    deferred = daemon.named("transcode_deferred", path=str(b))
    assert deferred and deferred[0].get("reason") == "lane_full", daemon.named("transcode_deferred")

    recorder.release()
    daemon.wait_for("file_processed", path=str(a), timeout=180)
    daemon.wait_for("file_processed", path=str(b), timeout=180)
    assert daemon.stop() == 0
    events = daemon.events()
    done_at = {e["path"]: i for i, e in enumerate(events) if e.get("event") == "file_processed"}
    assert all(done_at[str(e)] < done_at[str(a)] for e in episodes), "a header edit waited for the transcode"
    assert done_at[str(a)] < done_at[str(b)]
    assert [t["codec"] for t in mkvmerge_json(b)["tracks"]][0] == MKV_CODEC["hevc"]
    for episode in episodes:
        assert [t["language"] for t in mkvmerge_tracks(episode) if t["type"] == "audio" and t["default"]] == ["eng"]
    assert len(recorder.encodes()) == 2, recorder.encodes()  # A's, then B's


# -- 4. keep_if_larger -------------------------------------------------------------------------------


def test_keep_if_larger_leaves_a_small_file_as_it_is(tmp_path, env):
    """A low-bitrate HEVC file under a policy that converts HEVC into H.264: the encode is
    larger, so the source stays byte for byte, outcome ``not_smaller``."""
    library = tmp_path / "library"
    small = make_small_hevc(library / "small.mkv", marker="keep if larger")
    original = sha(small)
    config = process_config(tmp_path, {"video_codec": {"codec": "h264", "convert": ["hevc"]}})
    assert [a["action"] for a in plan_json(config, env, small)["actions"]] == ["transcode_video"]

    report = process(config, env, small)
    (result,) = report["results"]
    assert result["skipped"] and result["reason"] == "not_smaller", result
    assert report["exit_code"] == 0, report
    assert sha(small) == original
    assert temps(library) == []


def test_keep_if_larger_false_keeps_the_larger_encode(tmp_path, env):
    """The same file with ``keep_if_larger = false``: the encode replaces it, larger (so the
    test above is about the key, not about an encode that never ran)."""
    library = tmp_path / "library"
    small = make_small_hevc(library / "small.mkv", marker="keep if larger off")
    size = small.stat().st_size
    config = process_config(tmp_path, {"video_codec": {"codec": "h264", "convert": ["hevc"]}, "keep_if_larger": False})
    report = process(config, env, small)
    (result,) = report["results"]
    assert result["success"] and not result["skipped"] and result["changes"] > 0, result
    assert mkvmerge_json(small)["tracks"][0]["codec"] == MKV_CODEC["h264"]
    assert small.stat().st_size > size
    assert temps(library) == []


def test_keep_if_larger_judges_the_video_not_the_lossless_audio_beside_it(tmp_path, env):
    """A generous H.264 video beside a PCM 5.1 track ten times its size: the HEVC encode
    makes the video about a third smaller but the whole file under 5 % smaller. The rule is
    about the video, so the encode is kept (before, the whole file was measured and the
    encode discarded as ``not_smaller``)."""
    library = tmp_path / "library"
    source = video_with_lossless_audio(library / "surround.mkv")
    size, video_before, pcm = source.stat().st_size, video_packet_bytes(source), stream_md5(source, "a:0")
    config = process_config(tmp_path, {"video_codec": {**HEVC, "preset": "ultrafast"}})
    assert [a["action"] for a in plan_json(config, env, source)["actions"]] == ["transcode_video"]

    report = process(config, env, source)
    (result,) = report["results"]
    assert result["success"] and not result["skipped"] and result["reason"] is None, result
    assert [t["codec"] for t in mkvmerge_json(source)["tracks"]] == [MKV_CODEC["hevc"], MKV_CODEC["pcm"]]
    assert stream_md5(source, "a:0") == pcm
    video_after = video_packet_bytes(source)
    assert video_after <= 0.9 * video_before, (video_before, video_after)  # the video shrank well ...
    assert 0.95 * size < source.stat().st_size < size, (size, source.stat().st_size)  # ... the file barely
    assert temps(library) == []


def test_keep_if_larger_fails_the_file_naming_it_when_ffprobe_cannot_count_the_video(tmp_path, env):
    """The ffprobe that counts the video's packets fails (every other ffprobe runs): the file
    fails with an error naming it and the count that failed, the source byte for byte as
    it was, no temp file left."""
    library = tmp_path / "library"
    source = video_with_lossless_audio(library / "surround.mkv", seconds=2.0)
    original = sha(source)
    tools = tool_failing_with(tmp_path / "bin", "ffprobe", "packet=stream_index,size")
    config = process_config(tmp_path, {"video_codec": {**HEVC, "preset": "ultrafast"}})

    report = process(config, {**env, "PATH": path_with(tools)}, source)
    (result,) = report["results"]
    assert not result["success"] and not result["skipped"], result
    assert result["error"].startswith(f"{source}: "), result
    assert "cannot count the bytes of its video" in result["error"] and "simulated read error" in result["error"]
    assert sha(source) == original
    assert temps(library) == []
