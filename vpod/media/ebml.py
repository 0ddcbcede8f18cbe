"""The top-level layout of a Matroska file, read from its EBML element headers alone.

A Matroska file is an EBML Header element followed by one Segment element; the Segment's
children (its "top-level elements") are SeekHead, Info, Tracks, Chapters, Attachments,
Tags, Cues, the Clusters that hold the media data, and Void padding (RFC 9559,
section 5.1). Every element starts with its ID and the size of its data, both EBML
variable-size integers (RFC 8794, section 4); a size whose value bits are all 1 means
"unknown size" (RFC 8794, section 6.2).

:func:`walk` reads only those headers (at most 12 bytes per element) and skips each
element's data, so walking a file costs one small read per top-level element, Clusters
included, whatever the file's size. It refuses (:class:`EbmlError`) whatever it cannot
delimit for certain: an unknown-size child of the Segment (the next element can then
only be found by parsing inside it), an element that runs past its parent or the end of
the file, or anything that is not EBML.
"""

from __future__ import annotations

import os
from typing import NamedTuple

EBML_HEADER_ID = 0x1A45DFA3
SEGMENT_ID = 0x18538067
CLUSTER_ID = 0x1F43B675
VOID_ID = 0xEC
SEEK_HEAD_ID = 0x114D9B74

# RFC 9559, section 5.1: the Segment's children; Void and CRC-32 are EBML's own (RFC 8794, 11.3).
NAMES = {
    EBML_HEADER_ID: "EBML",
    SEGMENT_ID: "Segment",
    SEEK_HEAD_ID: "SeekHead",
    0x1549A966: "Info",
    0x1654AE6B: "Tracks",
    0x1043A770: "Chapters",
    0x1941A469: "Attachments",
    0x1254C367: "Tags",
    0x1C53BB6B: "Cues",
    CLUSTER_ID: "Cluster",
    VOID_ID: "Void",
    0xBF: "CRC-32",
}

_MAX_ID_LENGTH = 4  # EBMLMaxIDLength of Matroska (RFC 9559, section 4.2)
_MAX_SIZE_LENGTH = 8  # EBMLMaxSizeLength (RFC 8794, section 11.2.5)
_HEAD_BYTES = _MAX_ID_LENGTH + _MAX_SIZE_LENGTH


class EbmlError(ValueError):
    """The file's element structure cannot be delimited for certain; the message says
    where (byte offset) and why."""


class Element(NamedTuple):
    """One element's header, as found in the file.

    Attributes:
        id: the Element ID with its length marker (``0x1F43B675`` for a Cluster).
        offset: where its ID starts, in bytes from the start of the file.
        header_size: bytes of its ID and size field together.
        size: bytes of its data (after the header); for an unknown-size Segment, the
            bytes up to the end of the file.
    """

    id: int
    offset: int
    header_size: int
    size: int

    @property
    def data_offset(self) -> int:
        """Where its data starts (bytes from the start of the file)."""
        return self.offset + self.header_size

    @property
    def end(self) -> int:
        """The offset just past its data."""
        return self.data_offset + self.size

    @property
    def name(self) -> str:
        """Its name in the Matroska specification, or its ID in hex."""
        return NAMES.get(self.id, f"0x{self.id:X}")


class MatroskaLayout(NamedTuple):
    """What :func:`walk` found.

    Attributes:
        file_size: the file's size in bytes when it was walked.
        segment: the Segment element (``size`` runs to the end of the file when its
            size field says "unknown").
        segment_size_known: False for an unknown-size Segment.
        children: the Segment's children, in file order, back to back from
            ``segment.data_offset`` to ``segment.end``.
    """

    file_size: int
    segment: Element
    segment_size_known: bool
    children: tuple[Element, ...]


