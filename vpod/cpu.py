"""How many worker threads vpod may use: at most half the CPUs available to it, and by
default exactly that many (a default that fits the machine needs no warning), plus
``max_transcodes`` by default when a policy of the config encodes.

Each worker drives an I/O- and CPU-heavy tool (mkvmerge, ffmpeg); more workers than
half the CPUs only make them fight over disk and cores. The transcode lane is the
exception: its ``max_transcodes`` encoders run at a low priority (nice 10, idle I/O),
and a worker beside each of them is what keeps header edits quick while one encodes, so
a count asked for may exceed half the CPUs by ``max_transcodes``. For the same reason,
when ``workers`` is not set and a policy of the config encodes (:func:`encoding_policies`),
the default is that cap, half the CPUs plus ``max_transcodes``: otherwise, on 2 CPUs, the
one default worker encodes and a flag fix waits for the whole encode. Folder policy
files (``.vpod.toml``) cannot be known at start, so they do not count. The CPUs counted
are those this process may run on (``os.sched_getaffinity``), not all the machine's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from vpod.config import VPOConfig

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
            ``None`` when nobody asked: then half the CPUs are used (plus the lane's
            width when ``encoding`` names a policy), with no warning.
        cap: :func:`worker_cap` of ``cpus`` and the transcode lane's width.
        cpus: :func:`available_cpus`.
        encoding: the config's policies that plan encodes (:func:`encoding_policies`).
    """

    used: int
    requested: int | None
    cap: int
    cpus: int
    encoding: tuple[str, ...] = ()

    @property
    def capped(self) -> bool:
        """The user asked for more workers than the cap allows (worth a warning)."""
        return self.requested is not None and self.requested > self.cap

    def explanation(self) -> str:
        """Where :attr:`used` comes from, in one phrase (logs, ``vpod config check``)."""
        half = f"half of the {self.cpus} CPU(s) available to vpod"
        lane = self.cap - max(1, self.cpus // 2)
        if self.requested is None:
            if self.encoding and lane:
                return (
                    f"not set: {half}, plus max_transcodes ({lane}) as policy {', '.join(self.encoding)} encodes, "
                    "so a worker stays free for header edits and remuxes"
                )
            return f"not set: as many as fit, {half}"
        if self.capped:
            limit = f"{half}, plus max_transcodes ({lane})" if lane else half
            return f"{self.requested} requested, capped at {limit}; set {CPU_COUNT_ENV} if that CPU count is wrong"
        return "as set"


def effective_workers(requested: int | None, lane: int = 0, encoding: tuple[str, ...] = ()) -> WorkerCount:
    """The workers to run for ``requested``, with a transcode lane ``lane`` wide
    (``[processing] max_transcodes``) widening the cap. ``None`` (not set): half the
    CPUs, or the cap (half plus ``lane``) when ``encoding`` names a policy that encodes.

    Raises:
        ValueError: ``$VPOD_CPU_COUNT`` is set but not a positive integer.
    """
    cpus = available_cpus()
    cap = worker_cap(cpus, lane)
    if requested is None:
        used = cap if encoding else worker_cap(cpus)
    else:
        used = min(requested, cap)
    return WorkerCount(used=used, requested=requested, cap=cap, cpus=cpus, encoding=encoding)


def encoding_policies(config: VPOConfig) -> tuple[str, ...]:
    """The names of the config's policies that plan encodes (``"default"`` for
    ``[policy]``, then each ``[policies.NAME]``; :attr:`vpod.policy.policy.Policy.encodes`).
    Folder policy files (``.vpod.toml``) are read per file, so they are not known here."""
    named = (("default", config.policy), *config.policies)
    return tuple(name for name, policy in named if policy.encodes)


def workers_for(config: VPOConfig) -> WorkerCount:
    """:func:`effective_workers` of ``config``'s ``[processing] workers`` (``--workers``
    already applied: :func:`vpod.config.with_overrides`), ``max_transcodes`` and
    :func:`encoding_policies`.

    Raises:
        ValueError: ``$VPOD_CPU_COUNT`` is set but not a positive integer.
    """
    processing = config.processing
    return effective_workers(processing.workers, processing.max_transcodes, encoding_policies(config))
