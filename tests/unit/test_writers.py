"""Open-for-writing detection through /proc."""

from __future__ import annotations

from vpod.watch.writers import open_for_writing


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
