"""Run the real per-file pipeline in-process (real tools, a real Store) and check outcomes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.db.store import Store
from vpod.media.probe import probe
from vpod.media.tools import ToolRunner
from vpod.pipeline import FileProcessor, PipelineOptions, PipelineOutput
from vpod.policy.planner import plan
from vpod.policy.policy import Policy
from vpod.tempfiles import SweepResult, sweep_temps
from vpod.watch.filters import TEMP_PREFIX


@dataclass
class Pipeline:
    """A FileProcessor whose root is ``library``; temp files are registered in a real Store."""

    library: Path
    store: Store
    processor: FileProcessor
    runner: ToolRunner

    def run(self, path: Path, policy: Policy) -> PipelineOutput:
        return self.processor.process(path, policy)

    def assert_conforms(self, path: Path, policy: Policy) -> None:
        """A second pass plans nothing (idempotence), with the original language found
        as the pipeline finds it (vpod.original.resolver)."""
        media = probe(path, self.runner)
        again = plan(policy, media, self.processor.original.resolve(media, policy).original)
        assert again.is_empty, again.describe()

    def temps_left(self) -> list[Path]:
        return [p for p in self.library.rglob("*") if p.name.startswith(TEMP_PREFIX)]

    def sweep(self) -> SweepResult:
        return sweep_temps(self.store)


def make_pipeline(
    tmp_path: Path, *, library: Path | None = None, timeout: float = 120, dry_run: bool = False, follow_symlinks: bool = False
) -> Pipeline:
    """The pipeline with its database in ``tmp_path`` and its one root ``library``
    (default ``tmp_path/library``)."""
    library = library or tmp_path / "library"
    library.mkdir(exist_ok=True)
    store = open_store(DatabaseConfig(path=tmp_path / "vpod.db", busy_timeout_seconds=5))
    runner = ToolRunner(timeout)
    options = PipelineOptions(roots=(library,), dry_run=dry_run, follow_symlinks=follow_symlinks)
    processor = FileProcessor(runner, options, store)
    return Pipeline(library, store, processor, runner)


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    """The real pipeline on ``tmp_path/library`` (import this fixture into a test module)."""
    return make_pipeline(tmp_path)


def seeding_link(path: Path, tmp_path: Path) -> Path:
    """A second hard link to ``path`` in ``tmp_path/seeding`` (outside the library), as a
    torrent client keeps seeding a file Sonarr/Radarr hard-linked into the library."""
    seeding = tmp_path / "seeding"
    seeding.mkdir(exist_ok=True)
    other = seeding / path.name
    os.link(path, other)
    return other


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stream_stats(path: Path) -> list[dict[str, Any]]:
    """Per stream, in file order: type, language, packet count and duration from the packets
    themselves (last pts + duration - first pts, seconds), as ffprobe reads them."""
    data = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_packets",
             "-show_entries", "packet=stream_index,pts_time,duration_time", str(path)],
            capture_output=True, check=True,
        ).stdout
    )  # fmt: skip
    spans: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    for packet in data.get("packets", []):
        index = packet["stream_index"]
        counts[index] = counts.get(index, 0) + 1
        if packet.get("pts_time") in (None, "N/A"):
            continue
        start = float(packet["pts_time"])
        end = start + float(packet.get("duration_time") or 0)
        lo_hi = spans.setdefault(index, [start, end])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], start), max(lo_hi[1], end)
    out = []
    for stream in data["streams"]:
        index = stream["index"]
        lo, hi = spans.get(index, [0.0, 0.0])
        out.append(
            {
                "type": stream["codec_type"],
                "language": (stream.get("tags") or {}).get("language", "und"),
                "packets": counts.get(index, 0),
                "duration": round(hi - lo, 3),
            }
        )
    return out
