"""Scaling: ``vpod process`` with workers 1, 2 and 4 on the same files.

vpod caps its workers at half the CPUs it may use. A row with ``w > 1`` workers runs
only where the machine has at least ``max(4, w)`` CPUs: two workers on two CPUs would
measure contention, not scaling. Where the cap (half the CPUs) is below ``w`` but the
machine has the CPUs, the documented override ``VPOD_CPU_COUNT = 2 × w`` lifts it.
"""

from __future__ import annotations

from pathlib import Path

from common import MediaSource, Row, remove_tree
from overhead import run_process


def cpus_needed(workers: int) -> int:
    """CPUs a scaling row with ``workers`` workers needs (see the module docstring)."""
    return 1 if workers == 1 else max(4, workers)


def cpu_override(workers: int, cpus: int) -> int | None:
    """The ``VPOD_CPU_COUNT`` that lets ``workers`` run uncapped, or ``None`` when no
    override is needed."""
    return None if workers <= cpus // 2 else 2 * workers


def measure(work: Path, media: MediaSource, files: int, workers: int, cpus: int, tag: str) -> float:
    """Wall seconds (start-up included) of one ``vpod process --workers N`` over fresh copies."""
    folder = work / f"{tag}-w{workers}"
    batch = media.copies(folder, files)
    wall, _ = run_process(work, folder, batch, workers=workers, cpu_count=cpu_override(workers, cpus))
    remove_tree(folder)
    return wall


def scaling(work: Path, media: MediaSource, *, cpus: int, files: int, issue4_files: int, runs: int) -> list[Row]:
    """Rows for workers 1, 2, 4 on ``files`` files, and the issue-4 pair (``issue4_files``
    files, workers 1 and 2). Each run measures every worker count back to back."""
    rows: list[Row] = []
    for tag, count, counts in (("scaling", files, (1, 2, 4)), ("issue4", issue4_files, (1, 2))):
        runnable = [w for w in counts if cpus >= cpus_needed(w)]
        walls: dict[int, list[float]] = {w: [] for w in runnable}
        for _ in range(runs):
            for workers in runnable:
                walls[workers].append(measure(work, media, count, workers, cpus, tag))
        label = "issue 4: " if tag == "issue4" else ""
        for workers in counts:
            name = f"{label}{count} files, vpod process --workers {workers}: wall time"
            if workers not in walls:
                rows.append(Row("scaling", name, unit="s", skipped=f"skipped: needs ≥ {cpus_needed(workers)} CPUs"))
                continue
            override = cpu_override(workers, cpus)
            rows.append(Row("scaling", name, walls[workers], "s", note=f"VPOD_CPU_COUNT={override}" if override else ""))
        for workers in counts[1:]:
            name = f"{label}{count} files: speedup of workers {workers} over workers 1 (t1 ÷ t{workers})"
            if workers in walls and 1 in walls:
                ratios = [a / b for a, b in zip(walls[1], walls[workers])]
                rows.append(Row("scaling", name, ratios, "×", note="paired per run"))
            else:
                rows.append(Row("scaling", name, unit="×", skipped=f"skipped: needs ≥ {cpus_needed(workers)} CPUs"))
    return rows
