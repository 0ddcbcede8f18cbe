"""Time limits by kind of run (vpod.media.limits), the retry rule for timeouts
(vpod.jobs.attempts_allowed), and the container signatures (vpod.media.signature) on
byte patterns real files do not show in the integration tests."""

from __future__ import annotations

import pytest

from vpod.config import ProcessingConfig, config_from_data
from vpod.errors import ConfigError, MediaError
from vpod.jobs import attempts_allowed
from vpod.media.limits import GIB, ToolLimits
from vpod.media.signature import HEAD_BYTES, check_media_signature, container_family
from vpod.tomlschema import MAX_SECONDS


def test_limits_from_the_config_and_their_defaults():
    limits = ToolLimits.from_config(ProcessingConfig())
    assert limits == ToolLimits(probe_seconds=60.0, base_seconds=600.0, seconds_per_gib=300.0)
    assert limits.for_size(0) == 600.0
    assert limits.for_size(4 * GIB) == 600.0 + 4 * 300.0
    assert limits.for_size(GIB // 2) == 750.0


def test_a_uniform_limit_ignores_the_size_and_a_huge_one_is_capped():
    assert ToolLimits.uniform(120).for_size(50 * GIB) == 120
    assert ToolLimits(probe_seconds=1, base_seconds=1, seconds_per_gib=86400).for_size(10**15) == MAX_SECONDS


@pytest.mark.parametrize(
    "table, key",
    [
        ({"probe_timeout_seconds": 0}, "[processing] probe_timeout_seconds"),
        ({"tool_timeout_seconds_per_gib": -1}, "[processing] tool_timeout_seconds_per_gib"),
        ({"tool_timeout_seconds_per_gib": 100000}, "[processing] tool_timeout_seconds_per_gib"),
    ],
)
def test_bad_limit_values_name_the_key(table, key):
    with pytest.raises(ConfigError) as caught:
        config_from_data({"processing": table}, source=None)
    assert caught.value.key == key


def test_a_timeout_is_retried_once_at_most():
    assert attempts_allowed("probe_timeout", 5) == 2
    assert attempts_allowed("timeout", 5) == 2
    assert attempts_allowed("timeout", 1) == 1
    assert attempts_allowed("killed", 5) == 5
    assert attempts_allowed("locked", 3) == 3


def test_transport_streams_are_found_at_any_phase_and_packet_size():
    for size, prefix in ((188, 0), (192, 4), (204, 0)):
        packets = b"".join(bytes([0x47]) + bytes(size - 1) for _ in range(50))
        head = bytes(prefix) + packets  # M2TS: a 4-byte time code before each sync byte
        assert container_family(head) == "mpegts", size
        assert container_family(b"\x01" * 77 + head) == "mpegts", size  # captured mid-packet
    assert container_family(bytes([0x47]) + bytes(187) * 2) is None  # too few packets to tell


def test_box_chains_are_walked_past_boxes_vpod_does_not_name():
    unknown = (16).to_bytes(4, "big") + b"abcd" + bytes(8)
    moov = (8).to_bytes(4, "big") + b"moov"
    assert container_family(unknown + moov) == "mp4"
    large = (1).to_bytes(4, "big") + b"zzzz" + (24).to_bytes(8, "big") + bytes(8)
    assert container_family(large + (8).to_bytes(4, "big") + b"mdat") == "mp4"
    assert container_family(unknown + unknown) is None


@pytest.mark.parametrize(
    "head, family",
    [
        (b"\x1a\x45\xdf\xa3\x01\x00", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVIX", "avi"),
        (b"RIFF\x00\x00\x00\x00WAVE", None),  # a RIFF, but audio
        (b"\x00\x00\x01\xba\x44", "other"),  # MPEG program stream: the tools decide
        (b"OggS\x00\x02", "other"),
        (b"<html>", None),
    ],
)
def test_other_signatures(head, family):
    assert container_family(head) == family


def test_an_all_zero_head_is_rejected_whatever_the_extension(tmp_path):
    for name in ("a.mkv", "b.xyz"):
        path = tmp_path / name
        path.write_bytes(bytes(HEAD_BYTES) + b"late data")
        with pytest.raises(MediaError) as caught:
            check_media_signature(path)
        assert caught.value.reason == "not_media" and str(path) in str(caught.value)
        assert "65,536 bytes are all zero" in str(caught.value)
