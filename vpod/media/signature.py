"""Reject what is not media by its first bytes, before any tool reads it.

A file named ``.mkv`` that is a 20 GiB sparse file, an HTML error page or random junk
would otherwise be handed to ``mkvmerge -J`` and ``ffprobe``, which may read all of it
(or spin) before giving up. Reading :data:`HEAD_BYTES` bytes tells at once.

The signatures follow the probe functions of FFmpeg's libavformat, which decide the
container the same way (by content, not by name):

* Matroska and WebM: the EBML header ID ``1A 45 DF A3`` at offset 0 (RFC 8794 §11.2.1;
  libavformat ``matroskadec.c`` ``matroska_probe``).
* MP4, MOV, M4V, 3GP: a chain of ISO BMFF / QuickTime boxes (4-byte big-endian size,
  4-byte type) from offset 0 in which a known box type appears (``mov.c``
  ``mov_probe`` walks the same chain: ``ftyp``, ``moov``, ``mdat``, ``free``,
  ``wide``, ``skip``, ``pnot``, ``udta``, ``junk``, ``pict``, ``uuid``, ...).
* AVI: ``RIFF`` at 0 and ``AVI `` (or ``AVIX``, ``AVI\\x19``, ``AMV ``) at 8, or
  ``ON2 ``/``ON2f`` (``avidec.c`` ``avi_probe``).
* MPEG transport stream: the sync byte ``0x47`` every 188 bytes (192 for M2TS/Blu-ray,
  whose packets carry a 4-byte time code first; 204 with Reed-Solomon bytes), from any
  start within the first packet (``mpegts.c`` ``mpegts_probe``).

Further signatures (MPEG program stream, MPEG video, FLV, ASF/WMV, Ogg, RealMedia, an
ID3 tag) also count as media: vpod never rejects what the tools might read. Only files
with one of :data:`CHECKED_EXTENSIONS` must match; for other extensions a user adds,
only a head of nothing but zero bytes is rejected.
"""

from __future__ import annotations

import os
from pathlib import Path

from vpod.errors import MediaError
from vpod.outcomes import Reason

HEAD_BYTES = 64 * 1024
"""How much of a file is read: enough for 300 MPEG-TS packets or the first MP4 boxes."""

CHECKED_EXTENSIONS = frozenset({"mkv", "webm", "mp4", "m4v", "mov", "avi", "ts"})
"""Extensions (lower case) whose files must start like a container vpod knows."""

_EBML = b"\x1a\x45\xdf\xa3"
_BOX_TYPES = frozenset(
    (b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"wide", b"pnot", b"udta", b"junk",
     b"pict", b"uuid", b"prfl", b"sidx", b"meta", b"ediw")
)  # fmt: skip
_AVI_FORMS = (b"AVI ", b"AVIX", b"AVI\x19", b"AMV ")
_OTHER_MEDIA = (
    b"\x00\x00\x01\xba",  # MPEG program stream pack header
    b"\x00\x00\x01\xb3",  # MPEG-1/2 video sequence header
    b"FLV\x01",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF header object GUID (WMV)
    b"OggS",
    b".RMF",
    b"ID3",
)
_TS_SYNC = 0x47
_TS_PACKET_SIZES = (188, 192, 204)
_TS_MIN_PACKETS = 3
_TS_MIN_SHARE = 0.8  # of the packets in the head that must carry the sync byte


def container_family(head: bytes) -> str | None:
    """The container ``head`` (a file's first bytes) starts like, or ``None``.

    Returns one of ``"matroska"``, ``"mp4"``, ``"avi"``, ``"mpegts"``, ``"other"``.
    """
    if head.startswith(_EBML):
        return "matroska"
    if (head[:4] == b"RIFF" and head[8:12] in _AVI_FORMS) or head[:8] == b"ON2 ON2f":
        return "avi"
    if _is_box_chain(head):
        return "mp4"
    if _is_transport_stream(head):
        return "mpegts"
    if head.startswith(_OTHER_MEDIA):
        return "other"
    return None


def _is_box_chain(head: bytes) -> bool:
    """A known ISO BMFF / QuickTime box type somewhere along the box chain in ``head``."""
    offset = 0
    while offset + 8 <= len(head):
        size = int.from_bytes(head[offset : offset + 4], "big")
        if head[offset + 4 : offset + 8] in _BOX_TYPES:
            return True
        if size == 1 and offset + 16 <= len(head):  # a 64-bit "largesize" follows the type
            size = int.from_bytes(head[offset + 8 : offset + 16], "big")
        if size == 0:  # the box extends to the end of the file
            return False
        offset += max(size, 8)
    return False


def _is_transport_stream(head: bytes) -> bool:
    """Sync bytes at one phase of a packet size in at least 80 % of the head's packets."""
    for packet in _TS_PACKET_SIZES:
        count = len(head) // packet
        if count < _TS_MIN_PACKETS:
            continue
        for start in range(packet):
            if head[start : count * packet : packet].count(_TS_SYNC) >= _TS_MIN_SHARE * count:
                return True
    return False


def check_media_signature(path: Path) -> None:
    """Raise unless ``path`` may be media, judged by its first :data:`HEAD_BYTES` bytes.

    Raises:
        MediaError: reason ``not_media`` (permanent: the file waits until its content
            changes), naming the file and showing its first bytes.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if head and not any(head):
        raise MediaError(
            f"{path}: not media: its first {len(head):,} bytes are all zero (a sparse or preallocated file, or a "
            "download whose start is not written yet); vpod looks at it again when its content changes",
            reason=Reason.NOT_MEDIA,
        )
    extension = os.path.splitext(path.name)[1][1:].lower()
    if extension not in CHECKED_EXTENSIONS or container_family(head) is not None:
        return
    raise MediaError(
        f"{path}: not media: it starts with {_show(head[:16])}, which is no video container "
        f"(Matroska/WebM, MP4/MOV, AVI, MPEG-TS) whatever its name says; no tool was run on it",
        reason=Reason.NOT_MEDIA,
    )


def _show(data: bytes) -> str:
    """``1a 45 df a3 … ("..E.")``: hex, then the bytes as ASCII with dots for the rest."""
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
    return f"{data.hex(' ')} ({text!r})"
