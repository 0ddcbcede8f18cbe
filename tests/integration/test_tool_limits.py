"""A bad file never holds a worker for long (issue 11, item 9).

What is not media is rejected by its first bytes before any tool runs; a probe has its
own short limit and a probe that hangs is retried once at most; a remux's limit grows
with the file's size. Real tools on media made with ffmpeg at test time; stand-in tools
on PATH only where a hang or a slow run must be certain (a stand-in that sleeps is, to
vpod, a tool spinning on a malformed file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.daemon import write_config
from support.media import audio, default_audio_languages, make_media, mkvmerge_tracks, video
from support.store import file_record, state_counts
from support.tools import hanging_tool, kill_if_running, logging_tool, path_with, process_ended, slow_tool

from vpod.errors import MediaError
from vpod.media.limits import GIB, ToolLimits
from vpod.media.probe import probe
from vpod.media.signature import container_family, check_media_signature
from vpod.media.tools import ToolRunner

pytestmark = pytest.mark.integration

NEEDS_REMUX = [video(), audio("jpn", default=True), audio("eng")]  # default policy: eng first and default
SETTLE = 0.3


def config_file(tmp_path: Path, **sections: Any) -> Path:
    sections.setdefault("database", {"path": str(tmp_path / "vpod.db")})
    sections.setdefault("logging", {"format": "json"})
    return write_config(tmp_path / "process.toml", sections)


def process(paths: list[Path], *, config: Path, env: dict[str, str], path: str | None = None) -> tuple[int, dict, str]:
    """``vpod process PATHS --json``; returns (exit status, report, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", *map(str, paths)],
        env={**env, **({"PATH": path} if path else {})}, capture_output=True, text=True, timeout=180,
    )
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr


# -- what is media: every container the default extensions name, as real tools write it --


def _m2ts(source: Path, target: Path) -> Path:
    """MPEG-TS with 192-byte packets (a 4-byte time code before each 188-byte packet), as on Blu-ray."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(source), "-map", "0", "-c", "copy",
         "-f", "mpegts", "-mpegts_m2ts_mode", "1", str(target)],
        check=True,
    )  # fmt: skip
    return target


def _mkvmerge_written(source: Path, target: Path) -> Path:
    subprocess.run(["mkvmerge", "-q", "-o", str(target), str(source)], check=True)
    return target


@pytest.mark.parametrize(
    "name, family",
    [
        ("clip.mkv", "matroska"), ("clip.webm", "matroska"), ("clip.mp4", "mp4"), ("clip.m4v", "mp4"),
        ("clip.mov", "mp4"), ("clip.avi", "avi"), ("clip.ts", "mpegts"), ("m2ts.ts", "mpegts"),
        ("mkvmerge.mkv", "matroska"),
    ],
)  # fmt: skip
def test_every_container_real_tools_write_passes_the_signature_check(tmp_path, name, family):
    if name == "clip.webm":
        path = make_media(tmp_path / name, [video(codec="libvpx"), audio("eng", codec="libopus")])
    elif name == "m2ts.ts":
        path = _m2ts(make_media(tmp_path / "plain.ts", [video(), audio("eng")]), tmp_path / name)
        assert path.read_bytes()[4] == 0x47 and path.read_bytes()[196] == 0x47  # 192-byte packets
    elif name == "mkvmerge.mkv":
        path = _mkvmerge_written(make_media(tmp_path / "src.mp4", [video(), audio("eng")]), tmp_path / name)
    else:
        path = make_media(tmp_path / name, [video(), audio("eng")])
    with open(path, "rb") as handle:
        assert container_family(handle.read(65536)) == family
    check_media_signature(path)  # does not raise
    media = probe(path, ToolRunner(60))  # and the tools read it as before
    assert [t.type for t in media.tracks] == ["video", "audio"]


def test_a_sparse_20_gib_mkv_fails_at_once_by_its_first_bytes_and_no_tool_runs(tmp_path, env):
    """Observed: a 20 GiB sparse file named .mkv held the only worker 569 s in mkvmerge -J."""
    lib = tmp_path / "lib"
    lib.mkdir()
    sparse = lib / "huge.mkv"
    with open(sparse, "wb") as handle:
        handle.truncate(20 * GIB)
    if sparse.stat().st_blocks * 512 > 1 << 20:
        pytest.skip(f"the file system of {tmp_path} does not keep sparse files sparse")
    calls = tmp_path / "tool-calls.log"
    bin_dir = logging_tool(tmp_path / "bin", "mkvmerge", calls)
    logging_tool(bin_dir, "ffprobe", calls)

    code, report, err = process([lib], config=config_file(tmp_path), env=env, path=path_with(bin_dir))

    assert code == 1, err
    [result] = report["results"]
    assert (result["success"], result["reason"]) == (False, "not_media"), result
    assert str(sparse) in result["error"] and "all zero" in result["error"], result
    assert not calls.exists(), calls.read_text()  # rejected before any tool ran
    record = file_record(tmp_path / "vpod.db", sparse)
    assert (record.state, record.reason, record.permanent) == ("failed", "not_media", True)
    assert state_counts(tmp_path / "vpod.db") == {"queued": 0, "processing": 0, "done": 0, "failed": 1, "skipped": 0}


def test_text_named_mp4_is_not_media_and_the_message_shows_its_first_bytes(tmp_path, env):
    notes = tmp_path / "notes.mp4"
    notes.write_text("<!DOCTYPE html><title>404 Not Found</title>\n")
    calls = tmp_path / "tool-calls.log"
    bin_dir = logging_tool(tmp_path / "bin", "mkvmerge", calls)
    logging_tool(bin_dir, "ffprobe", calls)
    result = subprocess.run(
        [sys.executable, "-m", "vpod", "inspect", str(notes)],
        env={**env, "PATH": path_with(bin_dir)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert str(notes) in result.stderr and "3c 21 44 4f 43 54 59 50" in result.stderr and "<!DOCTYPE" in result.stderr
    assert not calls.exists()
    with pytest.raises(MediaError) as caught:
        check_media_signature(notes)
    assert caught.value.reason == "not_media" and caught.value.permanent


def test_an_extension_the_user_added_goes_to_the_tools_whatever_it_starts_with(tmp_path, env):
    """vpod knows the signatures of its default extensions only; it never rejects a format
    it does not know by name (only an all-zero head, which no container has)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    odd = lib / "recording.xyz"
    odd.write_text("some container vpod has no signature for\n")
    calls = tmp_path / "tool-calls.log"
    bin_dir = logging_tool(tmp_path / "bin", "mkvmerge", calls)
    logging_tool(bin_dir, "ffprobe", calls)
    config = config_file(tmp_path, watch={"extensions": ["xyz"]})
    code, report, err = process([lib], config=config, env=env, path=path_with(bin_dir))
    assert code == 1, err
    [result] = report["results"]
    assert result["reason"] == "unreadable", result  # the tools' verdict, not vpod's
    assert "mkvmerge -J" in calls.read_text()


