"""The Matroska top-level walker on hand-built EBML bytes (RFC 8794 / RFC 9559 layouts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.ebml import CUES, TRACKS, UNKNOWN_8, element, header, segment, size_field
from vpod.media.ebml import CLUSTER_ID, SEGMENT_ID, VOID_ID, EbmlError, read_vint, walk

def walked(tmp_path: Path, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / "f.mkv"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        return walk(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "data, value, length",
    [
        (b"\x81", 1, 1),
        (b"\x40\x02", 2, 2),
        (b"\x1f\xff\xff\xff", (1 << 28) - 1, 4),
        (UNKNOWN_8, (1 << 56) - 1, 8),
        (b"\x01\x00\x00\x00\x00\x00\x01\x00", 256, 8),
    ],
)
def test_read_vint(data, value, length):
    assert read_vint(data, 0) == (value, length)


@pytest.mark.parametrize("data", [b"\x00\x81", b"\x40", b""])
def test_read_vint_rejects(data):
    with pytest.raises(EbmlError):
        read_vint(data, 0)


def test_walk_lists_the_segment_children_back_to_back(tmp_path):
    tracks = element(TRACKS, b"t" * 300)
    cluster = element(CLUSTER_ID, b"c" * 1000, 4)
    cues = element(CUES, b"q" * 20, 1)
    void = element(VOID_ID, b"\0" * 5, 1)
    data = header() + segment(tracks, void, cluster, cues)
    layout = walked(tmp_path, data)
    assert layout.file_size == len(data) and layout.segment_size_known
    assert layout.segment.offset == len(header()) and layout.segment.end == len(data)
    assert [(c.name, c.size) for c in layout.children] == [("Tracks", 300), ("Void", 5), ("Cluster", 1000), ("Cues", 20)]
    assert [c.header_size for c in layout.children] == [12, 2, 8, 5]
    assert layout.children[0].offset == layout.segment.data_offset
    assert all(a.end == b.offset for a, b in zip(layout.children, layout.children[1:]))


def test_unknown_size_segment_runs_to_the_end_of_the_file(tmp_path):
    data = header() + segment(element(TRACKS, b"t"), element(CLUSTER_ID, b"c" * 10), unknown=True)
    layout = walked(tmp_path, data)
    assert not layout.segment_size_known
    assert layout.segment.end == len(data) and [c.name for c in layout.children] == ["Tracks", "Cluster"]


def test_void_before_the_segment_and_bytes_after_it(tmp_path):
    data = header() + element(VOID_ID, b"\0" * 3, 1) + segment(element(TRACKS, b"t")) + b"junk"
    layout = walked(tmp_path, data)
    assert layout.segment.end == len(data) - 4
    assert [c.name for c in layout.children] == ["Tracks"]


@pytest.mark.parametrize(
    "data, why",
    [
        (b"RIFF0000AVI LIST", "not an EBML file"),
        (header() + segment(element(TRACKS, b"t"), CLUSTER_ID.to_bytes(4, "big") + UNKNOWN_8 + b"c" * 50),
         "unknown size"),
        (header() + segment(element(TRACKS, b"t" * 100))[:-10], "runs past the end of the file"),
        (header() + SEGMENT_ID.to_bytes(4, "big") + size_field(15) + element(TRACKS, b"t" * 20) + b"x" * 20,
         "runs past the end of the Segment"),
        (header() + element(TRACKS, b"t", 1), "where the Segment should start"),
        (header() + SEGMENT_ID.to_bytes(4, "big") + size_field(3) + b"\x00\x00\x00", "no valid element header"),
        (header(), "no Segment"),
    ],
    ids=["not-ebml", "unknown-size-cluster", "truncated-segment", "child-past-segment", "no-segment-id",
         "garbage-in-segment", "header-only"],
)  # fmt: skip
def test_walk_refuses_what_it_cannot_delimit(tmp_path, data, why):
    with pytest.raises(EbmlError, match=why):
        walked(tmp_path, data)
