"""Issue 14 acceptance: a node dies, freezes or its tool hangs mid-file (real PostgreSQL,
real ``vpod run`` nodes reaching one library through their own paths, 3 s leases).

Invariants checked after each case (support/invariants.py): at most one live claim per
file, exactly one replacement per changed file, every file done/skipped/failed with a
reason, no temp file left, sources intact where a file did not end done.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cluster import Cluster, wait_until
from support.node_cases import (
    check_invariants, cluster, drop, events_about, media, processed_by, started_by, wait_processed_by,
    wait_running_write, watch,
)
from support.toolwrappers import alive, hung_tools, slow_tools, tool_runs
from support.unique_media import UniqueMedia

pytestmark = pytest.mark.integration
__all__ = ["cluster", "media"]  # fixtures, used by name


def test_node_killed_mid_file_five_times(cluster: Cluster, media: UniqueMedia, tmp_path: Path) -> None:
    """kill -9 a node while its tool runs, 5 times in a 50-file run spread over 3 nodes:
    another node finishes each such file after the lease, one replacement per file, the
    dead node's temp file swept."""
    slow = slow_tools(tmp_path / "slow", seconds=1.0)
    for name in ("a", "b", "c"):
        cluster.add(name, path_first=slow)
    witness = watch(cluster)
    try:
        dropped = drop(cluster, media, 50)
        killed: dict[str, str] = {}
        for _ in range(5):
            pid, name, node = wait_running_write(slow, cluster, exclude=set(killed))
            node.kill()
            killed[name] = node.name
            wait_until(
                lambda: any(n != node.name for n in started_by(cluster).get(name, {})),
                timeout=120, what=f"another node taking {name} after {node.name} was killed", on_timeout=cluster.tails,
            )
            node.start()
        check_invariants(cluster, witness, dropped)
        done_by = processed_by(cluster)
        for name, dead in killed.items():
            assert len(done_by.get(name, [])) == 1, (name, done_by.get(name))
        assert not [p for p, _ in tool_runs(slow) if alive(p)]
    finally:
        witness.close()


def test_frozen_node_never_replaces_after_losing_its_lease(cluster: Cluster, media: UniqueMedia,
                                                          tmp_path: Path) -> None:
    """SIGSTOP a node mid-file past its lease, let another node take the file, SIGCONT:
    the frozen node's compare-and-set fails, it never replaces the file, lease_lost."""
    slow = slow_tools(tmp_path / "slow", seconds=2.0)
    frozen = cluster.add("frozen", path_first=slow)
    witness = watch(cluster)
    try:
        dropped = drop(cluster, media, 1)
        pid, name, _ = wait_running_write(slow, cluster)
        other = cluster.add("other")  # started once the file is claimed: it can only take it over
        frozen.freeze()
        wait_until(lambda: events_about(other, "file_started", name), timeout=120,
                   what=f"the other node taking {name} once the frozen node's lease ended", on_timeout=cluster.tails)
        frozen.thaw()
        wait_until(
            lambda: events_about(frozen, "lease_lost", name) or events_about(frozen, "lease_self_fenced", name),
            timeout=60, what="the frozen node to find its claim gone", on_timeout=cluster.tails,
        )
        wait_processed_by(cluster, name, "other")
        # Its tool ran while it was frozen: only the other node's and the frozen one's tools overlap.
        check_invariants(cluster, witness, dropped, reader=other,
                         overlap_allowed=lambda o: set(o.nodes) == {"frozen", "other"})
        assert processed_by(cluster)[name] == ["other"]
        assert not events_about(frozen, "file_processed", name)
        assert events_about(frozen, "lease_lost", name), (
            "the frozen node dropped its claim (lease_self_fenced) before its compare-and-set ran: "
            + str(events_about(frozen, "lease_self_fenced", name)))
        assert frozen.running
    finally:
        witness.close()


def test_hung_tool_is_killed_and_another_node_finishes(cluster: Cluster, media: UniqueMedia, tmp_path: Path) -> None:
    """A tool that stops making progress and ignores SIGTERM: its lease is not renewed,
    it is killed at its deadline, another node finishes the file."""
    hung = hung_tools(tmp_path / "hung")
    sick = cluster.add("sick", path_first=hung)
    witness = watch(cluster)
    try:
        dropped = drop(cluster, media, 1)
        pid, name, _ = wait_running_write(hung, cluster)
        healthy = cluster.add("healthy")
        wait_until(lambda: not alive(pid), timeout=60, what="the hung tool killed", on_timeout=cluster.tails)
        wait_until(lambda: events_about(sick, "lease_self_fenced", name), timeout=30,
                   what="lease_self_fenced from the sick node", on_timeout=sick.tail)
        check_invariants(cluster, witness, dropped, reader=healthy)
        assert processed_by(cluster)[name] == ["healthy"]
        assert not [p for p, _ in tool_runs(hung) if alive(p)]  # every hung run was killed
        assert sick.running
    finally:
        witness.close()
