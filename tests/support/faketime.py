"""Run one vpod node with its wall clock off by minutes, its monotonic clock untouched.

libfaketime (Debian package ``libfaketime``, with the ``faketime`` wrapper in package
``faketime``) is preloaded into the node's Python: ``FAKETIME="+10m"`` shifts what
``time.time()`` (``clock_gettime(CLOCK_REALTIME)``) returns by ten minutes.

By default libfaketime fakes the monotonic clocks too (with a relative offset,
``CLOCK_MONOTONIC`` then reads as the faked wall clock: checked on libfaketime 0.9.10,
where ``time.monotonic()`` printed the same value as ``time.time()``).
``FAKETIME_DONT_FAKE_MONOTONIC=1`` turns that off: README of libfaketime 0.9.10 (Debian:
/usr/share/doc/libfaketime/README.gz, "Usage basics", the Java example) and upstream's
test suite (wolfcw/libfaketime, the script that "Checks that setting DONT_FAKE_MONOTONIC
actually prevent libfaketime from faking monotonic clocks"; ``DONT_FAKE_MONOTONIC`` is
the variable's older name).
:func:`monotonic_untouched` proves it on this machine before a test relies on it.

Child processes inherit ``LD_PRELOAD``, so the node's tools run under the same clock;
``FAKETIME_DONT_RESET=1`` is not needed for a relative offset.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

LIBRARY_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"),
    Path("/usr/lib/faketime/libfaketimeMT.so.1"),
    Path("/usr/local/lib/faketime/libfaketimeMT.so.1"),
)
"""Where Debian (and ``make install``) put the multi-threaded library: vpod has threads."""


def faketime_library() -> Path | None:
    """The installed ``libfaketimeMT.so.1``, or ``None`` when libfaketime is missing."""
    return next((p for p in LIBRARY_CANDIDATES if p.is_file()), None)


def faketime_env(offset_seconds: float) -> dict[str, str]:
    """Environment entries that shift the wall clock by ``offset_seconds`` (+ ahead,
    - behind) and leave ``CLOCK_MONOTONIC`` alone.

    Raises:
        FileNotFoundError: libfaketime is not installed.
    """
    library = faketime_library()
    if library is None:
        raise FileNotFoundError("libfaketime is not installed (Debian package libfaketime)")
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME": f"{offset_seconds:+.0f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # libfaketime also fakes stat() times by default; the node must see the real
        # mtimes the other nodes and the filesystem see.
        "NO_FAKE_STAT": "1",
    }


def monotonic_untouched(offset_seconds: float) -> tuple[bool, str]:
    """Whether a Python under :func:`faketime_env` sees its wall clock shifted by about
    ``offset_seconds`` and its monotonic clock equal to ours (within a second).

    Returns:
        (ok, what was seen, for a skip or failure message).
    """
    code = "import time; print(time.time(), time.monotonic())"
    env = {**faketime_env(offset_seconds)}
    before_wall, before_mono = time.time(), time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    after_wall, after_mono = time.time(), time.monotonic()
    try:
        wall, mono = (float(v) for v in done.stdout.split())
    except ValueError:
        return False, f"could not read the clocks under libfaketime: {done.stdout!r} {done.stderr!r}"
    wall_ok = before_wall + offset_seconds - 1 <= wall <= after_wall + offset_seconds + 1
    mono_ok = before_mono - 1 <= mono <= after_mono + 1
    seen = f"wall {wall - before_wall:+.1f} s, monotonic {mono - before_mono:+.1f} s"
    return wall_ok and mono_ok, seen
