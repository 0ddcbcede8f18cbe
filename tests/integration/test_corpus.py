"""Real files from public projects (../shared/corpus, see its README): each either conforms
after processing, or fails with a recorded reason and stays byte-identical.

Skips when the corpus folder is absent. The expected outcome of every file is pinned,
so a change in behaviour on real-world media shows up here.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import CORPUS  # noqa: E402  (../shared/corpus beside the checkout, or $VPOD_CORPUS)
from support.daemon import run_vpod, write_config
from support.pipeline import make_pipeline, sha256

from vpod.policy.policy import policy_from_table

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"sample media folder {CORPUS} is absent"),
]

# File -> reason it must fail for (None: it must end up conforming).
EXPECTED = {
    "SubtitleEdit__subtitleedit__sample_XSUB.avi": "unsupported_stream",  # XSUB: FFmpeg's Matroska muxer rejects it
    "Vanilagy__mediabunny__test-mp4-webvtt.mp4": "unsupported_stream",  # WebVTT in MP4: a data stream to FFmpeg 5.1
    "exiftool__exiftool__Matroska.mkv": "truncated",  # 507 bytes of a 17 MB Segment
    "sindresorhus__file-type__fixture2.mkv": "truncated",  # first 100 KiB of a 112 MB file
    "streamio__streamio-ffmpeg__broken.mp4": "unreadable",  # no moov atom
}
MEDIA = sorted(p.name for p in CORPUS.iterdir() if p.suffix != ".md") if CORPUS.is_dir() else []

POLICY = policy_from_table(
    {
        "audio_languages": ["jpn", "eng"],
        "subtitle_languages": ["eng"],
        "default_subtitle": "preferred",
        "untagged_language": "eng",
        "container": "mkv",
    },
    source=None,
    base_dir=None,
)


@pytest.mark.parametrize("name", MEDIA)
def test_corpus_file_conforms_or_fails_untouched(tmp_path, name):
    pipeline = make_pipeline(tmp_path)
    path = pipeline.library / name
    shutil.copyfile(CORPUS / name, path)
    digest = sha256(path)
    out = pipeline.run(path, POLICY).result
    expected = EXPECTED.get(name)
    if expected is None:
        assert out.success, out.error
        pipeline.assert_conforms(out.final_path, POLICY)
        assert out.final_path.suffix == ".mkv"
    else:
        assert not out.success and out.reason == expected, (out.reason, out.error)
        assert str(path) in out.error
        assert sha256(path) == digest
        assert sorted(p.name for p in pipeline.library.iterdir()) == [name]
    assert pipeline.temps_left() == []


@pytest.mark.parametrize("name", sorted(n for n, why in EXPECTED.items() if why == "unsupported_stream"))
def test_plan_says_what_the_run_does_with_a_stream_matroska_cannot_hold(tmp_path, env, name):
    """XSUB in AVI, WebVTT in MP4: `vpod plan` names the failure the run then reports."""
    path = tmp_path / name
    shutil.copyfile(CORPUS / name, path)
    config = write_config(tmp_path / "c.toml", {"policy": {"container": "mkv"}, "database": {"path": str(tmp_path / "db")}})
    plan = json.loads(run_vpod(["plan", str(path), "--config", str(config), "--json"], env=env).stdout)
    run = json.loads(run_vpod(["process", str(path), "--config", str(config), "--json"], env=env).stdout)
    [result] = run["results"]
    assert plan["error"] is not None and plan["error"]["reason"] == result["reason"] == "unsupported_stream"
    assert plan["error"]["detail"] == result["error"]
