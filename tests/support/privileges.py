"""Running vpod as another, unprivileged user: tests run as root, which reads, writes and
chowns anything, so permission rules only show for another uid."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

NOBODY = 65534


def drop_privileges_prefix(uid: int = NOBODY, gid: int = NOBODY, groups: tuple[int, ...] = ()) -> list[str]:
    """A command prefix running the rest as ``uid``/``gid`` with only ``groups`` as
    supplementary groups (``setpriv``); empty when the tests do not run as root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root for this test")
    group_args = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", *group_args, "--"]


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder every user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="vpod-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
