"""Issue 14 acceptance: two nodes watch one folder; 50 files arrive by cp, mv, rsync and a
slow writer: 50 jobs, 50 single claims, nothing half-read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from support.cluster import Cluster
from support.invariants import Dropped, digest
from support.media import ffprobe_streams
from support.node_cases import check_invariants, cluster, media, started_by, watch
from support.unique_media import UniqueMedia

pytestmark = pytest.mark.integration
__all__ = ["cluster", "media"]  # fixtures, used by name


def _slow_write(source: Path, target: Path, *, chunks: int = 5, pause: float = 0.2) -> None:
    """Write ``source`` into ``target`` in ``chunks`` pieces, ``pause`` seconds apart
    (under the settle time: a reader must wait for the end)."""
    data = source.read_bytes()
    step = -(-len(data) // chunks)
    with open(target, "wb") as handle:
        for i in range(0, len(data), step):
            handle.write(data[i:i + step])
            handle.flush()
            time.sleep(pause)


def _packets(path: Path) -> list[tuple[str, int]]:
    """(codec type, packets) of the video and first audio stream, as ffprobe counts them."""
    streams = ffprobe_streams(path, count_packets=True)
    kept = [s for s in streams if s["codec_type"] == "video"][:1] + [s for s in streams if s["codec_type"] == "audio"][:1]
    return [(s["codec_type"], int(s["nb_read_packets"])) for s in kept]


def test_two_watchers_one_folder(cluster: Cluster, media: UniqueMedia) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("needs rsync")
    cluster.add("a", observer="inotify")
    cluster.add("b", observer="inotify")
    witness = watch(cluster)
    try:
        staging = cluster.base / "staging"
        sources = {f"f{i:03d}.mkv": media.write(staging / f"f{i:03d}.mkv") for i in range(50)}
        dropped = Dropped({name: digest(source) for name, source in sources.items()})
        writers: list[threading.Thread] = []
        for i, (name, source) in enumerate(sorted(sources.items())):
            target = cluster.library / name
            how = i % 4
            if how == 0:
                subprocess.run(["cp", str(source), str(target)], check=True)
            elif how == 1:
                outside = cluster.base / "outside" / name
                outside.parent.mkdir(exist_ok=True)
                shutil.copyfile(source, outside)
                subprocess.run(["mv", str(outside), str(target)], check=True)
            elif how == 2:
                subprocess.run(["rsync", "-a", str(source), str(target)], check=True)
            else:
                writer = threading.Thread(target=_slow_write, args=(source, target))
                writer.start()
                writers.append(writer)
        for writer in writers:
            writer.join()
        check_invariants(cluster, witness, dropped)
        # Nothing half-read: every result holds every packet its source had.
        for name, source in sources.items():
            assert _packets(cluster.library / name) == _packets(source), name
        claims = started_by(cluster)
        assert sorted(claims) == dropped.names
        assert {name: sum(c.values()) for name, c in claims.items() if sum(c.values()) != 1} == {}
        jobs = Counter(os.path.basename(e["path"]) for _, e in cluster.events("file_queued"))
        assert jobs == Counter(dropped.names), jobs  # each file queued once, by one node or the other
        counts = cluster.nodes[0].status()["counts"]
        assert sum(counts.values()) == 50, counts  # 50 jobs: one row per file
    finally:
        witness.close()
