"""A source overwritten while vpod remuxes it is a skip (``source_changed``), not a failure:
vpod's copy is discarded, the user's new content is kept as written and looked at again.

The overwrite happens through a stand-in mkvmerge on PATH (a real ``cp``-like rewrite of
the source, same inode, then the real mkvmerge): the pipeline itself is not mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.daemon import write_config
from support.media import audio, copy_media, make_media, mkvmerge_tracks, video
from support.pipeline import pipeline, sha256  # noqa: F401  (fixture)
from vpod.policy.policy import Policy
from vpod.policy.transcode_keys import VideoCodec

pytestmark = pytest.mark.integration

SETTLE = 0.3
OLD = [video(), audio("jpn", default=True), audio("eng")]
# Other content: longer, other titles (so it is told apart), and it needs a remux too.
NEW = [video(), audio("jpn", default=True, title="new jpn"), audio("eng", title="new eng")]


@pytest.fixture(scope="module")
def new(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the user copies over the source: 4 s instead of 1 s, other titles."""
    return make_media(tmp_path_factory.mktemp("new") / "new.mkv", NEW, duration=4.0)


def overwriting_mkvmerge(tmp_path: Path, new: Path, *, once: Path | None = None, then_wait: float = 0.0,
                         after: bool = False) -> Path:
    """A stand-in mkvmerge that, for a remux, rewrites the source in place with the bytes of
    ``new`` (as ``cp new source`` does: same inode, truncated and rewritten), before the real
    remux runs (``after``: once it has run), then behaves as the real one.

    ``once``: only while that flag file exists (it is removed). ``then_wait``: seconds to
    sleep after the rewrite, so the daemon's settle time runs out while the remux is open.
    """
    folder = tmp_path / "overwritebin"
    folder.mkdir(exist_ok=True)
    script = folder / "mkvmerge"
    flag = repr(str(once)) if once else "None"
    script.write_text(
        f"#!{sys.executable}\nimport os, shutil, subprocess, sys, time\nREAL = {shutil.which('mkvmerge')!r}\n"
        f"args = sys.argv[1:]\nflag = {flag}\n"
        f"if '--output' in args and (flag is None or os.path.exists(flag)):\n"
        f"    if flag:\n        os.unlink(flag)\n"
        f"    source = args[args.index('--track-order') - 1]\n"
        f"    def overwrite():\n"
        f"        with open({str(new)!r}, 'rb') as src, open(source, 'r+b') as dst:\n"
        f"            dst.truncate(0)\n            shutil.copyfileobj(src, dst)\n"
        f"        time.sleep({then_wait})\n"
        f"    if not {after}:\n        overwrite()\n"
        f"    done = subprocess.run([REAL, *args])\n"
        f"    if {after}:\n        overwrite()\n"
        f"    sys.exit(done.returncode)\n"
        f"os.execv(REAL, [REAL, *args])\n"
    )
    script.chmod(0o755)
    return folder


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".vpod-tmp-*"))


def titles(path: Path) -> list[str | None]:
    return [t.get("title") for t in mkvmerge_tracks(path) if t["type"] == "audio"]


def audio_layout(path: Path) -> list[tuple[str, bool]]:
    return [(t["language"], t["default"]) for t in mkvmerge_tracks(path) if t["type"] == "audio"]


def test_overwritten_before_the_remux_reads_it_is_a_skip_not_a_verify_failure(
    tmp_path, pipeline, media_cache, monkeypatch, new  # noqa: F811
):
    path = copy_media(media_cache("old.mkv", OLD), pipeline.library / "hugeB.mkv")
    # The remux reads the new content (other tracks, another duration): verification alone
    # would call that a broken remux.
    monkeypatch.setenv("PATH", f"{overwriting_mkvmerge(tmp_path, new)}:{os.environ['PATH']}")
    out = pipeline.run(path, Policy()).result
    assert (out.success, out.skipped, out.reason, out.permanent) == (False, True, "source_changed", False), out.error
    assert out.error.startswith(f"{path}: ") and "changed while vpod was" in out.error
    assert ".vpod-tmp-" not in out.error.split(";")[0]  # the source is named first, not the temp file
    assert sha256(path) == sha256(new)  # the user's new content, untouched
    assert pipeline.temps_left() == [] and pipeline.store.pending_temps() == []


def test_overwritten_after_the_remux_is_a_skip_before_the_replace(tmp_path, pipeline, media_cache, monkeypatch, new):  # noqa: F811
    path = copy_media(media_cache("old.mkv", OLD), pipeline.library / "film.mkv")
    monkeypatch.setenv("PATH", f"{overwriting_mkvmerge(tmp_path, new, after=True)}:{os.environ['PATH']}")
    out = pipeline.run(path, Policy()).result
    assert (out.skipped, out.reason, out.permanent) == (True, "source_changed", False), out.error
    assert sha256(path) == sha256(new)
    assert pipeline.temps_left() == [] and pipeline.store.pending_temps() == []


