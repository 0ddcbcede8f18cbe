"""The in-process Matroska reader on hand-built EBML (RFC 8794 sizes, RFC 9559 element IDs):
the defaults it applies, and every layout it refuses rather than guess (the caller then
asks mkvmerge -J; tests/integration/test_matroska_reader.py compares it with mkvmerge)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from support.ebml import UNKNOWN_8, element, header, segment
from vpod.media.ebml import CLUSTER_ID, SEEK_HEAD_ID
from vpod.media.matroska import INFO_ID, TRACKS_ID, MatroskaUnsure, read_headers, to_media_info


def info(duration: float | None = 1500.0) -> bytes:
    body = element(0x2AD7B1, (1_000_000).to_bytes(3, "big"), 1)
    if duration is not None:
        body += element(0x4489, struct.pack(">d", duration), 1)
    return element(INFO_ID, element(0xBF, b"\0\0\0\0", 1) + body)  # a CRC-32 first, as ffmpeg writes


def entry(number: int = 1, kind: int = 2, codec: bytes = b"A_AAC", *fields: bytes) -> bytes:
    body = element(0xD7, bytes([number]), 1) + element(0x83, bytes([kind]), 1) + element(0x86, codec, 1)
    return element(0xAE, body + b"".join(fields), 1)


def tracks(*entries: bytes) -> bytes:
    return element(TRACKS_ID, b"".join(entries) or entry())


CLUSTER = element(CLUSTER_ID, element(0xE7, b"\0", 1))


def read(tmp_path: Path, *children: bytes, unknown: bool = False):  # type: ignore[no-untyped-def]
    path = tmp_path / "f.mkv"
    path.write_bytes(header() + segment(*children, unknown=unknown))
    return read_headers(path)


def test_defaults_of_rfc_9559(tmp_path: Path) -> None:
    headers = read(tmp_path, info(), tracks(entry()), CLUSTER)
    [track] = to_media_info(headers).tracks
    assert (track.type, track.codec, track.language, track.default, track.forced, track.channels) == (
        "audio", "AAC", "eng", True, False, 1,
    )  # fmt: skip
    assert not (track.hearing_impaired or track.visual_impaired or track.commentary or track.original)
    assert headers.duration_ns == 1_500_000_000 and headers.attachments == 0 and headers.chapter_entries == 0


def test_explicit_values(tmp_path: Path) -> None:
    fields = [element(0x88, b"\0", 1), element(0x55AA, b"\x01", 1), element(0x55AE, b"\x01", 1),
              element(0x22B59C, b"por", 1), element(0x22B59D, b"pt-BR", 1), element(0x536E, "Português".encode(), 1),
              element(0xE1, element(0x9F, b"\x06", 1), 1)]  # fmt: skip
    [track] = to_media_info(read(tmp_path, info(), tracks(entry(1, 2, b"A_AAC", *fields)), CLUSTER)).tracks
    assert (track.default, track.forced, track.original, track.language, track.language_tag, track.title,
            track.channels, track.languages_agree) == (False, True, True, "por", "pt-BR", "Português", 6, True)  # fmt: skip


def test_unknown_size_before_the_first_cluster(tmp_path: Path) -> None:
    tags = (0x1254C367).to_bytes(4, "big") + UNKNOWN_8 + element(0x7373, b"", 1)
    with pytest.raises(MatroskaUnsure, match="unknown size"):
        read(tmp_path, info(), tracks(), tags, unknown=True)


def test_an_unknown_size_cluster_is_where_reading_stops(tmp_path: Path) -> None:
    cluster = CLUSTER_ID.to_bytes(4, "big") + UNKNOWN_8 + element(0xE7, b"\0", 1)
    assert len(read(tmp_path, info(), tracks(), cluster, unknown=True).tracks) == 1


@pytest.mark.parametrize(
    "children, why",
    [
        ((info(), tracks(), tracks(), CLUSTER), "2 Tracks elements"),
        ((info(None), tracks(), CLUSTER), "no Duration"),
        ((info(), tracks(entry(1, 0x21)), CLUSTER), "type 33"),
        ((info(), tracks(entry(1), entry(1)), CLUSTER), "used twice"),
        ((info(), tracks(entry(1, 2, b"A_AAC", element(0x22B59C, b"fra", 1))), CLUSTER), "Language 'fra'"),
        ((info(), tracks(entry(1, 2, b"A_AAC", element(0x22B59C, b"xx", 1))), CLUSTER), "Language 'xx'"),
        ((info(), tracks(entry(1, 2, b"A_AAC", element(0x22B59D, b"pt-br", 1))), CLUSTER), "LanguageBCP47 'pt-br'"),
        ((info(), tracks(entry(1, 2, b"A_AAC", element(0x536E, b"\xff\xfe", 1))), CLUSTER), "not UTF-8"),
        ((info(), CLUSTER, tracks()), "no Tracks"),  # behind the Clusters, and no SeekHead names it
    ],
)  # fmt: skip
def test_refused(tmp_path: Path, children: tuple[bytes, ...], why: str) -> None:
    with pytest.raises(MatroskaUnsure, match=why):
        read(tmp_path, *children)


def seek_head(target_id: int, position: int) -> bytes:
    seek = element(0x53AB, target_id.to_bytes(4, "big"), 1) + element(0x53AC, position.to_bytes(4, "big"), 1)
    return element(SEEK_HEAD_ID, element(0x4DBB, seek, 1))


def test_tracks_behind_the_clusters_found_by_the_seek_head(tmp_path: Path) -> None:
    first = info()
    position = len(seek_head(0, 0)) + len(first) + len(CLUSTER)
    headers = read(tmp_path, seek_head(TRACKS_ID, position), first, CLUSTER, tracks())
    assert len(headers.tracks) == 1


def test_a_seek_head_naming_another_element(tmp_path: Path) -> None:
    first = info()
    position = len(seek_head(0, 0)) + len(first)  # the Cluster, not Tracks
    with pytest.raises(MatroskaUnsure, match="a SeekHead names"):
        read(tmp_path, seek_head(TRACKS_ID, position), first, CLUSTER, tracks())


def test_a_codec_the_table_cannot_name(tmp_path: Path) -> None:
    headers = read(tmp_path, info(), tracks(entry(1, 2, b"A_DTS")), CLUSTER)
    with pytest.raises(MatroskaUnsure, match="A_DTS"):
        to_media_info(headers)
    assert to_media_info(headers, [("A_DTS", "DTS-HD Master Audio")]).tracks[0].codec == "DTS-HD Master Audio"
    with pytest.raises(MatroskaUnsure, match="A_DTS"):  # the source had another CodecID: its name says nothing
        to_media_info(headers, [("A_AC3", "AC-3")])
