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
:func:`clocks_under` proves it on this machine before a test relies on it.

Child processes inherit ``LD_PRELOAD``, so the node's tools run under the same clock;
``FAKETIME_DONT_RESET=1`` is not needed for a relative offset.

**libfaketime 0.9.10 (Debian 12) cannot run Python 3.11 this way.** Python 3.11's
``time.sleep`` waits with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, and that
libfaketime shifts the absolute deadline by the fake offset even under
``FAKETIME_DONT_FAKE_MONOTONIC=1``: a positive offset gives ``EINVAL`` (the deadline lands
in the past, as a negative time), a negative one a sleep ten minutes too long
(wolfcw/libfaketime issue #426, fixed after 0.9.10). Without that variable every sleep
hangs instead (monotonic reads as the faked wall clock). :func:`skewed_env` therefore
proves libfaketime first (:func:`libfaketime_usable`) and otherwise preloads
:data:`SHIFT_SOURCE`, a twenty-line library built here with ``cc`` that shifts only the
wall clock (``clock_gettime`` of ``CLOCK_REALTIME`` and ``CLOCK_REALTIME_COARSE``,
``gettimeofday``, ``time``: what ``time.time()``, ``datetime.now()`` and libc read) and
leaves every monotonic clock and every sleep alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

SHIFT_VARIABLE = "WALLCLOCK_SHIFT_SECONDS"
SHIFT_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
static long shift(void) { const char *s = getenv("WALLCLOCK_SHIFT_SECONDS"); return s ? atol(s) : 0; }
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift();
    return r;
}
int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return 0;
}
time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"""
"""A preload library that shifts the wall clock by ``$WALLCLOCK_SHIFT_SECONDS`` (whole
seconds) and nothing else."""

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


def shift_library(folder: Path) -> Path:
    """Build :data:`SHIFT_SOURCE` into ``folder/wallclock-shift.so`` (once).

    Raises:
        FileNotFoundError: no C compiler (``cc``).
        subprocess.CalledProcessError: it did not compile.
    """
    target = folder / "wallclock-shift.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise FileNotFoundError("no C compiler (cc) to build the wall-clock shift library")
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "wallclock-shift.c"
    source.write_text(SHIFT_SOURCE)
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(target), str(source), "-ldl"], check=True,
                   capture_output=True)
    return target


def shift_env(library: Path, offset_seconds: float) -> dict[str, str]:
    """Environment entries that preload :func:`shift_library`'s ``library``."""
    return {"LD_PRELOAD": str(library), SHIFT_VARIABLE: f"{offset_seconds:+.0f}"}


def clocks_under(env: dict[str, str], offset_seconds: float) -> tuple[bool, str]:
    """Whether a Python under ``env`` sees its wall clock shifted by about
    ``offset_seconds``, its monotonic clock equal to ours (within a second), and can
    sleep (``time.sleep(0.2)``, the call libfaketime 0.9.10 breaks on Python 3.11).

    Returns:
        (ok, what was seen, for a skip or failure message).
    """
    code = "import time; time.sleep(0.2); print(time.time(), time.monotonic())"
    before_wall, before_mono = time.time(), time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False, "time.sleep(0.2) did not return within 10 s"
    after_wall, after_mono = time.time(), time.monotonic()
    try:
        wall, mono = (float(v) for v in done.stdout.split())
    except ValueError:
        return False, f"could not read the clocks: {done.stdout!r} {done.stderr.strip()[-300:]!r}"
    wall_ok = before_wall + offset_seconds - 1 <= wall <= after_wall + offset_seconds + 1
    mono_ok = before_mono - 1 <= mono <= after_mono + 1
    seen = f"wall {wall - before_wall:+.1f} s, monotonic {mono - before_mono:+.1f} s"
    return wall_ok and mono_ok, seen


def libfaketime_usable(offset_seconds: float) -> tuple[bool, str]:
    """Whether the installed libfaketime shifts this Python's wall clock and leaves its
    monotonic clock and ``time.sleep`` working (see the module docstring)."""
    if faketime_library() is None:
        return False, "libfaketime is not installed"
    return clocks_under(faketime_env(offset_seconds), offset_seconds)


def skewed_env(offset_seconds: float, build: Path) -> tuple[dict[str, str], str]:
    """Environment entries for a node whose wall clock is off by ``offset_seconds``, its
    monotonic clock untouched: libfaketime when it works with this Python, else
    :func:`shift_library` (built in ``build``). Returns (entries, which one and why).

    Raises:
        RuntimeError: neither works here (the reason says why; the caller skips).
    """
    ok, seen = libfaketime_usable(offset_seconds)
    if ok:
        return faketime_env(offset_seconds), "libfaketime"
    try:
        library = shift_library(build)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"libfaketime unusable ({seen}) and no shift library: {exc}") from exc
    env = shift_env(library, offset_seconds)
    shifted, seen_shift = clocks_under(env, offset_seconds)
    if not shifted:
        raise RuntimeError(f"libfaketime unusable ({seen}); the shift library too ({seen_shift})")
    return env, f"wall-clock shift library (libfaketime: {seen})"
