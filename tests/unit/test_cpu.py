"""The worker cap: half the CPUs available to the process, overridable for containers."""

from __future__ import annotations

import os

import pytest

from vpod.cpu import available_cpus, effective_workers, worker_cap


def test_override(monkeypatch):
    monkeypatch.setenv("VPOD_CPU_COUNT", "8")
    assert available_cpus() == 8
    assert worker_cap() == 4
    assert effective_workers(2) == (2, 4)
    assert effective_workers(6) == (4, 4)


def test_affinity_is_the_default(monkeypatch):
    monkeypatch.delenv("VPOD_CPU_COUNT", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))


def test_never_below_one(monkeypatch):
    monkeypatch.setenv("VPOD_CPU_COUNT", "1")
    assert worker_cap() == 1
    assert effective_workers(3) == (1, 1)


@pytest.mark.parametrize("bad", ["lots", "0", "-4", "1.5"])
def test_bad_override_is_an_error(monkeypatch, bad):
    monkeypatch.setenv("VPOD_CPU_COUNT", bad)
    with pytest.raises(ValueError, match="VPOD_CPU_COUNT must be a positive integer"):
        available_cpus()
