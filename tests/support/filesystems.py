"""Small real filesystems for tests about free space: a loop-mounted ext4 image, filled
to its last block when a test needs a full disk."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def small_ext4(tmp_path: Path, size_mib: int, name: str = "disk") -> Iterator[Path]:
    """Mount a fresh ``size_mib`` MiB ext4 image (no blocks reserved for root, so root
    fills it like anyone) at ``tmp_path/name``; unmounted on exit. Skips the test when
    this machine does not let it mount one (not root, no loop devices)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop filesystem needs root")
    image, mount = tmp_path / f"{name}.img", tmp_path / name
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(size_mib << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make an ext4 filesystem here: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount a filesystem here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            # Still busy (a daemon the test started has not let go yet): detach it now,
            # the kernel frees it when the last file closes, so no mount outlives the test.
            subprocess.run(["umount", "--lazy", str(mount)], capture_output=True)
        image.unlink(missing_ok=True)


def fill(folder: Path, name: str = ".filler", *, leave: int = 0) -> Path:
    """Write ``folder/name`` until the filesystem is full to its last block (or, with
    ``leave``, until at most ``leave`` bytes are free); returns its path."""
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if leave:
            st = os.statvfs(folder)
            os.write(fd, bytes(max(st.f_bavail * st.f_frsize - leave, 0)))
            os.fsync(fd)
        else:
            for chunk in (bytes(1 << 16), b"\0"):  # whole blocks, then the last partial one
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError:
                    pass
    finally:
        os.close(fd)
    return path


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize
