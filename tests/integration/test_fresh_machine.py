"""Issue 11 item 19: a test whose set-up the machine forbids is skipped with the reason,
never failed. Here: the inotify-limit test under a read-only /proc/sys, as in a container."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INOTIFY_TEST = "tests/integration/test_watching.py::test_inotify_watch_limit_falls_back_to_polling"


def test_inotify_limit_test_is_skipped_under_a_read_only_proc_sys(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to make /proc/sys read-only in a mount namespace of its own")
    # A container (docker, systemd-nspawn) mounts /proc/sys read-only; a private mount
    # namespace with a read-only bind of it stands in for one.
    readonly = "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec \"$@\""
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", readonly, "sh",
         sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", INOTIFY_TEST,
         "--basetemp", str(tmp_path / "inner")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    if "mount:" in done.stderr:
        pytest.skip(f"cannot make /proc/sys read-only here: {done.stderr.strip()}")
    assert "1 skipped" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    assert "/proc/sys is read-only" in done.stdout
