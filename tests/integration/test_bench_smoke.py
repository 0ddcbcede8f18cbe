"""The benchmark suite itself works (toy sizes): the README's `contrib/dev.sh bench` must not rot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("Overhead", "Remux: CPU per remuxed file", "Scaling", "Latency", "Idle cost", "Burst and memory",
            "Catch-up scan", "Database pool", "Several nodes", "Start-up", "Web page", "Transcode")


def test_smoke_run_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, str(REPO / "contrib" / "bench" / "run.py"), "--smoke", "--output", str(output),
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = output.read_text()
    for title in SECTIONS:
        assert title in text, title
    assert "FAILED" not in text
    for goal in ("≤ 1.10", "≤ 1.25", "< 0.1", "< 150", "≤ 3", "| 0 |", "≤ 1.02"):
        assert goal in text, goal
    assert "not judged at smoke size" in text
    tables = text.split("## Profiling and fixes")[0]
    assert "| met |" not in tables and "missed" not in tables  # toy sizes never claim a goal
    assert "Python" in text and "mkvmerge v" in text and "CPUs" in text
    assert list(tmp_path.iterdir()) == [output]  # the suite removed its trees


def test_machine_info_without_git(tmp_path: Path) -> None:
    """Issue 11 item 19: a machine without git (or a source tarball) still gets its report;
    the commit field says why it is unknown."""
    bin_dir = tmp_path / "bin"  # the tools the report names, but no git
    bin_dir.mkdir()
    for tool in ("ffprobe", "mkvmerge", "mkvpropedit"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    code = "import sys; sys.path.insert(0, sys.argv[1]); import report; print(report.machine_info()['vpod'])"
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "contrib" / "bench")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(bin_dir)},
    )
    assert done.returncode == 0, done.stderr
    assert "(commit unknown: git is not installed)" in done.stdout
