"""The media of issue 18's acceptance tests and transcode benchmark, generated at run time.

Small and fast (well under a second of CPU each for the default 4 s): 320x240 H.264 from
``libx264 -preset ultrafast`` at a generous quality (so that an HEVC re-encode is
smaller), one English 5.1 audio track in a codec ``audio_compat``/``audio_convert`` care
about (TrueHD, FLAC, or 24-bit PCM standing in for DTS: FFmpeg has no DTS encoder fit
for 5.1), an English SRT subtitle, two chapters (an FFmpeg metadata file, ffmpeg-formats(1)
"Metadata" ``;FFMETADATA1``) and a text attachment added by ``mkvmerge --attach-file``
(mkvmerge(1) "Attachment support"). And a small low-bitrate HEVC file, the
``keep_if_larger`` case: re-encoding it into H.264 can only make it bigger.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

VIDEO_SIZE = "320x240"
FPS = 25
ATTACHMENT_NAME = "notes.txt"
ATTACHMENT_TEXT = "vpod transcode acceptance: this attachment must survive the transcode.\n"
CHAPTER_TITLES = ("Opening", "Ending")

# ffmpeg(1) -c:a; "truehd" is experimental in FFmpeg 5/6 (-strict -2), pcm_s24le is the
# "DTS-like" lossless track (what a Blu-ray rip's DTS-HD MA decodes to).
AUDIO_CODECS = {"truehd": ["truehd", "-strict", "-2"], "flac": ["flac"], "pcm": ["pcm_s24le"]}
# Six channels from one sine, each a little different, in FFmpeg's 5.1 layout (FL FR FC LFE BL BR).
_FIVE_ONE = "pan=5.1|c0=c0|c1=0.9*c0|c2=0.8*c0|c3=0.5*c0|c4=0.7*c0|c5=0.6*c0"


def _metadata_file(folder: Path, duration: float) -> Path:
    """Two chapters splitting ``duration`` seconds in half (ffmpeg-formats(1), "Metadata")."""
    half = int(duration * 500)
    path = folder / ".gen-chapters.txt"
    lines = [";FFMETADATA1"]
    for start, end, title in ((0, half, CHAPTER_TITLES[0]), (half, int(duration * 1000), CHAPTER_TITLES[1])):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}", f"title={title}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def make_surround_file(path: Path, audio: str = "truehd", *, duration: float = 4.0, marker: str = "") -> Path:
    """Write ``path`` (Matroska): H.264 320x240 video, one English 5.1 ``audio`` track
    (``truehd``, ``flac`` or ``pcm`` = PCM s24le), an English SRT subtitle, two chapters
    and the attachment :data:`ATTACHMENT_NAME` (text/plain).

    Args:
        duration: seconds of media.
        marker: written as the segment title: two files with different markers have
            different content (vpod rightly skips content it already handled).

    Raises:
        subprocess.CalledProcessError: ffmpeg or mkvmerge failed.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    srt = folder / f".gen-{path.stem}.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n\n2\n00:00:02,000 --> 00:00:03,000\nAgain\n\n")
    chapters = _metadata_file(folder, duration)
    muxed = folder / f".gen-{path.stem}-ffmpeg.mkv"
    note = folder / ATTACHMENT_NAME
    note.write_text(ATTACHMENT_TEXT)
    try:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-nostdin",
             "-f", "lavfi", "-i", f"testsrc2=size={VIDEO_SIZE}:rate={FPS}:duration={duration}",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={duration}:sample_rate=48000",
             "-i", str(srt), "-i", str(chapters),
             "-map", "0:v", "-map", "1:a", "-map", "2:s", "-map_chapters", "3",
             "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p",
             "-af", _FIVE_ONE, "-c:a", *AUDIO_CODECS[audio], "-c:s", "srt",
             "-metadata:s:a:0", "language=eng", "-metadata:s:s:0", "language=eng",
             "-disposition:a:0", "default", "-disposition:s:0", "0",
             str(muxed)],
            check=True,
        )  # fmt: skip
        # mkvmerge(1): exit status 1 is "finished with warnings"
        done = subprocess.run(
            ["mkvmerge", "-q", "-o", str(path), "--title", marker or path.stem,
             "--attachment-mime-type", "text/plain", "--attach-file", str(note), str(muxed)],
        )  # fmt: skip
        if done.returncode not in (0, 1):
            raise subprocess.CalledProcessError(done.returncode, done.args)
    finally:
        for leftover in (srt, chapters, muxed, note):
            leftover.unlink(missing_ok=True)
    return path


def make_small_hevc(path: Path, *, duration: float = 4.0, marker: str = "") -> Path:
    """Write ``path`` (Matroska): low-bitrate HEVC 320x240 4:2:0 (``libx265`` CRF 40 of a
    still-ish picture) with one English stereo AAC track, default: a file that the
    default policy finds conforming, and that no re-encode into H.264 makes smaller.

    Raises:
        subprocess.CalledProcessError: ffmpeg failed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin",
         "-f", "lavfi", "-i", f"testsrc=size={VIDEO_SIZE}:rate={FPS}:duration={duration}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={duration}:sample_rate=48000",
         "-map", "0:v", "-map", "1:a", "-map_metadata", "-1",
         "-c:v", "libx265", "-preset", "ultrafast", "-crf", "40", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error",
         "-c:a", "aac", "-b:a", "64k", "-ac", "2", "-metadata:s:a:0", "language=eng",
         "-disposition:a:0", "default", "-metadata", f"title={marker or path.stem}",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def mkvmerge_json(path: Path) -> dict[str, Any]:
    """``mkvmerge -J PATH`` as a dict (mkvmerge(1) "--identification-format json")."""
    return json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)


def ffprobe_json(path: Path) -> dict[str, Any]:
    """``ffprobe -show_format -show_streams -show_chapters`` of ``path`` as a dict."""
    return json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", "-show_chapters", str(path)],
        capture_output=True, check=True,
    ).stdout)  # fmt: skip


def video_frames(path: Path) -> int:
    """Frames of the first video stream, counted by decoding its packets (``-count_packets``)."""
    data = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", str(path)],
        capture_output=True, check=True,
    ).stdout)  # fmt: skip
    return int(data["streams"][0]["nb_read_packets"])
