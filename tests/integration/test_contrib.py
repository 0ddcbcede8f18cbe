"""contrib/: example config, shell completion, the Sonarr/Radarr script, install.sh syntax."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

from pathlib import Path

import pytest

from support.daemon import run_vpod
from support.media import default_audio_languages
from vpod.config import _SECTIONS, load_config
from vpod.policy.policy import Policy
from vpod.tomlschema import tomllib

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"


def test_example_config_is_valid_and_sets_every_key():
    path = CONTRIB / "config.example.toml"
    config = load_config(path)  # raises on any bad key or value
    data = tomllib.loads(path.read_text())
    expected = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in _SECTIONS.items()}
    expected["policy"] = {f.name for f in dataclasses.fields(Policy)}
    for section, keys in expected.items():
        assert set(data[section]) == keys, section
    assert "allow_root" in data
    assert config.database.path == Path("/var/lib/vpod/vpod.db")
    assert config.watch.paths == (Path("/var/lib/vpod/inbox"),)
    # every key has a comment line right above it (or above its group)
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith(("#", "[")):
            assert lines[i - 1].startswith("#") or "=" in lines[i - 1], f"no comment before: {line}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_and_options(tmp_path):
    vpod = Path(sys.executable).parent / "vpod"
    if not vpod.exists():
        pytest.skip("the vpod console script is not installed next to this python")
    script = (
        f'source "{CONTRIB}/completion/vpod.bash"\n'
        'COMP_WORDS=(vpod st); COMP_CWORD=1; _vpod_completion vpod; echo "${COMPREPLY[*]}"\n'
        'COMP_WORDS=(vpod retry --a); COMP_CWORD=2; COMPREPLY=(); _vpod_completion vpod; echo "${COMPREPLY[*]}"\n'
    )
    env = {**os.environ, "PATH": f"{vpod.parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    first, second = out.stdout.splitlines()
    assert "status" in first.split()
    assert "--all-failed" in second.split()


def test_completion_scripts_match_click(tmp_path):
    vpod = Path(sys.executable).parent / "vpod"
    if not vpod.exists():
        pytest.skip("the vpod console script is not installed next to this python")
    for shell in ("bash", "zsh", "fish"):
        out = subprocess.run(
            [str(vpod)], env={**os.environ, "_VPOD_COMPLETE": f"{shell}_source"}, capture_output=True, text=True, timeout=30
        )
        assert out.stdout == (CONTRIB / "completion" / f"vpod.{shell}").read_text(), f"regenerate vpod.{shell}"


def test_install_script_parses():
    subprocess.run(["bash", "-n", str(CONTRIB / "install.sh")], check=True)
    subprocess.run(["bash", "-n", str(CONTRIB / "systemd-e2e.sh")], check=True)


def _import_script(env, **extra):
    return subprocess.run(
        [str(CONTRIB / "sonarr-radarr" / "vpod-import.sh")],
        env={**env, "VPOD": str(Path(sys.executable).parent / "vpod"), **extra},
        capture_output=True, text=True, timeout=120,
    )


def test_sonarr_script_events(env, tmp_path):
    assert _import_script(env, sonarr_eventtype="Test").returncode == 0
    assert _import_script(env, sonarr_eventtype="Grab").returncode == 0
    missing = _import_script(env, radarr_eventtype="Download", radarr_moviefile_path=str(tmp_path / "gone.mkv"))
    assert missing.returncode == 1 and "gone.mkv: no such file" in missing.stderr
    unset = _import_script(env, sonarr_eventtype="Download")
    assert unset.returncode == 1 and "sonarr_episodefile_path" in unset.stderr


def test_sonarr_import_normalizes_the_file(env, tmp_path, jpn_eng_mkv):
    if run_vpod(["process", "--help"], env=env).returncode != 0:
        pytest.skip("`vpod process` (issue 4) is not in this build")
    episode = tmp_path / "tv" / "Show - S01E01.mkv"
    episode.parent.mkdir()
    shutil.copyfile(jpn_eng_mkv, episode)
    out = _import_script(env, sonarr_eventtype="Download", sonarr_episodefile_path=str(episode))
    assert out.returncode == 0, out.stderr
    assert default_audio_languages(episode) == ["eng"]
