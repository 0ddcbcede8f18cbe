"""``pytest --shard K/N`` (tests/support/shards.py): every test file runs in exactly one
part, every process computes the same parts, and the parts are about even."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import shards

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_is_in_exactly_one_part_and_the_split_is_the_same_each_time() -> None:
    files = shards.test_files(ROOT)
    assert "tests/unit/test_shards.py" in files
    for parts in (1, 2, 3):
        split = shards.assign(files, parts)
        assert sorted(split) == files
        assert set(split.values()) == set(range(1, parts + 1))
        assert shards.assign(list(reversed(files)), parts) == split


def test_the_parts_are_about_even() -> None:
    files = shards.test_files(ROOT)
    split = shards.assign(files, 2)
    load = [sum(shards.expected_seconds(f) for f, k in split.items() if k == part) for part in (1, 2)]
    biggest = max(shards.expected_seconds(f) for f in files)
    assert abs(load[0] - load[1]) <= biggest, load


def test_every_listed_file_exists() -> None:
    """A renamed or removed slow file is taken off the list, not left to unbalance the parts."""
    assert sorted(set(shards.EXPECTED_SECONDS) - set(shards.test_files(ROOT))) == []


@pytest.mark.parametrize("value", ["0/2", "3/2", "1", "a/b", "1/0", ""])
def test_a_malformed_shard_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        shards.parse(value)


def test_a_shard_collects_only_its_own_files() -> None:
    """Two parts of one selection, through the real hooks of tests/conftest.py: disjoint,
    and together every test of the selection."""
    split = shards.assign(shards.test_files(ROOT), 2)
    small = ["tests/unit/test_pathglob.py", "tests/unit/test_languages.py", "tests/unit/test_cpu.py",
             "tests/unit/test_outcomes.py", "tests/unit/test_targets.py", "tests/unit/test_undo.py"]
    assert {split[f] for f in small} == {1, 2}, "pick files of both parts"

    def collected(*args: str) -> set[str]:
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               *args, *small], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return {line for line in done.stdout.splitlines() if "::" in line}

    one, two, whole = collected("--shard", "1/2"), collected("--shard", "2/2"), collected()
    assert one and two and not one & two
    assert one | two == whole
    assert {line.split("::")[0] for line in one} == {f for f in small if split[f] == 1}
