"""How many worker threads vpod may use: at most half the CPUs available to it, and by
default exactly that many (a default that fits the machine needs no warning).

Each worker drives an I/O- and CPU-heavy tool (mkvmerge, ffmpeg); more workers than
half the CPUs only make them fight over disk and cores. The transcode lane is the
exception: its ``max_transcodes`` encoders run at a low priority (nice 10, idle I/O),
and a worker beside each of them is what keeps header edits quick while one encodes, so
a count asked for may exceed half the CPUs by ``max_transcodes``. The CPUs counted are
those this process may run on (``os.sched_getaffinity``), not all the machine's.
"""

from __future__ import annotations

import os
from typing import NamedTuple

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


def worker_cap(cpus: int | None = None, lane: int = 0) -> int:
    """The most workers allowed: half the available CPUs, at least 1, plus ``lane``
    (``[processing] max_transcodes``: the encoders' low-priority workers)."""
    return max(1, (available_cpus() if cpus is None else cpus) // 2) + lane


class WorkerCount(NamedTuple):
    """How many workers run, and why.

    Attributes:
        used: worker threads to run.
        requested: the count asked for (``--workers`` or ``[processing] workers``), or
            ``None`` when nobody asked: then half the CPUs are used, with no warning.
        cap: :func:`worker_cap` of ``cpus`` and the transcode lane's width.
        cpus: :func:`available_cpus`.
    """

    used: int
    requested: int | None
    cap: int
    cpus: int

    @property
    def capped(self) -> bool:
        """The user asked for more workers than the cap allows (worth a warning)."""
        return self.requested is not None and self.requested > self.cap

    def explanation(self) -> str:
        """Where :attr:`used` comes from, in one phrase (logs, ``vpod config check``)."""
        half = f"half of the {self.cpus} CPU(s) available to vpod"
        if self.requested is None:
            return f"not set: as many as fit, {half}"
        if self.capped:
            lane = self.cap - max(1, self.cpus // 2)
            limit = f"{half}, plus max_transcodes ({lane})" if lane else half
            return f"{self.requested} requested, capped at {limit}; set {CPU_COUNT_ENV} if that CPU count is wrong"
        return "as set"


def effective_workers(requested: int | None, lane: int = 0) -> WorkerCount:
    """The workers to run for ``requested`` (``None``: not set, half the CPUs), with a
    transcode lane ``lane`` wide (``[processing] max_transcodes``) widening the cap.

    Raises:
        ValueError: ``$VPOD_CPU_COUNT`` is set but not a positive integer.
    """
    cpus = available_cpus()
    cap = worker_cap(cpus, lane)
    used = worker_cap(cpus) if requested is None else min(requested, cap)
    return WorkerCount(used=used, requested=requested, cap=cap, cpus=cpus)