def read_vint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode the EBML variable-size integer at ``data[pos:]`` (RFC 8794, section 4).

    Returns ``(value, length)``: ``value`` without its length marker, ``length`` in
    bytes (1 to 8). The caller compares ``value`` with ``(1 << 7 * length) - 1`` to tell
    an unknown size.

    Raises:
        EbmlError: the first byte is 0 (no length marker in 8 bytes) or ``data`` ends
            inside the integer.
    """
    if pos >= len(data):
        raise EbmlError("the data ends where a variable-size integer should start")
    first = data[pos]
    if first == 0:
        raise EbmlError(f"invalid variable-size integer (byte 0x00) at +{pos}")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        raise EbmlError("the data ends inside a variable-size integer")
    value = first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, length


def _head(fd: int, offset: int, limit: int) -> tuple[int, int, int | None]:
    """Read the element header at ``offset`` (which must end before ``limit``);
    returns ``(id, header_size, size)``, ``size`` None when unknown.

    Raises:
        EbmlError: not a valid header, or it runs past ``limit``.
    """
    data = os.pread(fd, min(_HEAD_BYTES, max(limit - offset, 0)), offset)
    try:
        _, id_length = read_vint(data, 0)
        if id_length > _MAX_ID_LENGTH:
            raise EbmlError(f"an Element ID of {id_length} bytes (Matroska allows at most {_MAX_ID_LENGTH})")
        size, size_length = read_vint(data, id_length)
    except EbmlError as exc:
        raise EbmlError(f"byte {offset}: no valid element header: {exc}") from None
    element_id = int.from_bytes(data[:id_length], "big")
    unknown = size == (1 << 7 * size_length) - 1
    return element_id, id_length + size_length, None if unknown else size


def element_at(fd: int, offset: int, limit: int) -> tuple[Element, bool]:
    """The header of the element at ``offset`` of the file open on ``fd``, which must
    start before ``limit``; returns (the element, whether its size is known). An
    unknown size is given as the bytes up to ``limit``.

    Raises:
        EbmlError: no valid element header there, or (size known) it runs past ``limit``.
        OSError: reading failed.
    """
    element_id, header_size, size = _head(fd, offset, limit)
    element = Element(element_id, offset, header_size, size if size is not None else limit - offset - header_size)
    if element.end > limit:
        raise EbmlError(f"byte {offset}: the {element.name} element ({element.size} bytes) runs past its parent")
    return element, size is not None


def walk(fd: int) -> MatroskaLayout:
    """Walk the top-level structure of the Matroska file open on ``fd`` (read with
    ``pread``, so the descriptor's offset is not used).

    Accepted: the EBML Header, Void elements before the Segment, one Segment whose size
    may be unknown (it then runs to the end of the file), children of any ID with a
    known size, and bytes after the end of a known-size Segment (not walked).

    Raises:
        EbmlError: the file does not start with an EBML Header and a Segment, a child
            of the Segment has an unknown size, or an element runs past its parent or
            past the end of the file.
        OSError: reading failed.
    """
    file_size = os.fstat(fd).st_size
    element_id, header_size, size = _head(fd, 0, file_size)
    if element_id != EBML_HEADER_ID:
        raise EbmlError(f"byte 0: not an EBML file (ID 0x{element_id:X} where the EBML Header should be)")
    offset = 0
    while element_id != SEGMENT_ID:
        if offset > 0 and element_id != VOID_ID:
            raise EbmlError(f"byte {offset}: element 0x{element_id:X} where the Segment should start")
        name = NAMES[element_id]
        if size is None:
            raise EbmlError(f"byte {offset}: the {name} element has an unknown size")
        offset += header_size + size
        if offset >= file_size:
            raise EbmlError(f"the {name} element runs up to or past the end of the file: no Segment")
        element_id, header_size, size = _head(fd, offset, file_size)
    known = size is not None
    segment = Element(SEGMENT_ID, offset, header_size, size if size is not None else file_size - offset - header_size)
    if segment.end > file_size:
        raise EbmlError(
            f"byte {offset}: the Segment's size ({segment.size} bytes) runs past the end of the file "
            f"({file_size} bytes): truncated"
        )
    children: list[Element] = []
    offset = segment.data_offset
    while offset < segment.end:
        element_id, header_size, size = _head(fd, offset, segment.end)
        child = Element(element_id, offset, header_size, size if size is not None else 0)
        if size is None:
            raise EbmlError(
                f"byte {offset}: a {child.name} element of unknown size; the elements after it cannot be found "
                "without parsing inside it"
            )
        if child.end > segment.end:
            raise EbmlError(
                f"byte {offset}: the {child.name} element ({size} bytes) runs past the end of the "
                f"{'Segment' if segment.end < file_size else 'file'}"
            )
        children.append(child)
        offset = child.end
    return MatroskaLayout(file_size, segment, known, tuple(children))
