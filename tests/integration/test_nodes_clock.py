"""Issue 14 acceptance: nodes whose wall clocks are 10 minutes off (libfaketime or, where
libfaketime 0.9.10 breaks Python 3.11's sleeps, a wall-clock shift library: monotonic
clock untouched, support/faketime.py): leases follow the database clock, so no lease ends early and none
sticks; ``vpod status`` warns about the skew.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cluster import Cluster, wait_until
from support.faketime import skewed_env
from support.node_cases import check_invariants, cluster, drop, media, processed_by, wait_running_write, watch
from support.toolwrappers import slow_tools
from support.unique_media import UniqueMedia

pytestmark = pytest.mark.integration
__all__ = ["cluster", "media"]  # fixtures, used by name
SKEW = 600.0


def _skewed(status: dict[str, object]) -> set[str]:
    nodes = status.get("nodes") or []
    assert isinstance(nodes, list)
    return {n["node"] for n in nodes if n.get("clock_skewed")}


def test_clock_skew_neither_ends_nor_sticks_a_lease(cluster: Cluster, media: UniqueMedia, tmp_path: Path) -> None:
    try:  # libfaketime, or where it cannot run Python 3.11 (0.9.10) a wall-clock shift library
        ahead_env, _ = skewed_env(+SKEW, tmp_path / "clock")
        behind_env, _ = skewed_env(-SKEW, tmp_path / "clock")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    slow = slow_tools(tmp_path / "slow", seconds=2.0)  # each remux outlives a heartbeat: leases are renewed
    honest = cluster.add("honest", path_first=slow)
    ahead = cluster.add("ahead", path_first=slow, extra_env=ahead_env)
    behind = cluster.add("behind", path_first=slow, extra_env=behind_env)
    witness = watch(cluster)
    try:
        wait_until(lambda: _skewed(honest.status()) == {"ahead", "behind"}, timeout=60, interval=1.0,
                   what="vpod status to flag both skewed nodes", on_timeout=cluster.tails)
        text = honest.vpod("status").stdout
        assert "warning: the clock of node ahead" in text and "warning: the clock of node behind" in text, text
        dropped = drop(cluster, media, 12)
        # No stuck lease: the node whose clock is 10 min ahead dies mid-file; its lease
        # (database clock) ends after 3 s, not 10 min, and another node finishes the file.
        _, name, _ = wait_running_write(slow, cluster, node=ahead)
        ahead.kill()
        wait_until(lambda: processed_by(cluster).get(name), timeout=120,
                   what=f"{name}, held by the killed fast-clock node, finished by another", on_timeout=cluster.tails)
        check_invariants(cluster, witness, dropped, reader=honest)
        # No early reclaim: no live node ever lost a claim it was renewing.
        for node in (honest, behind):
            for event in ("lease_lost", "lease_self_fenced"):
                assert not node.events(event), f"{node.name}: {node.events(event)}"
        assert set(processed_by(cluster)[name]) <= {"honest", "behind"}
    finally:
        witness.close()
