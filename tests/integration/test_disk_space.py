"""A full disk never costs a file (issue 11, items 1 and 2): real loop-mounted ext4
filesystems filled to their last block, the real ``vpod process`` and ``vpod run``, the
real mkvpropedit and mkvmerge.

Before the fix, a header edit of this 32-track ffmpeg-made file on a full disk made
mkvpropedit exit 2 ("Updating the 'Tracks' element failed. Reason: An unknown error
occurred. The file has been modified.") and left a file in which ``mkvmerge -J`` (exit
status 0) found no track at all: the old Tracks element had become a Void and the new
one was never written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.daemon import run_vpod, write_config
from support.filesystems import fill, free_bytes, small_ext4
from support.media import audio, default_audio_languages, make_media, mkvmerge_tracks, subtitle, video
from support.pipeline import make_pipeline
from support.tools import disk_filling_tool, path_with
from vpod.media.ebml import CLUSTER_ID, EbmlError, walk
from vpod.media.undo import ranges_to_save
from vpod.policy.policy import policy_from_table

pytestmark = pytest.mark.integration

LANGUAGES = ["eng", "jpn", "ger", "fre", "spa", "ita", "por", "rus", "chi", "kor", "dut", "swe", "nor", "dan", "fin"]
# ffmpeg writes FlagDefault only where it is 0: making eng the default audio (and jpn not)
# makes the Tracks element 3 bytes longer, too long for its place, so mkvpropedit must
# move it to the end of the file.
MANY_TRACKS = [video(), *(audio(lang, default=lang == "jpn") for lang in LANGUAGES), audio("pol"),
               *(subtitle(lang) for lang in LANGUAGES)]  # fmt: skip
HEADER_ONLY = {"track_order": []}  # the default policy otherwise: eng becomes the default audio
REORDER = [video(), audio("eng", default=True), audio("jpn")]  # audio_languages=["jpn"]: a remux


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def many_tracks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_media(tmp_path_factory.mktemp("many") / "many.mkv", MANY_TRACKS, duration=2)
    assert len(mkvmerge_tracks(path)) == 32
    return path


def process(tmp_path: Path, env: dict[str, str], paths: list[Path], policy: dict[str, Any], **extra_env: str) -> tuple[int, dict[str, Any]]:
    """``vpod process --json PATHS`` with ``policy``; returns (exit status, report)."""
    config = write_config(
        tmp_path / "process.toml",
        {"database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"}, "policy": policy},
    )
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--json", "--config", str(config), *map(str, paths)],
        env={**env, **extra_env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "lost+found")


@pytest.mark.parametrize("backup", [False, True], ids=["edit", "backup-copy"])
def test_header_edit_does_not_start_on_a_full_disk(tmp_path, env, many_tracks, backup):
    """Full to the last block before vpod starts: the edit (or the backup copy before it)
    is refused before anything is written, with the bytes needed and free."""
    with small_ext4(tmp_path, 8) as disk:
        film = Path(shutil.copyfile(many_tracks, disk / "film.mkv"))
        fill(disk)
        assert free_bytes(disk) == 0
        digest = sha256(film)
        status, report = process(tmp_path, env, [film], {**HEADER_ONLY, "backup": backup})
        assert status == 1
        (result,) = report["results"]
        assert result["reason"] == "insufficient_space", result
        error = result["error"]
        assert error.startswith(f"{film}: not enough free space for ")
        assert ("the backup copy film.orig.mkv" if backup else "an in-place header edit") in error
        assert "it needs " in error and f"filesystem of {disk} has 0 bytes (0 bytes) free" in error
        assert sha256(film) == digest
        assert len(mkvmerge_tracks(film)) == 32
        assert names(disk) == [".filler", "film.mkv"]  # no temp file, no backup


def test_disk_filled_during_a_header_edit_cannot_break_it(tmp_path, env, many_tracks):
    """Room at the check, then another program fills the disk to the last block right
    before mkvpropedit runs: the space vpod reserved for the file carries the edit."""
    with small_ext4(tmp_path, 8) as disk:
        film = Path(shutil.copyfile(many_tracks, disk / "film.mkv"))
        tools = disk_filling_tool(tmp_path / "bin", "mkvpropedit", disk / ".filler")
        status, report = process(tmp_path, env, [film], HEADER_ONLY, PATH=path_with(tools))
        assert (status, report["results"][0]["error"]) == (0, None)
        assert report["results"][0]["changes"] == 2
        assert default_audio_languages(film) == ["eng"]
        assert len(mkvmerge_tracks(film)) == 32
        assert (disk / ".filler").stat().st_size > 0  # the disk really was filled
        assert names(disk) == [".filler", "film.mkv"]


@pytest.mark.parametrize("then, reason", [("exit 2", "tool_failed"), ("kill", "killed")])
def test_failed_header_edit_is_undone_byte_for_byte(tmp_path, env, many_tracks, then, reason):
    """The disk is full to the last block and mkvpropedit changed the file (moved its
    Tracks to the end), then failed: the whole file is put back byte for byte, on the
    full disk, with its modification time."""
    with small_ext4(tmp_path, 8) as disk:
        film = Path(shutil.copyfile(many_tracks, disk / "film.mkv"))
        before = film.stat()
        digest = sha256(film)
        tools = disk_filling_tool(tmp_path / "bin", "mkvpropedit", disk / ".filler", then=then)
        status, report = process(tmp_path, env, [film], HEADER_ONLY, PATH=path_with(tools))
        assert status == 1
        (result,) = report["results"]
        assert result["reason"] == reason, result
        assert "the edit was undone: the file is byte for byte as it was before" in result["error"]
        assert free_bytes(disk) < 64 << 10  # still (nearly) full: only the unused reservation came back
        assert sha256(film) == digest
        assert (film.stat().st_size, film.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        assert names(disk) == [".filler", "film.mkv"]


def unknown_size_last_cluster(path: Path) -> None:
    """Give the last Cluster the "unknown" size (same length of size field): players and
    MKVToolNix still read the file, vpod's walker cannot delimit it."""
    fd = os.open(path, os.O_RDWR)
    try:
        cluster = [c for c in walk(fd).children if c.id == CLUSTER_ID][-1]
        length = cluster.header_size - 4
        os.pwrite(fd, ((1 << (8 * length - length + 1)) - 1).to_bytes(length, "big"), cluster.offset + 4)
        with pytest.raises(EbmlError, match="Cluster element of unknown size"):
            walk(fd)
    finally:
        os.close(fd)
    assert len(mkvmerge_tracks(path)) == 32


