"""Content identity: ignores metadata, sees content, reads at most 3 MiB."""

from __future__ import annotations

import os
import shutil

from vpod.fingerprint import SAMPLE_BYTES, StatKey, fingerprint_path


def test_metadata_changes_keep_the_fingerprint(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(os.urandom(10_000))
    before, stat_before = fingerprint_path(path)
    os.utime(path, (1, 1))
    path.chmod(0o600)
    os.link(path, tmp_path / "link.mkv")
    shutil.copy2(path, tmp_path / "copy.mkv")
    assert fingerprint_path(path)[0] == before
    assert fingerprint_path(tmp_path / "link.mkv")[0] == before
    copy_fp, copy_stat = fingerprint_path(tmp_path / "copy.mkv")
    assert copy_fp == before
    assert copy_stat.inode != stat_before.inode


def test_any_sampled_byte_changes_it(tmp_path):
    size = 5 * SAMPLE_BYTES + 123
    data = bytearray(os.urandom(size))
    path = tmp_path / "big.mkv"
    path.write_bytes(data)
    base, _ = fingerprint_path(path)
    for offset in (0, SAMPLE_BYTES - 1, (size - SAMPLE_BYTES) // 2 + 10, size - 1):
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        assert fingerprint_path(path)[0] != base, offset


def test_size_is_part_of_it(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"x" * 100)
    first, _ = fingerprint_path(path)
    path.write_bytes(b"x" * 101)
    assert fingerprint_path(path)[0] != first
    assert first.startswith("100:")


def test_statkey_of(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"abc")
    st = path.stat()
    assert StatKey.of(st) == StatKey(3, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)
