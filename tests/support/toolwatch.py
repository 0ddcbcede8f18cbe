"""Watch which node runs a tool on which library file, from ``/proc``, while a case runs.

A node works on a file only through its tools (mkvmerge, mkvpropedit, ffmpeg, ffprobe).
:class:`ToolWatch` samples every process every ``interval`` seconds: a process whose
arguments name a file of the library (through any node's path to it; ffmpeg's
``file:`` prefix removed; vpod's own temp files ignored) is charged to the node whose
``vpod run`` it descends from (parent chain in ``/proc/PID/stat``, proc(5)). Two nodes
charged with one file in one sample is two live claims at once: :attr:`overlaps`.

Sampling can miss a short overlap, never invent one; a test asserts on what it saw.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from vpod.watch.filters import TEMP_PREFIX


@dataclass(frozen=True)
class Overlap:
    """One sample where ``nodes`` each ran a tool on ``name`` (``at``: monotonic seconds)."""

    at: float
    name: str
    nodes: tuple[str, ...]


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` (``/proc/PID/stat`` field 4), ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [os.fsdecode(a) for a in handle.read().split(b"\0") if a]
    except OSError:
        return []


class ToolWatch:
    """Sample tools on library files per node.

    Args:
        roots: returns every path that reaches the library folder (each node's, and the
            real one), read again at each sample (nodes may be added meanwhile).
        nodes: returns ``{pid of a node's vpod run: node name}`` for the nodes running now.
        interval: seconds between samples.

    Attributes:
        overlaps: samples where two or more nodes ran a tool on one file.
        seen: ``{file name: set of nodes that ever ran a tool on it}``.
    """

    def __init__(self, roots: Callable[[], Iterable[Path]], nodes: Callable[[], dict[int, str]], *,
                 interval: float = 0.05) -> None:
        self._root_source = roots
        self._roots: list[str] = []
        self._nodes = nodes
        self._interval = interval
        self.overlaps: list[Overlap] = []
        self.seen: dict[str, set[str]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="toolwatch", daemon=True)
        self._thread.start()

    def _file_of(self, argv: list[str]) -> str | None:
        for arg in argv[1:]:
            if arg.startswith("file:"):
                arg = arg[5:]
            for root in self._roots:
                if arg.startswith(root):
                    name = arg[len(root):]
                    if not os.path.basename(name).startswith(TEMP_PREFIX):
                        return name
        return None

    def _node_of(self, pid: int, nodes: dict[int, str]) -> str | None:
        for _ in range(8):
            parent = parent_pid(pid)
            if parent is None or parent <= 1:
                return None
            if parent in nodes:
                return nodes[parent]
            pid = parent
        return None

    def sample(self) -> dict[str, set[str]]:
        """One sample: ``{file name: nodes running a tool on it now}``."""
        roots = list(self._root_source())
        self._roots = sorted({str(r).rstrip("/") + "/" for r in roots} | {os.path.realpath(r) + "/" for r in roots})
        nodes = self._nodes()
        found: dict[str, set[str]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in nodes:
                continue
            name = self._file_of(_argv(pid))
            if name is None:
                continue
            node = self._node_of(pid, nodes)
            if node is not None:
                found.setdefault(name, set()).add(node)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            found = self.sample()
            now = time.monotonic()
            with self._lock:
                self.samples += 1
                for name, nodes in found.items():
                    self.seen.setdefault(name, set()).update(nodes)
                    if len(nodes) > 1:
                        self.overlaps.append(Overlap(now, name, tuple(sorted(nodes))))

    def overlaps_except(self, allowed: Callable[[Overlap], bool]) -> list[Overlap]:
        """The overlaps ``allowed`` does not excuse (a frozen node's tool, for instance)."""
        with self._lock:
            return [o for o in self.overlaps if not allowed(o)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> "ToolWatch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
