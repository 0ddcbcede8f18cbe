"""The rule "unchanged means untouched" (vpod/unchanged.py) on real files and real stat calls."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

from vpod.db.records import Conforming
from vpod.fingerprint import StatKey
from vpod.unchanged import left_conforming, untouched

DIGEST = "digest-now"


def recorded(path: Path) -> StatKey:
    return StatKey.of(os.lstat(path))


def test_a_file_nobody_touched_is_proven_untouched(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"abc")
    key = recorded(path)
    path.read_bytes()  # reading changes no stat field the rule compares
    assert untouched(os.lstat(path), key)
    assert left_conforming(os.lstat(path), Conforming(key, DIGEST), DIGEST)


def test_same_size_other_bytes_and_the_mtime_set_back_is_caught_by_ctime(tmp_path):
    path, reference = tmp_path / "a.mkv", tmp_path / "reference"
    path.write_bytes(b"abc")
    key = recorded(path)
    reference.touch()
    os.utime(reference, ns=(key.mtime_ns, key.mtime_ns))
    with open(path, "r+b") as handle:
        handle.write(b"xyz")
    subprocess.run(["touch", "-r", str(reference), str(path)], check=True)
    st = os.lstat(path)
    assert (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev) == (key.size, key.mtime_ns, key.inode, key.device)
    assert not untouched(st, key)


def test_chmod_and_a_new_hard_link_change_ctime(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"abc")
    key = recorded(path)
    os.chmod(path, 0o600)
    assert not untouched(os.lstat(path), key)
    key = recorded(path)
    os.link(path, tmp_path / "b.mkv")
    assert not untouched(os.lstat(path), key)


def test_a_file_replaced_by_another_is_not_the_recorded_one(tmp_path):
    path, other = tmp_path / "a.mkv", tmp_path / "b.mkv"
    path.write_bytes(b"abc")
    key = recorded(path)
    other.write_bytes(b"abc")
    os.replace(other, path)
    assert not untouched(os.lstat(path), key)


def test_a_record_without_ctime_never_proves_anything(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"abc")
    key = replace(recorded(path), ctime_ns=None)  # as a vpod before schema 9 recorded it
    assert not untouched(os.lstat(path), key)
    assert not left_conforming(os.lstat(path), Conforming(key, DIGEST), DIGEST)


def test_conforming_only_under_the_policy_now_in_force_and_only_a_regular_file(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"abc")
    entry = Conforming(recorded(path), DIGEST)
    assert not left_conforming(os.lstat(path), entry, "another-policy")
    assert not left_conforming(os.lstat(path), entry, None)  # a bad folder policy file: no policy now
    assert not left_conforming(os.lstat(path), None, DIGEST)
    link = tmp_path / "link.mkv"
    link.symlink_to(path)
    assert not left_conforming(os.lstat(link), Conforming(recorded(link), DIGEST), DIGEST)
