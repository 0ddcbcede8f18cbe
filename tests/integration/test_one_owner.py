"""One file, one owner (issue 11, item 7): watch roots that overlap are refused at config
load, and a second vpod (another database) does not fight over a library."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.daemon import run_vpod, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def bind_mount(tmp_path):
    """``mount --bind`` a folder elsewhere; skips where mounting is not allowed."""
    made = []

    def mount(source, target):
        target.mkdir(parents=True)
        out = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot bind-mount here (needs root and mount rights): {out.stderr.strip()}")
        made.append(target)
        return target

    yield mount
    for target in reversed(made):
        subprocess.run(["umount", str(target)], check=False)


def start_daemon(config, env):
    return subprocess.run(
        [sys.executable, "-m", "vpod", "run", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_a_folder_and_its_subfolder_are_refused(tmp_path, env):
    library = tmp_path / "library"
    (library / "incoming").mkdir(parents=True)
    config = write_config(
        tmp_path / "c.toml",
        {"watch": {"paths": [str(library), str(library / "incoming")]}, "database": {"path": str(tmp_path / "v.db")}},
    )
    checked = run_vpod(["config", "check", "--config", str(config)], env=env)
    assert checked.returncode == 2, checked.stdout
    assert f"{library / 'incoming'} is inside {library}" in checked.stderr and "[watch] paths" in checked.stderr
    run = start_daemon(config, env)
    assert run.returncode == 2 and f"{library / 'incoming'} is inside {library}" in run.stderr
    assert not (tmp_path / "v.db").exists()  # refused before anything started


def test_the_same_folder_through_a_bind_mount_is_refused(tmp_path, env, bind_mount):
    library = tmp_path / "library"
    library.mkdir()
    other_view = bind_mount(library, tmp_path / "mnt" / "library")
    config = write_config(
        tmp_path / "c.toml",
        {"watch": {"paths": [str(library), str(other_view)]}, "database": {"path": str(tmp_path / "v.db")}},
    )
    run = start_daemon(config, env)
    assert run.returncode == 2, run.stderr
    assert f"{other_view} is the same folder as {library}" in run.stderr
