"""How many worker threads vpod may use: at most half the CPUs available to it.

Each worker drives an I/O- and CPU-heavy tool (mkvmerge, ffmpeg); more workers than
half the CPUs only make them fight over disk and cores. The CPUs counted are those
this process may run on (``os.sched_getaffinity``), not all the machine's.
"""

from __future__ import annotations

import os

MAX_WORKERS = 256
"""Upper bound of any worker count, whatever the CPUs: a typo must not ask for 10^20 threads."""

CPU_COUNT_ENV = "VPOD_CPU_COUNT"
"""Overrides the detected CPU count, for containers that report a wrong one."""


def available_cpus() -> int:
    """CPUs this process may use: ``$VPOD_CPU_COUNT`` when set, else
    ``len(os.sched_getaffinity(0))``, else ``os.cpu_count()``.

    Raises:
        ValueError: ``$VPOD_CPU_COUNT`` is set but not a positive integer.
    """
    override = os.environ.get(CPU_COUNT_ENV, "").strip()
    if override:
        if not (override.isdigit() and int(override) > 0):
            raise ValueError(f"{CPU_COUNT_ENV} must be a positive integer, got {override!r}")
        return int(override)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_cap(cpus: int | None = None) -> int:
    """The most workers allowed: half the available CPUs, at least 1."""
    return max(1, (available_cpus() if cpus is None else cpus) // 2)


def effective_workers(requested: int) -> tuple[int, int]:
    """``(used, cap)`` for a requested worker count; ``used < requested`` means capped."""
    cap = worker_cap()
    return min(requested, cap), cap
