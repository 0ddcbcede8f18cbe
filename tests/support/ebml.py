"""Hand-built EBML bytes (RFC 8794 variable-size integers; RFC 9559 element IDs) for
tests of the Matroska walker and the undo record."""

from __future__ import annotations

from vpod.media.ebml import EBML_HEADER_ID, SEGMENT_ID

TRACKS, CUES = 0x1654AE6B, 0x1C53BB6B
UNKNOWN_8 = b"\x01\xff\xff\xff\xff\xff\xff\xff"  # an 8-byte size with every value bit set


def size_field(size: int, length: int = 8) -> bytes:
    """``size`` as an EBML variable-size integer of ``length`` bytes."""
    return ((1 << (7 * length)) | size).to_bytes(length, "big")


def element(element_id: int, data: bytes, length: int = 8) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + size_field(len(data), length) + data


def header() -> bytes:
    return element(EBML_HEADER_ID, element(0x4282, b"matroska", 1), 1)


def segment(*children: bytes, unknown: bool = False) -> bytes:
    body = b"".join(children)
    return SEGMENT_ID.to_bytes(4, "big") + (UNKNOWN_8 if unknown else size_field(len(body))) + body