# -- probes: a short limit of their own, retried once at most ---------------------------


def test_vpod_process_finishes_when_a_probe_hangs(tmp_path, env, media_cache):
    """Observed: mkvmerge -J spinning on a malformed file kept `vpod process` from finishing."""
    lib = tmp_path / "lib"
    lib.mkdir()
    source = media_cache("remux.mkv", NEEDS_REMUX)
    spinning = Path(shutil.copyfile(source, lib / "spin.mkv"))
    good = Path(shutil.copyfile(source, lib / "good.mkv"))
    pidfile = tmp_path / "spin.pid"
    bin_dir = hanging_tool(tmp_path / "bin", "mkvmerge", "spin.mkv", pidfile)
    config = config_file(tmp_path, processing={"probe_timeout_seconds": 1.0})

    try:
        code, report, err = process([lib], config=config, env=env, path=path_with(bin_dir))
        assert process_ended(int(pidfile.read_text())), "the hung probe was not killed"
    finally:
        if pidfile.exists():
            kill_if_running(int(pidfile.read_text()))
    assert code == 1, err
    by_name = {Path(r["path"]).name: r for r in report["results"]}
    assert by_name["good.mkv"]["success"], by_name
    failed = by_name["spin.mkv"]
    assert failed["reason"] == "probe_timeout", failed
    assert failed["error"].startswith(f"{spinning}: mkvmerge did not finish reading the file's headers within 1 s")
    assert "probe_timeout_seconds" in failed["error"]
    assert default_audio_languages(good) == ["eng"]


