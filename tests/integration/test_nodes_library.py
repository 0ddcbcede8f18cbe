"""Issue 14 acceptance: one node's folder of the library is missing (a NAS late to mount)
or holds another library's marker: that node claims nothing there, requeues and
deletes nothing, and the other nodes do the work.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from support.cluster import Cluster, wait_until
from support.invariants import digest, records
from support.node_cases import check_invariants, cluster, drop, media, processed_by, watch
from support.unique_media import UniqueMedia

pytestmark = pytest.mark.integration
__all__ = ["cluster", "media"]  # fixtures, used by name
ID_MARKER = ".vpod-library-id"


def test_library_missing_or_wrong_on_one_node(cluster: Cluster, media: UniqueMedia) -> None:
    a = cluster.add("a")
    b = cluster.add("b")
    late = cluster.add("late", start=False)
    cluster.detach(late)  # its mount point is empty: the share is not mounted yet
    late.start()
    # Even while the library has no file yet, an empty mount point is not the library: a
    # node that trusted it would claim the files the others queue and find none of them.
    wait_until(lambda: late.events("library_mount_unverified"), timeout=30,
               what="the late node to refuse its empty mount point before any file exists", on_timeout=late.tail)
    assert "empty" in late.events("library_mount_unverified")[0]["reason"]
    witness = watch(cluster)
    try:
        dropped = drop(cluster, media, 20)
        finals = check_invariants(cluster, witness, dropped, reader=a)
        wait_until(lambda: late.events("library_mount_unverified"), timeout=60,
                   what="the late node to say its library is not verified", on_timeout=late.tail)
        assert not late.events("file_started"), late.events("file_started")
        assert set(n for nodes in processed_by(cluster).values() for n in nodes) <= {"a", "b"}

        # Its folder now holds another library's marker and copies of the files (other bytes).
        marker = json.loads((cluster.library / ID_MARKER).read_text())
        decoy = cluster.base / "decoy"
        decoy.mkdir()
        for name in dropped.names:
            shutil.copyfile(cluster.library / name, decoy / name)
            with open(decoy / name, "ab") as handle:
                handle.write(b"\0" * 16)  # content the database never saw
        (decoy / ID_MARKER).write_text(json.dumps({**marker, "library_uid": "f" * 32, "name": "elsewhere"}))
        late.stop()
        cluster.attach(late, decoy)
        late.start()
        wait_until(lambda: len(late.events("library_mount_unverified")) >= 2, timeout=60,
                   what="the wrong marker refused", on_timeout=late.tail)

        # Then the share mounts for real: verified, and nothing is queued again.
        late.stop()
        cluster.detach(late)
        cluster.attach(late)
        late.start()
        wait_until(lambda: late.events("library_mount_verified") or late.events("scan_completed"), timeout=60,
                   what="the late node to verify its mount", on_timeout=late.tail)
        time.sleep(2.0)  # a requeue would show now: nothing may change
        assert not late.events("file_started"), late.events("file_started")
        after = records(a, dropped.names)
        assert {n: r["state"] for n, r in after.items()} == {n: r["state"] for n, r in finals.items()}
        assert all(len(nodes) == 1 for nodes in processed_by(cluster).values())
        for name in dropped.names:  # the decoys were never processed or queued
            assert digest(decoy / name) != dropped.originals[name]
        counts = a.status()["counts"]
        assert sum(counts.values()) == len(dropped.names), counts
    finally:
        witness.close()
