"""Many tiny media files with distinct content, fast: one ffmpeg run, then byte copies.

vpod rightly leaves alone a copy of content it already handled (``same_content_done``),
so a test that drops 50 files needs 50 contents. :class:`UniqueMedia` makes one real
file with :func:`support.media.make_media`, gives it a segment title (mkvmerge
``--title``, mkvmerge(1)) of fixed width, and writes each copy with its own number in
that title. mkvmerge writes no CRC-32 elements by default, so the copies stay valid.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.media import T, audio, make_media, video

_MARKER = b"vpodaccept-0000000000"

REMUX_TRACKS = (video(), audio("eng"), audio("jpn", default=True))
"""With ``keep_audio_languages = ["eng"]`` the jpn track goes: a remux by mkvmerge.
Under the default policy alone (``audio_languages = ["eng"]``) only two default flags
change: a header-only edit."""

REMUX_POLICY = {"audio_languages": ["eng"], "keep_audio_languages": ["eng"]}
"""The policy that makes every :data:`REMUX_TRACKS` file a remux."""


class UniqueMedia:
    """Copies of one small Matroska file, each with its own content.

    Args:
        folder: where the template is made.
        tracks: its tracks (default :data:`REMUX_TRACKS`).
        duration: seconds of media.
    """

    def __init__(self, folder: Path, tracks: tuple[T, ...] = REMUX_TRACKS, *, duration: float = 0.3) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        raw = make_media(folder / "raw.mkv", list(tracks), duration=duration, video_size="16x16")
        template = folder / "template.mkv"
        subprocess.run(["mkvmerge", "-q", "--title", _MARKER.decode(), "-o", str(template), str(raw)], check=True)
        self._data = template.read_bytes()
        if self._data.count(_MARKER) != 1:
            raise AssertionError(f"{template}: the title marker is not in the file exactly once")
        self._count = 0

    def content(self) -> bytes:
        """The next distinct content."""
        self._count += 1
        return self._data.replace(_MARKER, b"vpodaccept-%010d" % self._count, 1)

    def write(self, path: Path) -> Path:
        """Write one distinct file at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.content())
        return path

    def copies(self, folder: Path, count: int, *, prefix: str = "f") -> list[Path]:
        """``count`` distinct files ``{prefix}000.mkv`` ... in ``folder``."""
        return [self.write(folder / f"{prefix}{i:03d}.mkv") for i in range(count)]
