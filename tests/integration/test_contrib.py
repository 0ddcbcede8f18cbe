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
    # A key whose default depends on the machine is shown commented out, with an example.
    unset = {"processing": {"workers"}, "http": {"token_file"}}  # token_file: or token, not both
    for section, keys in expected.items():
        assert set(data[section]) == keys - unset.get(section, set()), section
    for section, keys in unset.items():
        for key in keys:
            assert f"\n# {key} = " in path.read_text(), key
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


def _dev_sh(checkout: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VPOD_", "PIP_", "VIRTUAL_ENV"))}
    if offline:  # no index, no wheel folder, no pip config file: pip cannot install anything
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1")
    return subprocess.run(
        ["bash", str(checkout / "contrib" / "dev.sh"), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_dev_sh_installs_once_and_reuses_the_venv_offline(tmp_path):
    """Issue 11 item 12: the second start needs neither pip nor the network, and says how
    to run vpod commands; a changed pyproject.toml offline fails with a clear message."""
    checkout = tmp_path / "checkout"
    (checkout / "contrib").mkdir(parents=True)
    shutil.copy2(CONTRIB / "dev.sh", checkout / "contrib" / "dev.sh")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, checkout / name)
    shutil.copytree(ROOT / "vpod", checkout / "vpod", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))

    first = _dev_sh(checkout, "vpod", "--version")
    assert first.returncode == 0, first.stderr
    assert "installing vpod" in first.stderr

    again = _dev_sh(checkout, "vpod", "--version", offline=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("vpod, version")
    assert "installing" not in again.stderr
    run_help = _dev_sh(checkout, "run", "--help", offline=True)
    assert run_help.returncode == 0, run_help.stderr
    assert "contrib/dev.sh vpod status" in run_help.stderr and "Usage: vpod run" in run_help.stdout

    with open(checkout / "pyproject.toml", "a") as handle:
        handle.write("# a change: the install must be redone\n")
    changed = _dev_sh(checkout, "vpod", "--version", offline=True)
    assert changed.returncode == 1
    assert "installing vpod" in changed.stderr
    assert "pip could not install vpod's Python packages" in changed.stderr and "PIP_INDEX_URL" in changed.stderr
