"""A file another process still has open for writing is never changed by the pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.media import copy_media, default_audio_languages
from support.pipeline import pipeline, sha256  # noqa: F401  (fixture)
from vpod.policy.policy import Policy

pytestmark = pytest.mark.integration


def test_a_file_open_for_writing_elsewhere_is_left_alone_until_closed(pipeline, jpn_eng_mkv):  # noqa: F811
    path = copy_media(jpn_eng_mkv, pipeline.library / "movie.mkv")
    before = sha256(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys; f = open(sys.argv[1], 'ab'); print('open', flush=True); sys.stdin.read()",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline() == "open\n"
        result = pipeline.run(path, Policy()).result
    finally:
        writer.stdin.close()
        writer.wait(10)
    assert (result.success, result.reason, result.permanent) == (False, "locked", False)
    assert "open for writing" in result.error
    assert sha256(path) == before

    assert pipeline.run(Path(path), Policy()).result.success  # closed now: processed
    assert default_audio_languages(path) == ["eng"]
