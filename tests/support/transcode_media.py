"""Small sources for transcode tests, made at test time with ffmpeg and mkvmerge.

:func:`movie`: a few seconds of 320x240 H.264 (libx264 ultrafast), a 5.1 audio track
(FLAC, PCM s24le or TrueHD), an SRT subtitle, two chapters and a text attachment.
:func:`tiny_hevc`: a very low-bitrate HEVC file (nothing left to save by re-encoding).
:func:`video_with_lossless_audio`: a video that shrinks well beside big PCM audio.
:func:`picture_not_kept`: HDR10 HEVC or interlaced MPEG-2, whose encode vpod declines.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.media import audio, make_media, subtitle, video

_CHAPTERS = """<?xml version="1.0"?>
<Chapters><EditionEntry>
<ChapterAtom><ChapterTimeStart>00:00:00.000</ChapterTimeStart><ChapterDisplay><ChapterString>One</ChapterString></ChapterDisplay></ChapterAtom>
<ChapterAtom><ChapterTimeStart>00:00:01.500</ChapterTimeStart><ChapterDisplay><ChapterString>Two</ChapterString></ChapterDisplay></ChapterAtom>
</EditionEntry></Chapters>
"""


def movie(
    path: Path, *, audio_codec: str = "flac", seconds: float = 3.0, ten_bit: bool = False, cover: bool = False,
    frame_rate: str | None = None,
) -> Path:
    """``path`` (.mkv): H.264 video (10-bit ``yuv420p10le`` when ``ten_bit``; at
    ``frame_rate``, e.g. ``"24000/1001"``, instead of make_media's 10 fps), English 5.1
    ``audio_codec`` audio (default on), English SRT, 2 chapters, 1 attachment ``notes.txt``
    (and ``cover.jpg`` first when ``cover``)."""
    work = path.parent
    base = work / f".base-{path.stem}.mkv"
    make_media(
        base,
        [video(codec="libx264"), audio("eng", codec="flac" if audio_codec == "truehd" else audio_codec, channels=6, default=True, title="Surround"),
         subtitle("eng")],
        duration=seconds, video_size="320x240", video_source="testsrc2",
    )  # fmt: skip
    # make_media has no pixel format or -strict option: the video is re-encoded in 4:2:0
    # (what a real film has), and TrueHD made here.
    source = work / f".redo-{path.stem}.mkv"
    extra = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le" if ten_bit else "yuv420p"]
    if audio_codec == "truehd":
        extra += ["-c:a", "truehd", "-strict", "-2", "-ar", "48000"]
    # make_media's video runs at 10 fps; a film's rate is a new video source, not -r (which
    # would repeat frames at uneven times).
    inputs, maps = ["-i", str(base)], ["-map", "0"]
    if frame_rate:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={frame_rate}:duration={seconds}"]
        maps = ["-map", "1:v", "-map", "0:a", "-map", "0:s"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", *inputs, *maps, "-c", "copy", *extra, str(source)],
        check=True,
    )  # fmt: skip
    chapters = work / f".chapters-{path.stem}.xml"
    chapters.write_text(_CHAPTERS)
    notes = work / "notes.txt"
    notes.write_text("kept by the transcode\n")
    picture = work / "cover.jpg"
    attach: list[str] = []
    if cover:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "color=red:size=64x64",
                        "-frames:v", "1", str(picture)], check=True)  # fmt: skip
        attach += ["--attachment-mime-type", "image/jpeg", "--attach-file", str(picture)]
    done = subprocess.run(
        ["mkvmerge", "-q", "-o", str(path), "--chapters", str(chapters), *attach, "--attachment-mime-type", "text/plain",
         "--attach-file", str(notes), str(source)],
    )  # fmt: skip
    assert done.returncode in (0, 1), done
    for leftover in (base, source, chapters, notes, picture):
        leftover.unlink(missing_ok=True)
    return path


def tiny_hevc(path: Path, *, seconds: float = 3.0) -> Path:
    """``path`` (.mkv): a 320x240 HEVC video at a very low bitrate, and AAC stereo."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=10:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=400:duration={seconds}:sample_rate=8000",
         "-map", "0", "-map", "1", "-c:v", "libx265", "-preset", "ultrafast", "-crf", "40", "-x265-params", "log-level=error",
         "-c:a", "aac", "-b:a", "16k", "-metadata:s:a:0", "language=eng", str(path)],
        check=True,
    )  # fmt: skip
    return path


