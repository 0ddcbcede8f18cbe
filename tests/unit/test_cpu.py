"""The worker cap: half the CPUs available to the process, overridable for containers."""

from __future__ import annotations

import os

import pytest

from vpod.cpu import available_cpus, effective_workers, worker_cap


def test_override(monkeypatch):
    monkeypatch.setenv("VPOD_CPU_COUNT", "8")
    assert available_cpus() == 8
    assert worker_cap() == 4
    assert (effective_workers(2).used, effective_workers(2).capped) == (2, False)
    assert (effective_workers(6).used, effective_workers(6).capped) == (4, True)


def test_affinity_is_the_default(monkeypatch):
    monkeypatch.delenv("VPOD_CPU_COUNT", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))


def test_never_below_one(monkeypatch):
    monkeypatch.setenv("VPOD_CPU_COUNT", "1")
    assert worker_cap() == 1
    assert effective_workers(3).used == 1 and effective_workers(3).capped


@pytest.mark.parametrize("bad", ["lots", "0", "-4", "1.5"])
def test_bad_override_is_an_error(monkeypatch, bad):
    monkeypatch.setenv("VPOD_CPU_COUNT", bad)
    with pytest.raises(ValueError, match="VPOD_CPU_COUNT must be a positive integer"):
        available_cpus()


def test_the_transcode_lane_widens_the_cap_of_a_count_asked_for_not_the_default(monkeypatch):
    # workers = 2, max_transcodes = 1 on 2 CPUs: one worker encodes at low priority, the
    # other keeps header edits quick (issue 18); unset stays half the CPUs.
    monkeypatch.setenv("VPOD_CPU_COUNT", "2")
    assert effective_workers(2, lane=1).used == 2 and not effective_workers(2, lane=1).capped
    capped = effective_workers(3, lane=1)
    assert (capped.used, capped.capped) == (2, True)
    assert "plus max_transcodes (1)" in capped.explanation()
    assert effective_workers(None, lane=1).used == 1
    assert effective_workers(2).used == 1


def test_unset_means_the_cap_without_a_warning(monkeypatch):
    monkeypatch.setenv("VPOD_CPU_COUNT", "2")
    workers = effective_workers(None)
    assert (workers.used, workers.requested, workers.capped) == (1, None, False)
    assert "not set" in workers.explanation() and "2 CPU(s)" in workers.explanation()
    assert not effective_workers(1).capped


def test_unset_with_a_policy_that_encodes_keeps_a_worker_free_for_header_edits(monkeypatch):
    # T18C finding 2: on 2 CPUs half is 1, and max_transcodes = 1 would let that one worker
    # encode while a flag fix waits; unset, the default is then half plus max_transcodes.
    from vpod.config import VPOConfig
    from vpod.cpu import encoding_policies, workers_for
    from vpod.policy.policy import policy_from_table

    monkeypatch.setenv("VPOD_CPU_COUNT", "2")
    workers = effective_workers(None, lane=1, encoding=("default",))
    assert (workers.used, workers.capped) == (2, False)
    assert "plus max_transcodes (1) as policy default encodes" in workers.explanation()
    assert effective_workers(1, lane=1, encoding=("default",)).used == 1  # a count set is kept
    monkeypatch.setenv("VPOD_CPU_COUNT", "8")
    assert effective_workers(None, lane=2, encoding=("x",)).used == 6

    def config(**table: object) -> VPOConfig:
        return VPOConfig(policy=policy_from_table(table, source=None, base_dir=None))

    monkeypatch.setenv("VPOD_CPU_COUNT", "2")
    assert encoding_policies(config()) == () and workers_for(config()).used == 1
    assert encoding_policies(config(untagged_language="eng")) == ()
    assert encoding_policies(config(video_codec="keep")) == ()
    assert encoding_policies(config(video_codec={"codec": "hevc"})) == ("default",)
    assert encoding_policies(config(audio_compat={"codec": "aac"})) == ("default",)
    assert encoding_policies(config(audio_convert={"codecs": ["dts"], "to": "eac3"})) == ("default",)
    assert workers_for(config(video_codec={"codec": "hevc"})).used == 2