def test_a_file_that_cannot_be_walked_is_saved_whole(tmp_path, env, many_tracks):
    """A top-level element of unknown size: the undo record is the whole file, and a
    failed edit on a full disk is still undone byte for byte."""
    with small_ext4(tmp_path, 8) as disk:
        film = Path(shutil.copyfile(many_tracks, disk / "film.mkv"))
        unknown_size_last_cluster(film)
        digest = sha256(film)
        tools = disk_filling_tool(tmp_path / "bin", "mkvpropedit", disk / ".filler", then="exit 2")
        status, report = process(tmp_path, env, [film], HEADER_ONLY, PATH=path_with(tools))
        assert status == 1
        assert "the edit was undone" in report["results"][0]["error"]
        assert sha256(film) == digest
        assert names(disk) == [".filler", "film.mkv"]


def test_a_large_undo_record_goes_to_a_temp_file(tmp_path, many_tracks, monkeypatch):
    """Saved headers above the memory limit (here: any) go to a registered temp file
    beside the source; a failed edit is undone from it, and it is removed."""
    monkeypatch.setattr("vpod.media.edit.UNDO_IN_MEMORY_BYTES", 0)
    with small_ext4(tmp_path, 8) as disk:
        pipe = make_pipeline(tmp_path, library=disk)
        film = Path(shutil.copyfile(many_tracks, disk / "film.mkv"))
        digest = sha256(film)
        monkeypatch.setenv("PATH", path_with(disk_filling_tool(tmp_path / "bin", "mkvpropedit", disk / ".filler", then="exit 2")))
        out = pipe.run(film, policy_from_table(HEADER_ONLY, source=None, base_dir=None)).result
        assert out.reason == "tool_failed" and "the edit was undone" in out.error, out.error
        assert sha256(film) == digest
        assert names(disk) == [".filler", "film.mkv"] and pipe.store.pending_temps() == []
        # With room, the same edit succeeds through the temp file too.
        monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])
        (disk / ".filler").unlink()
        out = pipe.run(film, policy_from_table(HEADER_ONLY, source=None, base_dir=None)).result
        assert out.success and out.changes == 2, out.error
        assert default_audio_languages(film) == ["eng"] and names(disk) == ["film.mkv"]


