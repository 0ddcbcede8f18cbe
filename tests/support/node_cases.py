"""What the multi-node acceptance cases share: the ``cluster`` fixture, dropping files,
finding the node whose tool runs, who processed what.

A test module imports the fixture by name (``from support.node_cases import cluster``),
and asks for ``postgres`` (tests/conftest.py) through it.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
import time
from typing import Any, Callable, Iterator

import pytest
from support.cluster import Cluster, Node, wait_until
from support.inotify_count import FolderEvents
from support.invariants import Dropped, problems, temps_left, wait_all_final
from support.postgres import PostgresServer
from support.toolwatch import Overlap, ToolWatch, parent_pid
from support.toolwrappers import alive, tool_runs
from support.unique_media import REMUX_POLICY, UniqueMedia


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresServer) -> Iterator[Cluster]:
    """A :class:`~support.cluster.Cluster` on a fresh database of the session's server,
    with the remux policy; every node stopped and every mount undone after."""
    group = Cluster(tmp_path / "c", postgres.database(tmp_path), policy=REMUX_POLICY)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def media(tmp_path: Path) -> UniqueMedia:
    """Distinct tiny remux-needing MKVs (:mod:`support.unique_media`)."""
    return UniqueMedia(tmp_path / "media")


class Witness:
    """The independent observers of one case: the inotify count of replacements in the
    real library folder and the ``/proc`` sampler of live claims."""

    def __init__(self, group: Cluster) -> None:
        self.folder_events = FolderEvents(group.library)
        self.toolwatch = ToolWatch(group.roots, group.pids)

    def close(self) -> None:
        self.toolwatch.close()
        self.folder_events.close()


def watch(group: Cluster) -> Witness:
    """Start the witnesses of ``group`` (before its nodes work)."""
    return Witness(group)


def drop(group: Cluster, media: UniqueMedia, count: int, *, prefix: str = "f",
         dropped: Dropped | None = None) -> Dropped:
    """Write ``count`` distinct files into the real library folder (each by a temp name
    then a rename, so no node reads one half-written); returns what was dropped."""
    dropped = dropped if dropped is not None else Dropped()
    for i in range(count):
        name = f"{prefix}{i:03d}.mkv"
        staging = group.base / "staging" / name
        media.write(staging)
        os.replace(staging, group.library / name)
        dropped.add(group.library, name)
    return dropped


def running_writes(folder: Path, group: Cluster) -> list[tuple[int, str, Node]]:
    """(pid, file name, node) of the write runs of ``folder``'s wrappers still running,
    charged to the node they descend from."""
    found = []
    pids = group.pids()
    for pid, args in tool_runs(folder):
        if not alive(pid):
            continue
        parent = parent_pid(pid)
        if parent in pids:
            name = next((Path(a).name for a in args.split() if a.endswith(".mkv") and
                         not Path(a).name.startswith(".")), "?")
            found.append((pid, name, group.node(pids[parent])))
    return found


def wait_running_write(folder: Path, group: Cluster, *, exclude: frozenset[str] | set[str] = frozenset(),
                       node: Node | None = None, timeout: float = 120) -> tuple[int, str, Node]:
    """Wait until one of ``folder``'s wrappers writes a file not in ``exclude`` (for
    ``node``, when given); returns (pid, file name, node)."""
    def found() -> tuple[int, str, Node] | None:
        return next((r for r in running_writes(folder, group)
                     if r[1] not in exclude and (node is None or r[2] is node)), None)

    result: tuple[int, str, Node] = wait_until(found, timeout=timeout, what=f"a running write of {folder}",
                                               interval=0.05, on_timeout=group.tails)
    return result


def processed_by(group: Cluster) -> dict[str, list[str]]:
    """File name → the nodes that logged ``file_processed`` for it (in log order per node)."""
    out: dict[str, list[str]] = {}
    for node, event in group.events("file_processed"):
        out.setdefault(Path(event["path"]).name, []).append(node)
    return out


def wait_processed_by(group: Cluster, name: str, node: str, *, timeout: float = 120) -> None:
    """Wait until ``node`` (and no other) logged ``file_processed`` for ``name``; fail at
    once when a node records a final failure or skip for it instead."""
    def done() -> bool:
        ended = [(n, e) for n, e in (*group.events("file_failed"), *group.events("file_skipped"))
                 if Path(str(e.get("path", ""))).name == name]
        assert not ended, f"{name} ended {ended[0][1]['event']} on {ended[0][0]}: {ended[0][1]}\n{group.tails()}"
        return processed_by(group).get(name) == [node]

    wait_until(done, timeout=timeout, what=f"{name} processed by {node}", on_timeout=group.tails)


def started_by(group: Cluster) -> dict[str, Counter[str]]:
    """File name → how many times each node logged ``file_started`` for it."""
    out: dict[str, Counter[str]] = {}
    for node, event in group.events("file_started"):
        out.setdefault(Path(event["path"]).name, Counter())[node] += 1
    return out


def events_about(node: Node, event: str, name: str) -> list[dict[str, object]]:
    """``node``'s ``event`` lines about file ``name`` (any path to it)."""
    return [e for e in node.events(event) if Path(str(e.get("path", ""))).name == name]


def check_invariants(group: Cluster, witness: Witness, dropped: Dropped, *, reader: Node | None = None,
                     overlap_allowed: Callable[[Overlap], bool] = lambda _: False,
                     timeout: float = 180, expect_done: bool = True) -> dict[str, dict[str, Any]]:
    """Wait until every dropped file is final, then assert every invariant
    (:func:`support.invariants.problems`) and that each file was processed (logged
    ``file_processed``) at most once over all nodes; returns the final records."""
    reader = reader or next(n for n in group.nodes if n.running)
    finals = wait_all_final(reader, dropped.names, timeout=timeout, describe=group.tails)
    # A dead node's temp file is swept by a live node's periodic sweep (once its claim's
    # lease is gone): wait for it, within a deadline; problems() names what is left.
    try:
        wait_until(lambda: not temps_left(group.library), timeout=150, interval=1.0, what="temp files swept")
    except AssertionError:
        pass
    time.sleep(0.5)  # the inotify reader and the sampler catch up (no time is asserted)
    found = problems(group.library, dropped, finals, folder_events=witness.folder_events,
                     toolwatch=witness.toolwatch, overlap_allowed=overlap_allowed, expect_done=expect_done)
    twice = {name: nodes for name, nodes in processed_by(group).items() if len(nodes) > 1}
    if twice:
        found.append(f"processed more than once: {twice}")
    assert not found, "\n".join(found) + "\n" + group.tails()
    return finals
