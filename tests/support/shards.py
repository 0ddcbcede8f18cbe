"""Split the selected tests into N parts of about equal run time, by file (``--shard K/N``).

``.ci/run`` runs the parts at once, one pytest process each: most of the suite's time
is spent waiting (leases, settle times, daemons starting, a database going away), not
computing, so two processes on two CPUs take about half the time of one. A file stays
whole in one part: its module fixtures are made once and its tests keep their order.

Every test file of the repository gets a part (:func:`assign`, longest first to the
part with the least time so far, on :data:`EXPECTED_SECONDS`: a rough figure per slow
file, from ``--durations``), whatever the command line selects, and a process collects
only the files of its own part (it imports no other test module). A stale figure only
makes the parts less even: every test file is in exactly one part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

SECONDS_PER_UNIT_FILE = 1.0
SECONDS_PER_INTEGRATION_FILE = 10.0

EXPECTED_SECONDS: dict[str, float] = {
    # file (relative to the repository) -> seconds of the whole file alone (pytest
    # --durations, 2 CPUs); files not listed count SECONDS_PER_*_FILE
    "tests/integration/test_nodes_clock.py": 65,
    "tests/integration/test_nodes_crash.py": 90,
    "tests/integration/test_nodes_database.py": 85,
    "tests/integration/test_nodes_watchers.py": 45,
    "tests/integration/test_nodes_library.py": 28,
    "tests/integration/test_nodes_pg.py": 16,
    "tests/integration/test_nodes_harness.py": 12,
    "tests/integration/test_pg_cut_daemon.py": 29,
    "tests/integration/test_bench_smoke.py": 90,
    "tests/integration/test_cli_inspect_plan.py": 45,
    "tests/integration/test_contrib.py": 45,
    "tests/integration/test_bad_input.py": 50,
    "tests/integration/test_crash_recovery.py": 60,
    "tests/integration/test_daemon_policy.py": 35,
    "tests/integration/test_daemon_run.py": 60,
    "tests/integration/test_faults.py": 50,
    "tests/integration/test_original_language.py": 45,
    "tests/integration/test_doctor_database.py": 40,
    "tests/unit/test_pg_unreachable.py": 55,
    "tests/unit/test_store_contract.py": 60,
    "tests/unit/test_pg_store.py": 22,
}


def parse(value: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N), 1 <= K <= N.

    Raises:
        ValueError: not of that form.
    """
    k, sep, n = value.partition("/")
    if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n):
        raise ValueError(f"--shard wants K/N with 1 <= K <= N, got {value!r}")
    return int(k), int(n)


def expected_seconds(path: str) -> float:
    """The expected run time of the test file ``path`` (relative to the repository)."""
    if path in EXPECTED_SECONDS:
        return EXPECTED_SECONDS[path]
    return SECONDS_PER_UNIT_FILE if path.startswith("tests/unit/") else SECONDS_PER_INTEGRATION_FILE


def test_files(root: Path) -> list[str]:
    """Every test file of the repository at ``root`` (relative, ``/``-separated), sorted."""
    return sorted(p.relative_to(root).as_posix() for p in (root / "tests").rglob("test_*.py"))


def assign(files: Iterable[str], parts: int) -> dict[str, int]:
    """Each file's part (1..``parts``): the longest file first, each to the part with
    the least expected time so far (ties: the lowest part; the file name orders files of
    equal time), so every process computes the same split of the same files."""
    listed = sorted(files, key=lambda f: (-expected_seconds(f), f))
    load = {k: 0.0 for k in range(1, parts + 1)}
    out: dict[str, int] = {}
    for path in listed:
        part = min(load, key=lambda k: (load[k], k))
        out[path] = part
        load[part] += expected_seconds(path)
    return out
