"""Generate small real media files with ffmpeg, and read them back with mkvmerge/ffprobe.

Every test that checks a media outcome uses files made here at test time (never
committed binaries) and checks them with the real tools.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SRT = "1\n00:00:00,000 --> 00:00:00,900\nHello {n}\n\n"
_ROLE_FLAGS = ("hearing_impaired", "visual_impaired", "commentary", "original", "text_descriptions")
_DISPOSITIONS = {"commentary": "comment", "text_descriptions": "descriptions"}  # ffmpeg's names, where they differ


@dataclass(frozen=True)
class T:
    """One track to generate.

    ``kind`` is video, audio or subtitle. ``codec`` defaults to mpeg4 / aac / srt
    (mov_text for MP4 subtitles). The five role flags (RFC 9559 FlagHearingImpaired …
    FlagTextDescriptions) are set by mkvmerge in a Matroska file, as ffmpeg
    dispositions in any other (FFmpeg's MP4 muxer stores them as DASH role ``kind``
    boxes, lossily: see vpod/media/flags.py).
    """

    kind: str
    language: str | None = None
    title: str | None = None
    default: bool = False
    forced: bool = False
    codec: str | None = None
    hearing_impaired: bool = False
    visual_impaired: bool = False
    commentary: bool = False
    original: bool = False
    text_descriptions: bool = False
    channels: int | None = None


def video(**kw: Any) -> T:
    return T("video", **kw)


def audio(language: str | None = None, **kw: Any) -> T:
    return T("audio", language, **kw)


def subtitle(language: str | None = None, **kw: Any) -> T:
    return T("subtitle", language, **kw)


def make_media(
    path: Path, tracks: list[T], *, duration: float = 1.0, video_size: str = "64x48", video_source: str = "testsrc"
) -> Path:
    """Write ``path`` (container from its extension) with ``tracks`` in that order.

    ``video_source`` is an ffmpeg lavfi source; ``testsrc2`` compresses far less (big files).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["ffmpeg", "-v", "error", "-y", "-nostdin"]
    maps: list[str] = []
    codecs: list[str] = []
    meta: list[str] = []
    ext = path.suffix.lower()
    matroska = ext in (".mkv", ".webm")
    work = path.parent
    for i, track in enumerate(tracks):
        if track.kind == "video":
            args += ["-f", "lavfi", "-i", f"{video_source}=size={video_size}:rate=10:duration={duration}"]
            codec = track.codec or "mpeg4"
            codecs += [f"-c:{i}", codec]
        elif track.kind == "audio":
            args += ["-f", "lavfi", "-i", f"sine=frequency={300 + 100 * i}:duration={duration}:sample_rate=8000"]
            codec = track.codec or "aac"
            codecs += [f"-c:{i}", codec, f"-b:{i}", "16k" if not track.channels else f"{16 * track.channels}k"]
            if track.channels:
                codecs += [f"-ac:{i}", str(track.channels)]
        else:
            srt = work / f".gen-{path.stem}-{i}.srt"
            srt.write_text(_SRT.format(n=i))
            args += ["-i", str(srt)]
            codec = track.codec or ("mov_text" if ext in (".mp4", ".m4v", ".mov") else "srt")
            codecs += [f"-c:{i}", codec]
        maps += ["-map", f"{i}:0"]
        if track.language:
            meta += [f"-metadata:s:{i}", f"language={track.language}"]
        if track.title:
            meta += [f"-metadata:s:{i}", f"title={track.title}"]
        flags = [f for f, on in (("default", track.default), ("forced", track.forced)) if on]
        if not matroska:
            flags += [_DISPOSITIONS.get(name, name) for name in _ROLE_FLAGS if getattr(track, name)]
        meta += [f"-disposition:{i}", "+".join(flags) if flags else "0"]
    extra = ["-default_mode", "passthrough"] if matroska else []
    roles = [
        arg
        for i, track in enumerate(tracks)
        for name in _ROLE_FLAGS
        if getattr(track, name)
        for arg in (f"--{name.replace('_', '-')}-flag", f"{i}:1")
    ]
    written = work / f".gen-{path.stem}-muxed{path.suffix}" if matroska and roles else path
    subprocess.run([*args, *maps, *codecs, *meta, *extra, str(written)], check=True)
    if written != path:
        # mkvmerge(1) --hearing-impaired-flag etc.; exit status 1 is "finished with warnings".
        done = subprocess.run(["mkvmerge", "-q", "-o", str(path), *roles, str(written)])
        assert done.returncode in (0, 1), done
        written.unlink()
    for leftover in work.glob(f".gen-{path.stem}-*.srt"):
        leftover.unlink()
    return path


def mkvmerge_tracks(path: Path) -> list[dict[str, Any]]:
    """Tracks as ``mkvmerge -J`` reports them, simplified: type, language, default, forced, title, codec,
    and the five role flags (``hearing_impaired`` … ``text_descriptions``)."""
    data = json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)
    out = []
    for t in data["tracks"]:
        p = t["properties"]
        out.append(
            {
                "id": t["id"],
                "type": t["type"],
                "codec": t["codec"],
                "language": p.get("language", "und"),
                "default": p.get("default_track", True),
                "forced": p.get("forced_track", False),
                "title": p.get("track_name"),
                **{name: p.get(f"flag_{name}", False) for name in _ROLE_FLAGS},
            }
        )
    return out


def ffprobe_streams(path: Path, *, count_packets: bool = False) -> list[dict[str, Any]]:
    """Streams as ``ffprobe -show_streams`` reports them (optionally with packet counts)."""
    args = ["ffprobe", "-v", "error", "-of", "json", "-show_streams"]
    if count_packets:
        args.append("-count_packets")
    data = json.loads(subprocess.run([*args, str(path)], capture_output=True, check=True).stdout)
    return data["streams"]


def default_audio_languages(path: Path) -> list[str]:
    """Languages of the audio tracks whose default flag is set."""
    return [t["language"] for t in mkvmerge_tracks(path) if t["type"] == "audio" and t["default"]]


def copy_media(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest
