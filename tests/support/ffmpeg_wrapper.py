"""An ``ffmpeg`` first on ``PATH`` that changes only vpod's encodes, for tests of what
happens while (or after) a real encode runs. The real ffmpeg still does every run.

:func:`ffmpeg_wrapper` writes the script; :data:`REAL_TIME` is the body that makes an
encode read its input at the rate it plays (``-re``, ffmpeg(1) "Advanced options"): a
clip of N seconds then takes N seconds to encode, long enough to land a stop or to drop
other files meanwhile, whatever the machine's speed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REAL_TIME = "at = ARGS.index('-i')\nos.execv(REAL, [REAL, *ARGS[:at], '-re', *ARGS[at:]])\n"
"""A :func:`ffmpeg_wrapper` body: the encode runs with ``-re`` before its first input."""


def ffmpeg_wrapper(folder: Path, body: str) -> Path:
    """Write ``folder/ffmpeg``: a Python script that, for an encode into a vpod temp file
    (its last argument ``file:…/.vpod-tmp-…``, with per-stream ``-c:0``), runs ``body``
    with ``ARGS`` (its arguments), ``OUT`` (the temp file) and ``REAL`` (the real
    ffmpeg); every other run is the real ffmpeg (``os.execv``: the same process, so
    vpod's ToolRunner kills it as it would the real one). Returns ``folder``, to put
    first on ``PATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ffmpeg"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, subprocess, sys\n"
        f"REAL = {shutil.which('ffmpeg')!r}\n"
        "ARGS = sys.argv[1:]\n"
        "OUT = ARGS[-1][len('file:'):] if ARGS and ARGS[-1].startswith('file:') else ''\n"
        "if not os.path.basename(OUT).startswith('.vpod-tmp-') or '-c:0' not in ARGS:\n"
        "    os.execv(REAL, [REAL, *ARGS])\n" + body
    )
    script.chmod(0o755)
    return folder