def test_a_verify_failure_names_the_source_and_the_temp_file_as_extra(tmp_path, pipeline, media_cache, monkeypatch):  # noqa: F811
    path = copy_media(media_cache("old.mkv", OLD), pipeline.library / "film.mkv")
    digest = sha256(path)
    # An mkvmerge that tags the first audio track German: the source did not change, so
    # this is a real verification failure.
    folder = tmp_path / "dropbin"
    folder.mkdir()
    (folder / "mkvmerge").write_text(
        f"#!{sys.executable}\nimport os, sys\nREAL = {shutil.which('mkvmerge')!r}\nargs = sys.argv[1:]\n"
        "if '--output' in args:\n    args[2:2] = ['--language', '1:ger']\n"
        "os.execv(REAL, [REAL, *args])\n"
    )
    (folder / "mkvmerge").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    out = pipeline.run(path, Policy()).result
    assert out.failed and out.reason == "verify_failed", out.error
    assert out.error.startswith(f"{path}: the remuxed copy .vpod-tmp-"), out.error
    assert "verification failed" in out.error and "ger" in out.error and "(written by mkvmerge)" in out.error
    assert sha256(path) == digest and pipeline.temps_left() == []


def test_the_daemon_skips_then_processes_the_new_content_without_pausing(tmp_path, media_cache, daemon_factory, new):
    inbox = tmp_path / "w2"
    inbox.mkdir()
    flag = tmp_path / "overwrite-once"
    flag.touch()
    # The rewrite settles (SETTLE) while the remux is still open: its events reach the
    # daemon while the file is in progress, which is the case that used to lose them.
    tools = overwriting_mkvmerge(tmp_path, new, once=flag, then_wait=SETTLE * 6)
    daemon = daemon_factory(
        {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}, "policy": {"on_error": "fail"}},
        extra_env={"PATH": f"{tools}:{os.environ['PATH']}"},
    )
    path = copy_media(media_cache("old.mkv", OLD), inbox / "hugeB.mkv")
    skipped = daemon.wait_for("file_skipped", path=str(path))[0]
    assert skipped["reason"] == "source_changed", skipped
    processed = daemon.wait_for("file_processed", path=str(path), timeout=90)[0]
    assert processed["changes"] > 0
    assert daemon.named("processing_paused") == [] and daemon.named("file_failed") == []
    assert daemon.stop() == 0
    assert titles(path) == ["new eng", "new jpn"]  # the new content, processed
    assert audio_layout(path) == [("eng", True), ("jpn", False)]
    assert temps(inbox) == []


def test_vpod_process_reports_the_overwrite_as_a_skip(tmp_path, env, media_cache, new):
    lib = tmp_path / "lib"
    lib.mkdir()
    path = copy_media(media_cache("old.mkv", OLD), lib / "film.mkv")
    config = write_config(tmp_path / "p.toml", {"database": {"path": str(tmp_path / "vpod.db")},
                                                 "policy": {"on_error": "fail"}})
    run_env = {**env, "PATH": f"{overwriting_mkvmerge(tmp_path, new)}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "vpod", "process", "--config", str(config), str(lib)],
                          env=run_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr  # a skip, not a failure: on_error = "fail" does not stop
    assert "1 skipped" in done.stdout and "[source_changed]" in done.stdout, done.stdout
    assert f"Skipped:\n  {path}: changed while vpod was" in done.stdout
    assert sha256(path) == sha256(new) and temps(lib) == []
    data = json.loads(subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", str(lib)],
        env=env, capture_output=True, text=True, timeout=240, check=True,
    ).stdout)
    assert data["results"][0]["success"] and data["results"][0]["changes"] > 0  # the new content, next run
    assert titles(path) == ["new eng", "new jpn"]


def test_a_transcode_says_transcoding_when_the_source_changed(tmp_path, pipeline, media_cache, monkeypatch):  # noqa: F811
    """T18C finding 10: the message said "remuxing" of an encode. A stand-in ffmpeg runs
    the real libx265 encode, then appends a byte to the source (another program writing)."""
    path = copy_media(media_cache("old.mkv", OLD), pipeline.library / "encoded.mkv")
    folder = tmp_path / "appendbin"
    folder.mkdir()
    (folder / "ffmpeg").write_text(
        f"#!{sys.executable}\nimport subprocess, sys\nREAL = {shutil.which('ffmpeg')!r}\nargs = sys.argv[1:]\n"
        "done = subprocess.run([REAL, *args])\n"
        "if 'libx265' in args:\n"
        "    with open(args[args.index('-i') + 1].removeprefix('file:'), 'ab') as source:\n"
        "        source.write(b'x')\n"
        "sys.exit(done.returncode)\n"
    )
    (folder / "ffmpeg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    out = pipeline.run(path, Policy(video_codec=VideoCodec("hevc", ("h264", "mpeg4"), crf=30, preset="ultrafast"))).result
    assert (out.skipped, out.reason) == (True, "source_changed"), (out.error, out.actions)
    assert f"{path}: changed while vpod was transcoding it" in out.error, out.error
    assert pipeline.temps_left() == []
