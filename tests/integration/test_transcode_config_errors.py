"""Issue 18, the fresh-user tester's finding 5 and the config-error echoes of finding 10
(T18C report): a transcoding sub-key that would have no effect, and a relative
``vaapi_device``, are refused by the real ``vpod config check`` (exit 2, naming the file,
the key and what to write instead), and values are echoed as written in TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.daemon import run_vpod
from support.media import copy_media, video

pytestmark = pytest.mark.integration


def _check(tmp_path: Path, env: dict[str, str], body: str) -> str:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "vpod.db"}"\n{body}\n', encoding="utf-8")
    out = run_vpod(["config", "check", "--config", str(config)], env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    said = out.stdout + out.stderr
    assert str(config) in said, said
    return said


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[policy]\naudio_convert = { codecs = ["dts"] }',
         ['[policy] audio_convert', 'to is required when codecs is given', 'one of aac, ac3, eac3, opus, flac',
          'audio_convert = "keep"']),
        ('[policy]\naudio_convert = { codecs = ["dts"], to = "keep" }',
         ['[policy] audio_convert', 'codecs: no effect under to = "keep"']),
        ('[policy]\nvideo_codec = { codec = "keep", crf = 20 }',
         ['[policy] video_codec', 'crf: no effect under codec = "keep"', 'leave it out, or name a codec (hevc, av1, h264)']),
        ('[policies.films]\nvideo_codec = { codec = "hevc", convert = [] }',
         ['[policies.films] video_codec', 'convert = [] converts nothing', 'video_codec = "keep"']),
        ('[processing]\nvaapi_device = "relative/dev"',
         ['[processing] vaapi_device', 'expected an absolute path', 'got "relative/dev"']),
        ('[policy]\nvideo_codec = { codec = "hevc", crf = true }', ['crf: expected an integer from 0 to 51, got true']),
        ('[policy]\nmin_saving_percent = 95', ['[policy] min_saving_percent', 'from 0 to 90, got 95\n']),
    ],
)  # fmt: skip
def test_a_key_with_no_effect_or_a_bad_value_is_a_config_error(tmp_path, env, body, words):
    said = _check(tmp_path, env, body)
    for word in words:
        assert word in said, said
    assert "True" not in said and "95.0" not in said and "'" not in said.split("vaapi_device")[-1], said


def test_a_folder_file_with_a_key_of_no_effect_is_refused_too(tmp_path, env, media_cache):
    library = tmp_path / "lib"
    (library / "films").mkdir(parents=True)
    (library / "films" / ".vpod.toml").write_text('video_codec = { codec = "keep", preset = "slow" }\n', encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[watch]\npaths = ["{library}"]\n[database]\npath = "{tmp_path / "vpod.db"}"\n'
        f'[libraries.lib]\nfolder_files = true\n', encoding="utf-8",
    )  # fmt: skip
    film = copy_media(media_cache("v.mkv", [video()]), library / "films" / "x.mkv")
    out = run_vpod(["plan", str(film), "--config", str(config)], env=env)
    said = out.stdout + out.stderr
    assert 'preset: no effect under codec = "keep"' in said and ".vpod.toml" in said, said
