"""An in-place header edit is verified by mkvmerge -J alone.

Found on the public corpus (sbraz/pymediainfo sample.mkv): ffprobe cannot read some
Matroska files that mkvmerge reads and mkvpropedit edits correctly. Verifying the edit
with ffprobe too turned a good edit into a "failure" after the file had changed.
A stand-in ffprobe that rejects every file reproduces it with generated media.
"""

from __future__ import annotations

import json
import os

import pytest

from support.daemon import run_vpod, write_config
from support.media import default_audio_languages

pytestmark = pytest.mark.integration


def test_header_edit_of_a_file_ffprobe_cannot_read(tmp_path, env, jpn_eng_mkv):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ffprobe").write_text('#!/bin/sh\necho "Invalid data found when processing input" >&2\nexit 1\n')
    (fake / "ffprobe").chmod(0o755)
    target = tmp_path / "lib" / "movie.mkv"
    target.parent.mkdir()
    target.write_bytes(jpn_eng_mkv.read_bytes())
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "db")}})
    result = run_vpod(
        ["process", str(target), "--json", "--config", str(config)],
        env={**env, "PATH": f"{fake}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [item] = json.loads(result.stdout)["results"]
    assert item["success"] and item["changes"] == 2
    assert default_audio_languages(target) == ["eng"]
