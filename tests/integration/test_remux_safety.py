"""The remux path never damages a source: verification before replacing, full disks,
permissions, odd names, streams Matroska cannot hold (real tools, real files; hard links:
test_hardlinks.py)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support.filesystems import small_ext4
from support.media import audio, copy_media, ffprobe_streams, make_media, mkvmerge_tracks, subtitle, video
from support.pipeline import make_pipeline, pipeline, sha256  # noqa: F401  (fixture)
from support.tools import disk_filling_tool, path_with
from vpod.media.probe import probe
from vpod.media.remux import choose_remuxer
from vpod.policy.policy import policy_from_table

pytestmark = pytest.mark.integration

REORDER = [video(), audio("eng", default=True), audio("jpn")]  # audio_languages=["jpn"]: 2 flags (+ reorder)


def policy(**table: object):  # type: ignore[no-untyped-def]
    return policy_from_table(table, source=None, base_dir=None)


def stand_in(tmp_path: Path, name: str, body: str) -> Path:
    """A Python stand-in for tool ``name`` on a folder to put first on PATH."""
    folder = tmp_path / f"bin-{name}"
    folder.mkdir()
    script = folder / name
    script.write_text(f"#!{sys.executable}\nimport os, sys\nREAL = {shutil.which(name)!r}\n{body}\n")
    script.chmod(0o755)
    return folder


def test_mp4_is_removed_only_after_the_new_file_is_verified(tmp_path, pipeline, media_cache, monkeypatch):  # noqa: F811
    path = copy_media(
        media_cache("film.mp4", [video(), audio("eng", default=True), audio("jpn"), subtitle("eng")]),
        pipeline.library / "film.mp4",
    )
    digest = sha256(path)
    # An ffmpeg that writes a plausible file with one wrong language: only verification can tell.
    bad = stand_in(tmp_path, "ffmpeg", "args = sys.argv[1:]\nargs[-1:-1] = ['-metadata:s:1', 'language=ger']\nos.execv(REAL, [REAL, *args])")
    monkeypatch.setenv("PATH", f"{bad}:{os.environ['PATH']}")
    out = pipeline.run(path, policy(audio_languages=["jpn"], container="mkv")).result
    assert out.failed and out.reason == "verify_failed", out.error
    assert "language" in out.error and "ger" in out.error
    assert sha256(path) == digest
    assert not path.with_suffix(".mkv").exists()
    assert pipeline.temps_left() == [] and pipeline.store.pending_temps() == []


@pytest.mark.parametrize(
    "name, tracks, table, tool",
    [
        ("full.mkv", REORDER, {"audio_languages": ["jpn"]}, "mkvmerge"),
        ("full.mp4", [video(), audio("eng"), audio("jpn", default=True), subtitle("eng")], {"container": "mkv"}, "ffmpeg"),
        # An encode (T18C finding 10: the message now says what to do).
        ("encode.mkv", REORDER, {"video_codec": {"codec": "hevc", "preset": "ultrafast"}}, "ffmpeg"),
    ],
)
def test_disk_full_during_a_remux(tmp_path, monkeypatch, name, tracks, table, tool):
    """Room when vpod checks (the source + 5 % + 64 MiB), then another program fills the
    disk to its last block as the remux (or encode) starts: it fails, the source stays,
    and the message says to free space there and how much the write needs."""
    with small_ext4(tmp_path, 80) as disk:
        pipe = make_pipeline(tmp_path, library=disk)
        path = copy_media(make_media(tmp_path / "gen" / name, tracks), disk / name)
        digest = sha256(path)
        media = probe(path, pipe.runner)
        assert choose_remuxer(media) == tool or "video_codec" in table
        filling = disk_filling_tool(tmp_path / "bin", tool, disk / ".filler", when="--output" if tool == "mkvmerge" else None)
        monkeypatch.setenv("PATH", path_with(filling))
        out = pipe.run(path, policy(**table)).result
        assert out.failed and out.reason == "disk_full", out.error
        assert "No space left on device" in out.error and str(path) in out.error
        assert f"{tool} exited with status" in out.error  # the tool's own message is recorded too
        doing = "transcode" if "video_codec" in table else "remux"
        assert f"; free space on the filesystem of {disk} (`df -h {disk}`): the {doing} (the new file" in out.error
        assert "and vpod keeps 64.0 MiB free besides; then run `vpod retry PATH`" in out.error, out.error
        if tool == "mkvmerge":
            assert "drive may be full" in out.error
        assert sha256(path) == digest
        assert sorted(p.name for p in disk.iterdir()) == sorted([".filler", "lost+found", name])  # no temp, no .mkv
        assert pipe.store.pending_temps() == []


def test_remux_keeps_mode_owner_and_group(pipeline, media_cache):  # noqa: F811
    if os.geteuid() != 0:
        pytest.skip("setting another owner needs root")
    mp4 = copy_media(media_cache("perm.mp4", [video(), audio("eng", default=True)]), pipeline.library / "perm.mp4")
    mkv = copy_media(media_cache("reorder.mkv", REORDER), pipeline.library / "perm-reorder.mkv")
    for path, pol in ((mp4, policy(container="mkv")), (mkv, policy(audio_languages=["jpn"]))):
        os.chown(path, 1234, 2345)
        path.chmod(0o640)
        out = pipeline.run(path, pol).result
        assert out.success and out.changes, out.error
        st = out.final_path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1234, 2345), out.final_path


@pytest.mark.parametrize("name", ["-rf --help.mkv", "new\nline.mkv", "it's \"quoted\" $(x).mkv", "@options.mkv"])
@pytest.mark.parametrize("remux", [True, False], ids=["remux", "in-place"])
def test_odd_file_names(pipeline, media_cache, name, remux):  # noqa: F811
    path = copy_media(media_cache("reorder.mkv", REORDER), pipeline.library / name)
    pol = policy(audio_languages=["jpn"], track_order=["video", "audio", "subtitle"] if remux else [])
    out = pipeline.run(path, pol).result
    assert out.success and out.changes, out.error
    assert [t["language"] for t in mkvmerge_tracks(path) if t["default"] and t["type"] == "audio"] == ["jpn"]
    assert sorted(p.name for p in pipeline.library.iterdir()) == [name]


def test_odd_name_through_ffmpeg(pipeline, media_cache):  # noqa: F811
    path = copy_media(media_cache("film.mp4", [video(), audio("eng", default=True), audio("jpn"), subtitle("eng")]),
                      pipeline.library / "-i x\n.mp4")  # fmt: skip
    out = pipeline.run(path, policy(container="mkv")).result
    assert out.success, out.error
    assert out.final_path.name == "-i x\n.mkv" and not path.exists()


def test_container_change_never_overwrites_an_existing_mkv(pipeline, media_cache):  # noqa: F811
    mp4 = copy_media(media_cache("film2.mp4", [video(), audio("eng", default=True)]), pipeline.library / "same.mp4")
    mkv = copy_media(media_cache("reorder.mkv", REORDER), pipeline.library / "same.mkv")
    digests = sha256(mp4), sha256(mkv)
    out = pipeline.run(mp4, policy(container="mkv")).result
    assert out.failed and out.reason == "target_exists" and "same.mkv" in out.error
    assert (sha256(mp4), sha256(mkv)) == digests
    assert pipeline.temps_left() == []


def test_a_transcode_never_overwrites_an_existing_mkv_and_says_transcode(pipeline, media_cache):  # noqa: F811
    mp4 = copy_media(media_cache("film2.mp4", [video(), audio("eng", default=True)]), pipeline.library / "enc.mp4")
    mkv = copy_media(media_cache("reorder.mkv", REORDER), pipeline.library / "enc.mkv")
    digests = sha256(mp4), sha256(mkv)
    out = pipeline.run(mp4, policy(container="mkv", video_codec={"codec": "hevc", "preset": "ultrafast"})).result
    assert out.failed and out.reason == "target_exists", out.error
    assert "cannot transcode into enc.mkv: a file with that name already exists" in out.error, out.error
    assert (sha256(mp4), sha256(mkv)) == digests


def _with_cover(tmp_path: Path, source: Path, name: str) -> Path:
    cover = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.1",
                    "-frames:v", "1", str(cover)], check=True)  # fmt: skip
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-i", str(cover), "-map", "0", "-map", "1",
                    "-c", "copy", "-disposition:v:1", "attached_pic", str(out)], check=True)  # fmt: skip
    return out


@pytest.mark.parametrize("with_mov_text, tool", [(True, "ffmpeg"), (False, "mkvmerge")])
def test_mp4_cover_art_becomes_an_attachment(tmp_path, pipeline, media_cache, with_mov_text, tool):  # noqa: F811
    tracks = [video(), audio("eng", default=True)] + ([subtitle("eng")] if with_mov_text else [])
    source = _with_cover(tmp_path, media_cache(f"cover-{with_mov_text}.mp4", tracks), "cover.mp4")
    path = copy_media(source, pipeline.library / "cover.mp4")
    assert choose_remuxer(probe(path, pipeline.runner)) == tool
    out = pipeline.run(path, policy(container="mkv", default_subtitle="none")).result
    assert out.success, out.error
    data = json.loads(subprocess.run(["mkvmerge", "-J", str(out.final_path)], capture_output=True, check=True).stdout)
    assert [t["type"] for t in data["tracks"]] == ["video", "audio"] + (["subtitles"] if with_mov_text else [])
    assert [(a["content_type"], a["file_name"]) for a in data["attachments"]] == [("image/png", "cover.png")]
    pipeline.assert_conforms(out.final_path, policy(container="mkv", default_subtitle="none"))


def test_avi_audio_mkvmerge_cannot_read_goes_through_ffmpeg(tmp_path, pipeline):  # noqa: F811
    path = pipeline.library / "old.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000", "-map", "0", "-map", "1",
                    "-c:v", "mpeg4", "-c:a", "adpcm_ms", str(path)], check=True)  # fmt: skip
    assert "unsupported" in subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, text=True).stdout
    assert choose_remuxer(probe(path, pipeline.runner)) == "ffmpeg"
    out = pipeline.run(path, policy(container="mkv")).result
    assert out.success, out.error
    assert [s["codec_name"] for s in ffprobe_streams(out.final_path)] == ["mpeg4", "adpcm_ms"]


def test_a_stream_matroska_cannot_hold_fails_the_file_and_keeps_it(pipeline):  # noqa: F811
    path = pipeline.library / "camera.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000", "-map", "0", "-map", "1",
                    "-c:v", "mpeg4", "-c:a", "aac", "-timecode", "00:00:00:00", str(path)], check=True)  # fmt: skip
    digest = sha256(path)
    out = pipeline.run(path, policy(container="mkv")).result
    assert out.failed and out.reason == "unsupported_stream" and out.permanent
    assert "stream 2 (data, codec tmcd)" in out.error and str(path) in out.error
    assert sha256(path) == digest and sorted(p.name for p in pipeline.library.iterdir()) == ["camera.mov"]


def test_temp_files_left_by_a_crash_are_swept(pipeline, media_cache):  # noqa: F811
    path = copy_media(media_cache("reorder.mkv", REORDER), pipeline.library / "a.mkv")
    leftover = pipeline.library / f".vpod-tmp-{uuid.uuid4().hex[:16]}.mkv"
    pipeline.store.register_temp(leftover)
    leftover.write_bytes(b"partial")
    assert pipeline.sweep().removed == [leftover]
    assert not leftover.exists() and path.exists()


def test_a_source_changed_during_the_remux_is_not_replaced(tmp_path, pipeline, media_cache, monkeypatch):  # noqa: F811
    path = copy_media(media_cache("reorder.mkv", REORDER), pipeline.library / "growing.mkv")
    # A downloader still appending while mkvmerge works (the source is the argument before --track-order).
    writer = stand_in(
        tmp_path, "mkvmerge",
        "import subprocess\nargs = sys.argv[1:]\nif '--output' in args:\n"
        "    subprocess.run([REAL, *args], check=True)\n"
        "    open(args[args.index('--track-order') - 1], 'ab').write(b'more bytes')\n"
        "    sys.exit(0)\nos.execv(REAL, [REAL, *args])",
    )
    monkeypatch.setenv("PATH", f"{writer}:{os.environ['PATH']}")
    grown_from = sha256(path)
    out = pipeline.run(path, policy(audio_languages=["jpn"])).result
    assert out.skipped and out.reason == "source_changed" and not out.permanent, out.error
    assert path.read_bytes().endswith(b"more bytes") and sha256(path) != grown_from  # the writer's bytes survive
    assert pipeline.temps_left() == []


def test_a_remux_never_writes_outside_the_roots(tmp_path, media_cache):
    pipe = make_pipeline(tmp_path, follow_symlinks=True)
    outside = copy_media(media_cache("reorder.mkv", REORDER), tmp_path / "elsewhere" / "film.mkv")
    digest = sha256(outside)
    (pipe.library / "film.mkv").symlink_to(outside)
    out = pipe.run(pipe.library / "film.mkv", policy(audio_languages=["jpn"])).result
    assert out.skipped and out.reason == "outside_roots", out.error
    assert sha256(outside) == digest and sorted(p.name for p in outside.parent.iterdir()) == ["film.mkv"]
