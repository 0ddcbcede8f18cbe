"""Issue 14 acceptance: the database goes away under the nodes (real PostgreSQL, real
``vpod run`` nodes, 3 s leases): a network cut between one node and the server (a
proxy that goes silent), and a server restart, short and long.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.cluster import LEASE_SECONDS, Cluster, wait_until
from support.node_cases import (
    check_invariants, cluster, drop, events_about, media, processed_by, wait_processed_by, wait_running_write, watch,
)
from support.postgres import in_ci, running_postgres
from support.tcpproxy import BlackholeProxy
from support.toolwrappers import alive, slow_tools
from support.unique_media import REMUX_POLICY, UniqueMedia

pytestmark = pytest.mark.integration
__all__ = ["cluster", "media"]  # fixtures, used by name


def _heartbeat_after(reader_status: dict[str, object], node: str, since: float) -> bool:
    nodes = reader_status.get("nodes") or []
    assert isinstance(nodes, list)
    return any(n.get("node") == node and n.get("alive") and float(n.get("last_seen") or 0) > since for n in nodes)


def test_database_cut_off_node_self_fences_and_rejoins(cluster: Cluster, media: UniqueMedia, tmp_path: Path) -> None:
    """A TCP proxy between one node and PostgreSQL goes silent: that node self-fences
    before its lease ends, another node takes over; after healing it rejoins, and
    nothing is done twice."""
    slow = slow_tools(tmp_path / "slow", seconds=8.0)
    with BlackholeProxy(cluster.upstream()) as proxy:
        cut = cluster.add("cut", port=proxy.port, path_first=slow)
        witness = watch(cluster)
        try:
            dropped = drop(cluster, media, 1)
            pid, name, _ = wait_running_write(slow, cluster)
            other = cluster.add("other")
            proxy.blackhole()
            wait_until(lambda: events_about(cut, "lease_self_fenced", name), timeout=60,
                       what="the cut-off node to self-fence", on_timeout=cluster.tails)
            wait_until(lambda: not alive(pid), timeout=30, what="the fenced tool to end")
            wait_processed_by(cluster, name, "other")  # taken over by the other node
            # Before its lease ended: the fence came before the other node's claim (one
            # machine, one clock: the log times compare).
            fenced_at = events_about(cut, "lease_self_fenced", name)[0]["timestamp"]
            taken_at = events_about(other, "file_started", name)[0]["timestamp"]
            assert str(fenced_at) < str(taken_at), (fenced_at, taken_at)
            healed_at = time.time()
            proxy.heal()
            wait_until(lambda: _heartbeat_after(other.status(), "cut", healed_at), timeout=90, interval=1.0,
                       what="the healed node's heartbeat", on_timeout=cluster.tails)
            drop(cluster, media, 4, prefix="g", dropped=dropped)
            check_invariants(cluster, witness, dropped, reader=other)
            assert cut.running, cut.tail()
            assert not events_about(cut, "file_processed", name)
        finally:
            witness.close()
            # Stopped while the proxy still forwards: once it is closed, the cut node's
            # clean stop would wait out its database timeouts (about 15 s).
            cluster.close()


def test_database_restart_short_and_long(tmp_path: Path, media: UniqueMedia) -> None:
    """``pg_ctl restart`` mid-file (shorter than a lease): no duplicate work. Then a stop
    longer than a lease: every node stops claiming, and after the start every file is
    done exactly once, no row lost."""
    try:
        server_cm = running_postgres()
        server = server_cm.__enter__()
    except RuntimeError as exc:
        if in_ci():
            raise
        pytest.skip(str(exc))
    group = Cluster(tmp_path / "c", server.database(tmp_path), policy=REMUX_POLICY)
    try:
        slow = slow_tools(tmp_path / "slow", seconds=1.0)
        a = group.add("a", path_first=slow)
        b = group.add("b", path_first=slow)
        witness = watch(group)
        try:
            dropped = drop(group, media, 10)
            wait_running_write(slow, group)
            server.restart()  # short: well under a lease
            wait_until(lambda: len(processed_by(group)) >= 3, timeout=120, what="3 files done after the restart",
                       on_timeout=group.tails)
            wait_running_write(slow, group, exclude=set(processed_by(group)))
            server.stop()  # long: three leases
            time.sleep(1.0)  # claims committed before the stop may still log file_started
            started = len(group.events("file_started"))
            time.sleep(3 * LEASE_SECONDS)
            assert len(group.events("file_started")) == started, "a node claimed a file without its database"
            server.start()
            finals = check_invariants(group, witness, dropped, reader=a, timeout=240)
            assert sorted(finals) == dropped.names
            counts = a.status()["counts"]
            assert sum(counts.values()) == len(dropped.names), counts  # no row lost, none made twice
            assert a.running and b.running, group.tails()
        finally:
            witness.close()
    finally:
        group.close()
        server_cm.__exit__(None, None, None)