def test_a_hanging_probe_is_retried_once_then_fails_for_good(tmp_path, daemon_factory, media_cache):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    pidfile = tmp_path / "spin.pid"
    bin_dir = hanging_tool(tmp_path / "bin", "mkvmerge", "spin.mkv", pidfile)
    daemon = daemon_factory(
        {
            "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
            "processing": {"probe_timeout_seconds": 1.0, "max_attempts": 5, "workers": 1},
        },
        extra_env={"PATH": path_with(bin_dir)},
    )
    source = media_cache("remux.mkv", NEEDS_REMUX)
    spinning = Path(shutil.copyfile(source, inbox / "spin.mkv"))
    try:
        failed = daemon.wait_for("file_failed", path=str(spinning), timeout=90)[0]
        assert process_ended(int(pidfile.read_text())), "the hung probe was not killed"
    finally:
        if pidfile.exists():
            kill_if_running(int(pidfile.read_text()))
    assert failed["reason"] == "probe_timeout"
    retries = daemon.named("file_retry", path=str(spinning))
    assert [r["reason"] for r in retries] == ["probe_timeout"]  # one retry, not max_attempts - 1
    record = file_record(tmp_path / "vpod.db", spinning)
    assert (record.state, record.reason, record.permanent) == ("failed", "probe_timeout", True)  # waits for a change or `vpod retry`
    # the only worker is free again: the next file is processed
    good = Path(shutil.copyfile(source, inbox / "good.mkv"))
    daemon.wait_for("file_processed", path=str(good))
    assert default_audio_languages(good) == ["eng"]
    assert daemon.stop() == 0


# -- remuxes: a limit that grows with the file's size -------------------------------------


def test_a_remux_limit_is_a_base_plus_seconds_per_gib(tmp_path, env):
    """A remux that takes 2 s (a stand-in sleeps, then runs the real mkvmerge) fails under a
    1 s limit, and succeeds when the same 1 s base grows with the file's size."""
    source = make_media(
        tmp_path / "src" / "big.mkv", NEEDS_REMUX, duration=10, video_size="320x240", video_source="testsrc2"
    )
    size = source.stat().st_size
    generous = ToolLimits(probe_seconds=60, base_seconds=1, seconds_per_gib=86400)
    assert generous.for_size(size) > 10, size  # the file is big enough for a margin
    bin_dir = slow_tool(tmp_path / "bin", "mkvmerge", 2.0, only_with="--output")

    def remux_with(folder: str, per_gib: float) -> tuple[Path, int, dict]:
        (tmp_path / folder).mkdir()
        movie = Path(shutil.copyfile(source, tmp_path / folder / "movie.mkv"))
        limits = {"tool_timeout_seconds": 1.0, "tool_timeout_seconds_per_gib": per_gib}
        code, report, err = process([movie.parent], config=config_file(tmp_path, processing=limits), env=env,
                                    path=path_with(bin_dir))  # fmt: skip
        assert code in (0, 1), err
        return movie, code, report["results"][0]

    stuck, code, result = remux_with("fixed", 0)
    assert code == 1 and result["reason"] == "timeout", result
    assert "mkvmerge did not finish within 1 s and was killed (the limit: [processing] tool_timeout_seconds + " \
        "tool_timeout_seconds_per_gib × the file's size)" in result["error"], result
    assert default_audio_languages(stuck) == ["jpn"] and [p.name for p in stuck.parent.iterdir()] == ["movie.mkv"]

    done, code, result = remux_with("scaled", 86400)
    assert code == 0 and result["success"], result
    assert [t["language"] for t in mkvmerge_tracks(done) if t["type"] == "audio"] == ["eng", "jpn"]


def test_an_encode_timeout_names_its_keys_and_reads_as_a_duration(tmp_path, env):
    """T18C finding 10: an encode killed at its limit said "within 1.33333 s" and named no
    key. Now the limit reads "1.2 s" (base 1 s + 60 s per hour × 10 s) and the message
    names the keys that set it. A stand-in ffmpeg sleeps 3 s before a libx265 encode."""
    source = make_media(tmp_path / "src" / "film.mkv", NEEDS_REMUX, duration=10)
    bin_dir = slow_tool(tmp_path / "bin", "ffmpeg", 3.0, only_with="libx265")
    limits = {"tool_timeout_seconds": 1.0, "transcode_timeout_seconds_per_hour": 60.0}
    config = config_file(tmp_path, processing=limits, policy={"video_codec": "hevc"})
    code, report, err = process([source], config=config, env=env, path=path_with(bin_dir))
    result = report["results"][0]
    assert code == 1 and result["reason"] == "timeout", (result, err)
    assert ": ffmpeg did not finish within 1.2 s and was killed (the limit: [processing] tool_timeout_seconds " \
        "+ transcode_timeout_seconds_per_hour × the file's duration)" in result["error"], result
    assert [p.name for p in source.parent.iterdir()] == ["film.mkv"]  # no temp file left
