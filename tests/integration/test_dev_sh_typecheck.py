"""Issue 12 item 7: the README's test command (`contrib/dev.sh test`, which `.ci/run`
runs) type-checks vpod/ with mypy before pytest, also when pytest options name a subset,
and a type error stops it before any test runs."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER_TEST = """\
import os
from pathlib import Path


def test_leaves_a_marker():
    Path(os.environ["MARKER"]).write_text("pytest ran")
"""


def _venv_made_by_dev_sh() -> Path:
    """The venv running this test, when ``contrib/dev.sh test`` made it for this very
    pyproject.toml: dev.sh then reuses it without pip (its stamp file matches)."""
    venv = Path(sys.prefix)
    stamp = venv / ".vpod-dev-installed"
    key = f"{hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()} python {platform.python_version()}"
    lines = stamp.read_text().splitlines() if stamp.is_file() else []
    if len(lines) < 2 or lines[0] != key or "test" not in lines[1].split(","):
        pytest.skip("needs the venv that contrib/dev.sh test made for this pyproject.toml (run the suite through it)")
    return venv


def _checkout(tmp_path: Path) -> Path:
    """A copy of what `dev.sh test` reads: dev.sh, pyproject.toml, vpod/ and one test."""
    checkout = tmp_path / "checkout"
    (checkout / "contrib").mkdir(parents=True)
    shutil.copy2(ROOT / "contrib" / "dev.sh", checkout / "contrib" / "dev.sh")
    shutil.copy2(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    shutil.copytree(ROOT / "vpod", checkout / "vpod", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (checkout / "tests").mkdir()
    (checkout / "tests" / "test_marker.py").write_text(MARKER_TEST)
    return checkout


def _dev_sh_test(checkout: Path, venv: Path, marker: Path, *pytest_args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VPOD_", "PIP_", "VIRTUAL_ENV"))}
    # Offline: should dev.sh want to install anything, pip fails instead of changing this venv.
    env.update(VPOD_VENV=str(venv), MARKER=str(marker), PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1")
    return subprocess.run(
        ["bash", str(checkout / "contrib" / "dev.sh"), "test", *pytest_args],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_dev_sh_test_runs_mypy_first_and_stops_at_a_type_error(tmp_path):
    venv = _venv_made_by_dev_sh()
    checkout = _checkout(tmp_path)
    marker = tmp_path / "marker"

    clean = _dev_sh_test(checkout, venv, marker, "tests/test_marker.py", "-q", "-p", "no:cacheprovider")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "installing" not in clean.stderr
    assert "vpod-dev: mypy" in clean.stderr
    assert "Success: no issues found" in clean.stdout  # vpod/ as it is passes strict mypy
    assert marker.read_text() == "pytest ran"

    marker.unlink()
    with open(checkout / "vpod" / "cpu.py", "a") as handle:
        handle.write('\n\ndef _typo() -> int:\n    return "not an int"\n')
    broken = _dev_sh_test(checkout, venv, marker, "tests/test_marker.py", "-q", "-p", "no:cacheprovider")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "vpod/cpu.py" in broken.stdout and "[return-value]" in broken.stdout
    assert "vpod-dev: mypy found type errors" in broken.stderr
    assert not marker.exists()  # pytest never started
