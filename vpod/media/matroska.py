"""Read a Matroska file's headers in-process: what ``mkvmerge -J`` would report, without a process.

Verification (:mod:`vpod.media.verify`) reads every file vpod writes. Starting
``mkvmerge -J`` for that costs about as much CPU as the remux of a small file; this
reader gets the same facts from the file's EBML elements (RFC 8794) with a few
``pread`` calls:

* the EBML Header (DocType ``matroska`` or ``webm``) and the Segment (RFC 9559 §5.1);
* the Segment's top-level elements up to the first Cluster, and those the SeekHeads
  point to (a SeekHead may point to another), as ``mkvmerge`` finds them: nothing is
  searched for inside or after the Clusters;
* Info: ``TimestampScale`` (default 1,000,000 ns) and ``Duration`` (RFC 9559 §5.1.2);
* Tracks: per ``TrackEntry`` its number, UID, type, ``CodecID``, ``Name``, ``Language``
  (default ``eng``), ``LanguageBCP47``, the seven flags of
  :data:`vpod.media.flags.TRACK_FLAGS` (``FlagDefault`` defaults to 1, the others to 0)
  and ``Audio/Channels`` (default 1) (RFC 9559 §5.1.4.1);
* Attachments: how many ``AttachedFile`` (§5.1.6); Chapters: how many ``ChapterAtom``
  directly under each ``EditionEntry``, summed (what ``mkvmerge -J`` calls the
  chapters' ``num_entries``; §5.1.7).

It refuses (:class:`MatroskaUnsure`) whatever it cannot turn into exactly what
``mkvmerge -J`` says, and the caller asks ``mkvmerge -J`` instead: an unknown-size
element before the first Cluster, elements running past their parent, a SeekHead
pointing at something else than it names, two Info/Tracks/Chapters/Attachments
elements, no ``Duration``, a track type other than video/audio/subtitles, a track
without ``CodecID`` or with a number used twice, a ``Language`` that is not a plain
ISO 639-2/B code, a ``LanguageBCP47`` that is not in the simple canonical form
``ll[-Ssss][-RR]`` or ``lll[-Ssss][-RR]`` where ``lll`` is an ISO 639-3 language with a
macrolanguage code (``yue``, ``cmn``, ``arb``: see
:func:`vpod.policy.languages.legacy_language`) (mkvmerge rewrites other forms), a
``Name`` that is not UTF-8, and a
codec whose mkvmerge name cannot be known (see :func:`to_media_info`).
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from vpod.media.ebml import CLUSTER_ID, EBML_HEADER_ID, SEEK_HEAD_ID, SEGMENT_ID, EbmlError, element_at, read_vint
from vpod.media.model import MATROSKA, MediaInfo, Track
from vpod.policy.languages import (
    UNDETERMINED,
    LanguageError,
    languages_agree,
    legacy_language,
    normalize_language,
    track_language,
)

READER = "matroska-reader"
""":attr:`MediaInfo.probed_with` of what this module read."""

INFO_ID, TRACKS_ID, CHAPTERS_ID, ATTACHMENTS_ID = 0x1549A966, 0x1654AE6B, 0x1043A770, 0x1941A469
_FOLLOWED = {INFO_ID, TRACKS_ID, CHAPTERS_ID, ATTACHMENTS_ID, SEEK_HEAD_ID}
_ONCE = {INFO_ID: "Info", TRACKS_ID: "Tracks", CHAPTERS_ID: "Chapters", ATTACHMENTS_ID: "Attachments"}
_SKIPPED_CHILDREN = {0xBF, 0xEC}  # CRC-32 and Void may sit inside any master (RFC 8794 §11.3)
_MAX_MASTER_BYTES = 64 << 20  # Info and Tracks are read whole; more is not a header vpod trusts itself with

# RFC 9559 element IDs
_DOC_TYPE, _SEEK, _SEEK_ID, _SEEK_POSITION = 0x4282, 0x4DBB, 0x53AB, 0x53AC
_TIMESTAMP_SCALE, _DURATION = 0x2AD7B1, 0x4489
_TRACK_ENTRY, _TRACK_NUMBER, _TRACK_UID, _TRACK_TYPE, _CODEC_ID = 0xAE, 0xD7, 0x73C5, 0x83, 0x86
_NAME, _LANGUAGE, _LANGUAGE_BCP47, _AUDIO, _CHANNELS = 0x536E, 0x22B59C, 0x22B59D, 0xE1, 0x9F
_FLAGS = {  # element ID -> (Track attribute, value when absent)
    0x88: ("default", True),  # FlagDefault
    0x55AA: ("forced", False),  # FlagForced
    0x55AB: ("hearing_impaired", False),
    0x55AC: ("visual_impaired", False),
    0x55AD: ("text_descriptions", False),
    0x55AE: ("original", False),
    0x55AF: ("commentary", False),
}
_ATTACHED_FILE, _EDITION_ENTRY, _CHAPTER_ATOM = 0x61A7, 0x45B9, 0xB6
_TRACK_TYPES = {1: "video", 2: "audio", 17: "subtitle"}
_BCP47_SIMPLE = re.compile(r"([a-z]{2,3})(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?")

MKVMERGE_CODEC_NAMES: Mapping[str, str] = {
    "V_MPEG4/ISO/AVC": "AVC/H.264/MPEG-4p10",
    "V_MPEGH/ISO/HEVC": "HEVC/H.265/MPEG-H",
    "V_MPEG4/ISO/ASP": "MPEG-4p2",
    "V_MPEG2": "MPEG-1/2",
    "V_VP9": "VP9",
    "V_THEORA": "Theora",
    "A_AAC": "AAC",
    "A_EAC3": "E-AC-3",
    "A_FLAC": "FLAC",
    "A_MPEG/L2": "MP2",
    "A_MPEG/L3": "MP3",
    "A_OPUS": "Opus",
    "A_VORBIS": "Vorbis",
    "A_PCM/INT/LIT": "PCM",
    "A_ALAC": "ALAC",
    "S_TEXT/UTF8": "SubRip/SRT",
    "S_TEXT/ASS": "SubStationAlpha",
}
"""``CodecID`` → the codec name ``mkvmerge -J`` (MKVToolNix 74) gives it, for the codecs
whose name depends on the ``CodecID`` alone (checked by the equivalence test on files
of each). Not here: ``A_AC3``, ``A_DTS``, ``A_TRUEHD`` and the like, which mkvmerge
names from the frames (``E-AC-3``, ``DTS-HD Master Audio``, ``TrueHD Atmos``)."""


class MatroskaUnsure(EbmlError):
    """The reader cannot say for certain what ``mkvmerge -J`` would; the message says why."""


class TrackEntry(NamedTuple):
    """One ``TrackEntry`` as read, before its codec is named.

    Attributes:
        track: the :class:`Track`, ``codec`` empty (named by :func:`to_media_info`).
        codec_id: its ``CodecID``.
        uid: its ``TrackUID`` (0 when absent).
    """

    track: Track
    codec_id: str
    uid: int


class MatroskaHeaders(NamedTuple):
    """What :func:`read_headers` found.

    Attributes:
        path: the file.
        size_bytes: its size when read.
        duration_ns: ``Duration`` × ``TimestampScale`` rounded to the nanosecond, as
            ``mkvmerge -J`` reports the container's ``duration``; ``None`` where that
            rounds to 0, for which ``mkvmerge -J`` reports no ``duration`` (MKVToolNix
            v74, checked by ``tests/integration/test_matroska_reader.py``).
        tracks: every ``TrackEntry`` in file order (index = mkvmerge's track ID).
        attachments: the number of attached files.
        chapter_entries: ``ChapterAtom`` elements directly under the editions, summed
            (0 without Chapters).
    """

    path: Path
    size_bytes: int
    duration_ns: int | None
    tracks: tuple[TrackEntry, ...]
    attachments: int
    chapter_entries: int


def read_headers(path: Path) -> MatroskaHeaders:
    """Read the headers of the Matroska file ``path`` (see the module docstring).

    Raises:
        MatroskaUnsure: the reader cannot answer for certain (the message says why).
        EbmlError: not Matroska, or its structure cannot be delimited.
        OSError: reading failed.
    """
    path = path.absolute()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read(fd, path)
    finally:
        os.close(fd)


def _read(fd: int, path: Path) -> MatroskaHeaders:
    size = os.fstat(fd).st_size
    head, known = element_at(fd, 0, size)
    if head.id != EBML_HEADER_ID or not known:
        raise EbmlError(f"{path}: not an EBML file")
    doc_type = next((_text(v) for i, v in _children(_span(fd, head.data_offset, head.end)) if i == _DOC_TYPE), "")
    if doc_type not in ("matroska", "webm"):
        raise MatroskaUnsure(f"{path}: DocType {doc_type!r}")
    segment, _ = element_at(fd, head.end, size)
    if segment.id != SEGMENT_ID:
        raise MatroskaUnsure(f"{path}: byte {head.end}: no Segment right after the EBML Header")
    found: dict[int, tuple[int, int]] = {}  # offset -> (element ID, end) of every element of interest
    offset = segment.data_offset
    while offset < segment.end:  # the top-level elements before the first Cluster
        child, known = element_at(fd, offset, segment.end)
        if child.id == CLUSTER_ID:
            break
        if not known:
            raise MatroskaUnsure(f"{path}: byte {offset}: a top-level element of unknown size")
        if child.id in _FOLLOWED:
            found[offset] = (child.id, child.end)
        offset = child.end
    pending = [o for o, (i, _) in found.items() if i == SEEK_HEAD_ID]
    followed: set[int] = set()
    while pending:
        at = pending.pop()
        if at in followed:
            continue
        followed.add(at)
        for target_id, position in _seek_entries(_element_data(fd, at, found[at][1])):
            target = segment.data_offset + position
            if target_id not in _FOLLOWED or target in found:
                continue
            element, known = element_at(fd, target, segment.end)
            if element.id != target_id or not known:
                raise MatroskaUnsure(
                    f"{path}: byte {target}: a SeekHead names 0x{target_id:X} there, the file has 0x{element.id:X}"
                )
            found[target] = (target_id, element.end)
            if target_id == SEEK_HEAD_ID:
                pending.append(target)
    masters: dict[int, list[tuple[int, int]]] = {}
    for at, (element_id, end) in sorted(found.items()):
        masters.setdefault(element_id, []).append((at, end))
    for element_id, name in _ONCE.items():
        if len(masters.get(element_id, [])) > 1:
            raise MatroskaUnsure(f"{path}: {len(masters[element_id])} {name} elements")
    if INFO_ID not in masters or TRACKS_ID not in masters:
        raise MatroskaUnsure(f"{path}: no Tracks or no Info before the first Cluster or named by a SeekHead")
    duration_ns = _duration(_element_data(fd, *masters[INFO_ID][0]), path)
    tracks = _tracks(_element_data(fd, *masters[TRACKS_ID][0]), path)
    attachments = 0
    if ATTACHMENTS_ID in masters:
        attachments = sum(1 for i, _ in _heads(fd, *masters[ATTACHMENTS_ID][0]) if i == _ATTACHED_FILE)
    chapters = 0
    if CHAPTERS_ID in masters:
        for element_id, edition in _heads(fd, *masters[CHAPTERS_ID][0]):
            if element_id == _EDITION_ENTRY:
                chapters += sum(1 for i, _ in _heads(fd, *edition) if i == _CHAPTER_ATOM)
    return MatroskaHeaders(path, size, duration_ns, tracks, attachments, chapters)


def _span(fd: int, start: int, end: int) -> bytes:
    """The file's bytes from ``start`` to ``end``: the data of a header element."""
    if end - start > _MAX_MASTER_BYTES:
        raise MatroskaUnsure(f"byte {start}: an element of {end - start} bytes where headers were expected")
    data = os.pread(fd, end - start, start)
    if len(data) != end - start:
        raise EbmlError(f"byte {start}: the file ends inside an element")
    return data


def _element_data(fd: int, offset: int, end: int) -> bytes:
    """The data of the element whose header is at ``offset`` and which ends at ``end``."""
    element, _ = element_at(fd, offset, end)
    return _span(fd, element.data_offset, end)


def _children(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(ID, data) of each child in ``data`` (a master element's data), CRC-32 and Void left out.

    Raises:
        MatroskaUnsure: a child of unknown size or running past its parent.
        EbmlError: not EBML.
    """
    pos = 0
    while pos < len(data):
        _, id_length = read_vint(data, pos)
        element_id = int.from_bytes(data[pos : pos + id_length], "big")
        size, size_length = read_vint(data, pos + id_length)
        start = pos + id_length + size_length
        if id_length > 4 or size == (1 << 7 * size_length) - 1 or start + size > len(data):
            raise MatroskaUnsure(f"element 0x{element_id:X}: unknown size, or past the end of its parent")
        if element_id not in _SKIPPED_CHILDREN:
            yield element_id, data[start : start + size]
        pos = start + size


def _heads(fd: int, offset: int, end: int) -> Iterator[tuple[int, tuple[int, int]]]:
    """(ID, (offset, end)) of each child of the element at ``offset`` (ending at ``end``),
    from their headers alone (attached files may be large)."""
    parent, _ = element_at(fd, offset, end)
    position = parent.data_offset
    while position < end:
        child, known = element_at(fd, position, end)
        if not known:
            raise MatroskaUnsure(f"byte {position}: an element of unknown size")
        yield child.id, (position, child.end)
        position = child.end


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big") if data else 0


def _text(data: bytes) -> str:
    try:
        return data.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError:
        raise MatroskaUnsure("a string element that is not UTF-8") from None


def _seek_entries(data: bytes) -> Iterator[tuple[int, int]]:
    for element_id, seek in _children(data):
        if element_id != _SEEK:
            continue
        fields = dict(_children(seek))
        if _SEEK_ID in fields and _SEEK_POSITION in fields:
            yield _uint(fields[_SEEK_ID]), _uint(fields[_SEEK_POSITION])


def _duration(info: bytes, path: Path) -> int | None:
    fields = dict(_children(info))
    scale = _uint(fields[_TIMESTAMP_SCALE]) if _TIMESTAMP_SCALE in fields else 1_000_000
    raw = fields.get(_DURATION)
    if raw is None or len(raw) not in (4, 8):
        raise MatroskaUnsure(f"{path}: no Duration in Info (mkvmerge would work it out from the Clusters)")
    value: float = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0]
    if not math.isfinite(value) or value < 0:
        raise MatroskaUnsure(f"{path}: Duration {value}")
    rounded = math.floor(value * scale + 0.5)  # mkvmerge rounds to the nearest nanosecond
    return rounded or None  # and reports no duration at all for 0


def _tracks(data: bytes, path: Path) -> tuple[TrackEntry, ...]:
    entries: list[TrackEntry] = []
    numbers: set[int] = set()
    for element_id, entry_data in _children(data):
        if element_id != _TRACK_ENTRY:
            continue
        entry = _track_entry(entry_data, len(entries), path)
        number = entry.track.number or 0
        if not number or number in numbers:
            raise MatroskaUnsure(f"{path}: track number {number} missing or used twice")
        numbers.add(number)
        entries.append(entry)
    return tuple(entries)


def _track_entry(data: bytes, index: int, path: Path) -> TrackEntry:
    fields = dict(_children(data))
    kind = _TRACK_TYPES.get(_uint(fields.get(_TRACK_TYPE, b"")))
    if kind is None:
        raise MatroskaUnsure(f"{path}: track {index} has type {_uint(fields.get(_TRACK_TYPE, b''))}")
    if _CODEC_ID not in fields:
        raise MatroskaUnsure(f"{path}: track {index} has no CodecID")
    legacy = _text(fields[_LANGUAGE]) if _LANGUAGE in fields else "eng"
    if legacy != "und" and (not re.fullmatch(r"[a-z]{3}", legacy) or _iso639_2b(legacy) != legacy):
        raise MatroskaUnsure(f"{path}: track {index} Language {legacy!r} is not a plain ISO 639-2/B code")
    tag = _text(fields[_LANGUAGE_BCP47]) if _LANGUAGE_BCP47 in fields else None
    if tag is not None and not _sure_of_tag(tag):
        raise MatroskaUnsure(f"{path}: track {index} LanguageBCP47 {tag!r} is not one the reader is sure of")
    ietf = track_language(tag) if tag else None
    channels = None
    if kind == "audio":
        audio = dict(_children(fields.get(_AUDIO, b"")))
        channels = _uint(audio[_CHANNELS]) if _CHANNELS in audio else 1
    flags = {name: bool(_uint(fields[eid])) if eid in fields else absent for eid, (name, absent) in _FLAGS.items()}
    track = Track(
        index=index,
        type=kind,
        codec="",
        language=ietf if ietf is not None else track_language(legacy),
        title=(_text(fields[_NAME]) or None) if _NAME in fields else None,
        channels=channels,
        number=_uint(fields.get(_TRACK_NUMBER, b"")),
        languages_agree=languages_agree(legacy, tag),
        language_tag=tag or None,
        **flags,
    )
    return TrackEntry(track, _text(fields[_CODEC_ID]), _uint(fields.get(_TRACK_UID, b"")))


def _sure_of_tag(tag: str) -> bool:
    """Whether ``mkvmerge -J`` reports ``tag`` as it is stored: ``und``, a two-letter
    ISO 639-1 language, or a three-letter ISO 639-3 language mkvmerge maps to its
    macrolanguage's code (these have no two-letter form), each with an optional script
    and region in canonical case."""
    if tag == UNDETERMINED:
        return True
    match = _BCP47_SIMPLE.fullmatch(tag)
    if match is None:
        return False
    primary = match.group(1)
    if len(primary) == 2:
        return _iso639_2b(primary) is not None
    return _iso639_2b(primary) is None and legacy_language(primary) != UNDETERMINED


def _iso639_2b(code: str) -> str | None:
    try:
        return normalize_language(code)
    except LanguageError:
        return None


def to_media_info(headers: MatroskaHeaders, sources: Sequence[tuple[str, str] | None] = ()) -> MediaInfo:
    """The :class:`MediaInfo` ``mkvmerge -J`` would give for the file ``headers`` describe
    (``probed_with`` :data:`READER`; ``Track.duration_seconds``, which mkvmerge takes
    from a ``DURATION`` tag and vpod never uses, is left ``None``).

    A track's codec is named by ``sources[i]`` for the track at position ``i``: the
    ``CodecID`` and mkvmerge name of the source track it was written from, used when
    the ``CodecID`` is the same (a remux or an edit copies the frames mkvmerge names
    some codecs from, ``DTS-HD Master Audio``); else by :data:`MKVMERGE_CODEC_NAMES`.

    Raises:
        MatroskaUnsure: a codec neither names.
    """
    tracks = []
    for position, entry in enumerate(headers.tracks):
        source = sources[position] if position < len(sources) else None
        name = source[1] if source is not None and source[0] == entry.codec_id else None
        name = name or MKVMERGE_CODEC_NAMES.get(entry.codec_id)
        if name is None:
            raise MatroskaUnsure(f"{headers.path}: no mkvmerge name known for CodecID {entry.codec_id!r}")
        tracks.append(replace(entry.track, codec=name))
    return MediaInfo(
        path=headers.path,
        container=MATROSKA,
        duration_seconds=headers.duration_ns / 1e9 if headers.duration_ns else None,
        tracks=tuple(tracks),
        size_bytes=headers.size_bytes,
        probed_with=READER,
        attachments=headers.attachments,
        extra={"matroska": headers},
    )
