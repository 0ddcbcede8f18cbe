"""Open-for-writing detection: through /proc, and through a read lease."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from vpod.watch.writers import has_writer, open_for_writing


def test_detects_this_process_writing(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    other = tmp_path / "b.mkv"
    other.write_bytes(b"y")
    with open(path, "ab"), open(other, "rb"):
        assert open_for_writing([path, other]) == {path}
    assert open_for_writing([path, other]) == set()


def test_read_write_counts(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    with open(path, "r+b"):
        assert open_for_writing([path]) == {path}


def test_empty_and_missing_proc(tmp_path):
    assert open_for_writing([]) == set()
    assert open_for_writing([tmp_path / "a"], proc=str(tmp_path / "noproc")) == set()


def _other_process_writing(path: Path) -> subprocess.Popen:
    """Another process opens ``path`` for appending and waits for its stdin to close."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; f = open(sys.argv[1], 'ab'); print('open', flush=True); sys.stdin.read()",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline() == "open\n"
    return proc


def test_has_writer_sees_another_process_and_releases_its_lease(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        writer = _other_process_writing(path)
        try:
            assert has_writer(fd, path)
        finally:
            writer.stdin.close()
            writer.wait(10)
        assert not has_writer(fd, path)
        # The lease was released: a writer can open the file at once (a held read lease
        # would make its open wait for the lease-break time, 45 s by default).
        late = _other_process_writing(path)
        late.stdin.close()
        assert late.wait(10) == 0
        assert fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_UNLCK
    finally:
        os.close(fd)


def test_has_writer_sees_this_process_writing(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        with open(path, "r+b"):
            assert has_writer(fd, path)
        assert not has_writer(fd, path)
    finally:
        os.close(fd)


def test_writers_among_asks_the_kernel_and_falls_back(tmp_path):
    from vpod.watch.writers import writers_among

    busy = tmp_path / "busy.mkv"
    idle = tmp_path / "idle.mkv"
    fifo = tmp_path / "pipe.mkv"
    busy.write_bytes(b"x")
    idle.write_bytes(b"y")
    os.mkfifo(fifo)
    with open(busy, "ab"):
        assert writers_among([busy, idle, fifo, tmp_path / "gone.mkv"]) == {busy}
    assert writers_among([busy, idle]) == set()
