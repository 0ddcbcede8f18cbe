"""The undo record of an in-place edit: what it saves, and that writing it back restores
every byte, the size and the modification time, whatever an edit did to the headers."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from support.ebml import CUES, TRACKS, element, header, segment
from vpod.media.ebml import CLUSTER_ID, VOID_ID, walk
from vpod.media.undo import EditUndo, ranges_to_save

CLUSTER_DATA = bytes(range(256)) * 40


def make_file(path: Path) -> bytes:
    data = header() + segment(element(TRACKS, b"t" * 300), element(CLUSTER_ID, CLUSTER_DATA, 4), element(CUES, b"q" * 20, 1))
    path.write_bytes(data)
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    return data


def test_ranges_are_everything_but_cluster_data(tmp_path):
    path = tmp_path / "f.mkv"
    data = make_file(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        layout = walk(fd)
    finally:
        os.close(fd)
    cluster = next(c for c in layout.children if c.id == CLUSTER_ID)
    assert ranges_to_save(layout) == [(0, cluster.data_offset), (cluster.end, len(data) - cluster.end)]


def vandalize(fd: int, layout, how: str) -> None:  # type: ignore[no-untyped-def]
    """What mkvpropedit may do: void the Tracks, append them again, rewrite the Segment's
    size and a Cluster's header; or drop the last element by truncating."""
    tracks = layout.children[0]
    os.pwrite(fd, element(VOID_ID, b"\0" * (tracks.size + tracks.header_size - 9)), tracks.offset)
    if how == "append":
        os.pwrite(fd, element(TRACKS, b"T" * 400), os.fstat(fd).st_size)
        os.pwrite(fd, b"\x01\x00\x00\x00\x00\x00\xff\xff", layout.segment.offset + 4)
        os.pwrite(fd, b"\x1f\x43\xb6\x75\x20", layout.children[1].offset)
    else:
        os.ftruncate(fd, layout.children[-1].offset)


@pytest.mark.parametrize("how", ["append", "truncate"])
@pytest.mark.parametrize("backing", ["memory", "file"])
def test_restore_puts_back_every_byte_the_size_and_the_mtime(tmp_path, how, backing):
    path = tmp_path / "f.mkv"
    data = make_file(path)
    fd = os.open(path, os.O_RDWR)
    try:
        layout = walk(fd)
        store = io.BytesIO() if backing == "memory" else open(tmp_path / "undo", "w+b")
        with store:
            undo = EditUndo.save(path, fd, ranges_to_save(layout), store)
            assert undo.saved_bytes == len(data) - len(CLUSTER_DATA)
            vandalize(fd, layout, how)
            assert path.read_bytes() != data
            undo.restore()
    finally:
        os.close(fd)
    assert path.stat().st_mtime_ns == 2_000_000_000
    assert path.read_bytes() == data
