"""The invariants of issue 14, checked during and after each multi-node case.

* at most one live claim per file: no two nodes run a tool on one file at once
  (:class:`support.toolwatch.ToolWatch`, sampled during the case);
* exactly one replacement per changed file: one vpod temp file renamed onto each
  remuxed file (:class:`support.inotify_count.FolderEvents`, the kernel's count);
* every dropped file ends ``done``, ``skipped`` or ``failed`` with a reason (each
  file's record, read by ``vpod status --json PATHS`` as a node reads it);
* no temp file left (no ``.vpod-tmp-*`` anywhere in the library folder);
* sources intact on every failure path (a file not ``done`` has its original bytes).

:func:`problems` returns every broken rule as a sentence; a test asserts it is empty.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from support.cluster import Node, wait_until
from support.inotify_count import FolderEvents
from support.media import mkvmerge_tracks
from support.toolwatch import Overlap, ToolWatch
from vpod.watch.filters import TEMP_PREFIX

FINAL = ("done", "skipped", "failed")


def digest(path: Path) -> str:
    """SHA-256 of the file's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Dropped:
    """The files a case put into the library: name (relative to the library) → the
    SHA-256 of the bytes dropped."""

    originals: dict[str, str] = field(default_factory=dict)

    def add(self, library: Path, name: str) -> None:
        self.originals[name] = digest(library / name)

    @property
    def names(self) -> list[str]:
        return sorted(self.originals)


def records(node: Node, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each file's record as ``node`` reads it (``vpod status --json`` with its paths)."""
    names = list(names)
    report = node.status([node.library / n for n in names])
    by_path = {f["path"]: f for f in report.get("files", [])}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        path = str(node.library / name)
        out[name] = by_path.get(path) or next(
            (f for f in report.get("files", []) if str(f.get("path", "")).endswith("/" + name)), {"known": False}
        )
    return out


def wait_all_final(node: Node, names: Iterable[str], *, timeout: float = 180,
                   describe: Callable[[], str] | None = None) -> dict[str, dict[str, Any]]:
    """Wait until every file has a final state; returns the records."""
    names = list(names)
    last: dict[str, dict[str, Any]] = {}

    def final() -> dict[str, dict[str, Any]] | None:
        nonlocal last
        last = records(node, names)
        return last if all(r.get("state") in FINAL for r in last.values()) else None

    def why() -> str:
        open_ = {n: r.get("state", "unknown") for n, r in last.items() if r.get("state") not in FINAL}
        return f"not final: {open_}\n" + (describe() if describe else "")

    result: dict[str, dict[str, Any]] = wait_until(final, timeout=timeout, interval=1.0,
                                                   what="every file done, skipped or failed", on_timeout=why)
    return result


def temps_left(library: Path) -> list[Path]:
    """vpod temp files anywhere under ``library``."""
    return [Path(d) / f for d, _, files in os.walk(library) for f in files if f.startswith(TEMP_PREFIX)]


def conforms_remux(path: Path) -> bool:
    """The file holds only English audio, flagged default (:data:`support.unique_media.REMUX_POLICY`)."""
    audio = [t for t in mkvmerge_tracks(path) if t["type"] == "audio"]
    return [(t["language"], t["default"]) for t in audio] == [("eng", True)]


def problems(
    library: Path,
    dropped: Dropped,
    finals: dict[str, dict[str, Any]],
    *,
    folder_events: FolderEvents | None = None,
    toolwatch: ToolWatch | None = None,
    overlap_allowed: Callable[[Overlap], bool] = lambda _: False,
    remuxed: bool = True,
    conforms: Callable[[Path], bool] | None = conforms_remux,
    expect_done: bool = True,
) -> list[str]:
    """Every invariant broken, as sentences (empty: all hold).

    Args:
        library: the real library folder.
        dropped: what the case dropped.
        finals: :func:`wait_all_final`'s records.
        folder_events: the kernel's count of replacements (``remuxed``: each ``done``
            file must have exactly one; else none at all, header-only edits are in place).
        toolwatch: the live-claim sampler of the case.
        overlap_allowed: overlaps the case expects (a frozen node's tool).
        conforms: checks a ``done`` file's content.
        expect_done: every file is valid media the policy changes, so each must end
            ``done`` (``False``: skipped and failed with a reason are fine too).
    """
    found: list[str] = []
    replaced = folder_events.replacements() if folder_events is not None else None
    for name in dropped.names:
        record = finals.get(name, {})
        state = record.get("state")
        path = library / name
        if state not in FINAL:
            found.append(f"{name}: ends {state or 'unknown to the database'}, not done/skipped/failed")
            continue
        if state in ("failed", "skipped") and not record.get("reason"):
            found.append(f"{name}: {state} without a reason: {record}")
        elif state != "done" and expect_done:
            found.append(f"{name}: {state} ({record.get('reason')}: {record.get('error')}), expected done")
        if state != "done":
            if not path.exists() or digest(path) != dropped.originals[name]:
                found.append(f"{name}: {state} ({record.get('reason')}) but its source changed or vanished")
        elif conforms is not None and not conforms(path):
            found.append(f"{name}: done but does not conform to the policy: {mkvmerge_tracks(path)}")
        if replaced is not None:
            count = replaced.get(name, 0)
            expected = 1 if (state == "done" and remuxed) else 0
            if count != expected:
                found.append(f"{name}: {state}, replaced {count} times (expected {expected})")
    if replaced is not None:
        extra = sorted(set(replaced) - set(dropped.originals))
        if extra:
            found.append(f"files replaced that were never dropped: {extra}")
    if folder_events is not None and folder_events.overflowed:
        found.append("the inotify witness overflowed: replacement counts are incomplete")
    left = temps_left(library)
    if left:
        found.append(f"temp files left: {left}")
    if toolwatch is not None:
        for overlap in toolwatch.overlaps_except(overlap_allowed)[:10]:
            found.append(f"two live claims: {overlap.nodes} ran tools on {overlap.name} at once")
    return found