def test_the_undo_record_covers_everything_but_cluster_data(many_tracks):
    """The walk of a real file: its elements lie back to back from the Segment's data
    to the end of the file, and what is saved is all of it except the Clusters' data."""
    fd = os.open(many_tracks, os.O_RDONLY)
    try:
        layout = walk(fd)
    finally:
        os.close(fd)
    assert layout.segment_size_known and layout.segment.end == layout.file_size
    names_found = [c.name for c in layout.children]
    assert {"SeekHead", "Info", "Tracks", "Tags", "Cluster", "Cues"} <= set(names_found)
    offset = layout.segment.data_offset
    for child in layout.children:
        assert child.offset == offset
        offset = child.end
    assert offset == layout.file_size
    saved = sum(length for _, length in ranges_to_save(layout))
    cluster_data = sum(c.size for c in layout.children if c.id == CLUSTER_ID)
    assert saved + cluster_data == layout.file_size


def test_remux_that_cannot_fit_is_not_started(tmp_path, env, media_cache):
    """A remux needs the source's size + 5 % + 64 MiB free: on a 16 MiB disk it is refused
    before a byte is written, with the file, the bytes needed and the bytes free."""
    with small_ext4(tmp_path, 16) as disk:
        film = Path(shutil.copyfile(media_cache("reorder.mkv", REORDER), disk / "film.mkv"))
        digest, free = sha256(film), free_bytes(disk)
        status, report = process(tmp_path, env, [film], {"audio_languages": ["jpn"]})
        assert status == 1
        (result,) = report["results"]
        assert result["reason"] == "insufficient_space", result
        need = (film.stat().st_size * 105 + 99) // 100 + (64 << 20)
        assert f"{film}: not enough free space for the remux" in result["error"]
        assert f"it needs {need} bytes" in result["error"]
        assert f"has {free} bytes" in result["error"]
        assert sha256(film) == digest and free_bytes(disk) == free
        assert names(disk) == ["film.mkv"]


def test_daemon_waits_for_space_then_remuxes(tmp_path, daemon_factory, media_cache, env):
    """With max_attempts = 1, a file that does not fit waits (file_retry, reason
    insufficient_space) instead of failing, and is remuxed once there is room. Meanwhile
    ``vpod status`` says it waits for space and why (a tester saw only "1 queued")."""
    with small_ext4(tmp_path, 80) as disk:
        filler = fill(disk, leave=1 << 20)
        daemon = daemon_factory({
            "watch": {"paths": [str(disk)], "settle_seconds": 0.3},
            "processing": {"max_attempts": 1},
            "policy": {"audio_languages": ["jpn"]},
        })  # fmt: skip
        film = disk / "film.mkv"
        shutil.copyfile(media_cache("reorder.mkv", REORDER), film)
        waiting = daemon.wait_for("file_retry", path=str(film))[0]
        assert waiting["reason"] == "insufficient_space"
        assert waiting["retry_in_seconds"] == 5
        assert f"{film}: not enough free space for the remux" in waiting["error"]
        report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
        [space] = report["waiting_for_space"]
        assert space["path"] == str(film) and space["error"] == waiting["error"]
        assert 0 <= space["retry_in_seconds"] <= 5
        text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
        assert f"waiting for space: {film}, retry in" in text and "it needs" in text, text
        filler.unlink()
        daemon.wait_for("file_processed", path=str(film), timeout=60)
        assert default_audio_languages(film) == ["jpn"]
        assert not daemon.named("file_failed")
        assert daemon.stop() == 0


def test_a_transcode_that_adds_a_track_claims_its_estimated_size_too(tmp_path, env):
    """A small low-bitrate file given a high-bitrate stereo AAC track grows far more than
    5 %: the space check counts the added track (bitrate × duration), so with room for
    the source + 5 % + the margin but not for the track, nothing starts."""
    from vpod.diskspace import WRITE_MARGIN_BYTES, remux_need

    policy = {"audio_languages": ["eng"], "audio_compat": {"codec": "aac", "channels": 2, "bitrate_kbps": 1024}}
    with small_ext4(tmp_path, 96) as disk:
        film = make_media(disk / "film.mkv", [video(), audio("eng", default=True, codec="flac")], duration=30)
        size = film.stat().st_size
        added = 1024 * 1000 // 8 * 30  # 3.84 MB, far more than 5 % of the source
        assert added > size // 20
        fill(disk, leave=remux_need(size) + WRITE_MARGIN_BYTES + added // 2)
        digest = sha256(film)
        status, report = process(tmp_path, env, [film], policy)
        assert status == 1, report
        (result,) = report["results"]
        assert result["reason"] == "insufficient_space", result
        assert "for the audio tracks it adds or converts (bitrate × duration)" in result["error"], result["error"]
        assert sha256(film) == digest and names(disk) == [".filler", "film.mkv"]