def video_with_lossless_audio(
    path: Path, *, seconds: float = 4.0, audio_first: bool = False, crf: int = 16, audio_codec: str = "pcm_s16le",
    silent: bool = False, default: bool = True,
) -> Path:
    """``path`` (.mkv): a generous 320x240 H.264 video (libx264 ultrafast, CRF 16, 10 fps:
    an HEVC encode at vpod's default CRF makes it about a third smaller) and a big English
    PCM 5.1 track (16-bit, 48 kHz: 4.6 Mb/s, ten times the video), default on, so the whole
    file shrinks by under 5 % when only its video does; ``audio_first`` puts the audio
    track before the video. The others change that: the video's ``crf``, the audio's
    ``audio_codec`` (an ffmpeg encoder, e.g. ``flac``), ``silent`` (silence, not a tone),
    ``default`` (its FlagDefault)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sound = "anullsrc=sample_rate=48000" if silent else "sine=frequency=500:sample_rate=48000"
    inputs = [["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=10:duration={seconds}"],
              ["-f", "lavfi", "-t", str(seconds), "-i", sound]]  # fmt: skip
    order = ["1:a", "0:v"] if audio_first else ["0:v", "1:a"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", *inputs[0], *inputs[1],
         *(arg for stream in order for arg in ("-map", stream)), "-map_metadata", "-1",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p",
         "-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0", "-c:a", audio_codec,
         "-metadata:s:a:0", "language=eng", "-disposition:a:0", "default" if default else "0", str(path)],
        check=True,
    )  # fmt: skip
    return path


_HDR10 = [
    "-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast",
    "-x265-params", "log-level=error:hdr10=1:repeat-headers=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
    "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400",
    "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
]
"""HDR10 HEVC 10-bit with mastering display (SMPTE ST 2086) and MaxCLL/MaxFALL (x265 docs, "VUI/SEI options")."""
_INTERLACED = ["-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "2M"]
"""MPEG-2 coded interlaced, top field first (ffmpeg-codecs(1): ilme/ildct; ffmpeg(1) -top): ffprobe field_order tt."""


_TWO_H264 = ["-map", "2:v", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
"""A second video track (input 2: 30 fps, the first is 25 fps), both H.264: a plan that
converts H.264 would encode two video tracks (``several_video_tracks``)."""


def picture_not_kept(path: Path, kind: str, *, seconds: float = 2.0) -> Path:
    """``path`` (.mkv): a 320x240 video vpod cannot re-encode without losing its picture,
    ``kind`` ``"hdr10"`` (:data:`_HDR10`), ``"interlaced"`` (:data:`_INTERLACED`, 25 fps)
    or ``"two_h264"`` (two H.264 video tracks, :data:`_TWO_H264`), then an English FLAC
    5.1 track with its default flag off (a header fix for a policy whose audio_languages
    is English; a source for an audio_compat track)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=500:duration={seconds}:sample_rate=48000",
         "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=30:duration={seconds}", "-map", "0:v",
         *{"hdr10": _HDR10, "interlaced": _INTERLACED, "two_h264": _TWO_H264}[kind], "-map", "1:a",
         "-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0", "-c:a", "flac",
         "-metadata:s:a:0", "language=eng", "-disposition:a:0", "0", str(path)],
        check=True,
    )  # fmt: skip
    return path


def video_packet_bytes(path: Path) -> int:
    """The sum of the sizes of ``path``'s video packets (ffprobe's JSON, for checks)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-select_streams", "v", "-show_entries", "packet=size", str(path)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return sum(int(p["size"]) for p in json.loads(out)["packets"])


def streams(path: Path) -> list[dict[str, Any]]:
    """ffprobe's streams of ``path``."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_chapters", str(path)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    data: list[dict[str, Any]] = json.loads(out)["streams"]
    return data


def chapter_count(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_chapters", str(path)], capture_output=True, check=True
    ).stdout
    return len(json.loads(out)["chapters"])


def attachments(path: Path) -> list[str]:
    """File names of ``path``'s attachments (mkvmerge -J)."""
    data = json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)
    return [a["file_name"] for a in data.get("attachments", [])]
