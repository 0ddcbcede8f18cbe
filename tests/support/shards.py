"""Split the selected tests into N parts of about equal run time, by file (``--shard K/N``).

``contrib/test-parts.sh`` (what ``contrib/dev.sh test`` and ``.ci/run`` run) runs the parts at once, one pytest process each: most of the suite's time
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
    # file (relative to the repository) -> seconds of the whole file run alone (pytest
    # --durations, 2 CPUs shared with other work, December 2026); files not listed
    # count SECONDS_PER_*_FILE
    "tests/integration/test_nodes_database.py": 86,
    "tests/integration/test_nodes_crash.py": 91,
    "tests/integration/test_nodes_clock.py": 68,
    "tests/integration/test_nodes_watchers.py": 46,
    "tests/integration/test_pg_cut_daemon.py": 28,
    "tests/integration/test_nodes_library.py": 27,
    "tests/integration/test_nodes_pg.py": 15,
    "tests/integration/test_status_nodes_pg.py": 12,
    "tests/integration/test_nodes_harness.py": 11,
    "tests/integration/test_bench_smoke.py": 96,
    "tests/integration/test_watching.py": 86,
    "tests/integration/test_crash_recovery.py": 68,
    "tests/integration/test_transcode.py": 40,
    "tests/integration/test_daemon_run.py": 55,
    "tests/integration/test_faults.py": 62,
    "tests/integration/test_bad_input.py": 55,
    "tests/integration/test_contrib.py": 48,
    "tests/integration/test_cli_inspect_plan.py": 40,
    "tests/integration/test_process_cli.py": 42,
    "tests/integration/test_status_retry.py": 42,
    "tests/integration/test_doctor_database.py": 42,
    "tests/integration/test_slow_writers.py": 38,
    "tests/integration/test_daemon_policy.py": 38,
    "tests/integration/test_original_language.py": 32,
    "tests/integration/test_lease_fencing.py": 30,
    "tests/integration/test_policy_keys.py": 29,
    "tests/integration/test_disk_space.py": 24,
    "tests/integration/test_tool_limits.py": 22,
    "tests/integration/test_logs_for_people.py": 20,
    "tests/integration/test_remux_safety.py": 20,
    "tests/integration/test_nested_libraries.py": 20,
    "tests/integration/test_policy_choice.py": 19,
    "tests/integration/test_symlinked_root.py": 19,
    "tests/integration/test_remux_progress.py": 18,
    "tests/integration/test_reload.py": 18,
    "tests/integration/test_temp_sweep.py": 16,
    "tests/integration/test_replaced_file_keeps.py": 15,
    "tests/unit/test_store_contract.py": 65,
    "tests/unit/test_pg_unreachable.py": 50,
    "tests/unit/test_pg_store.py": 25,
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
