"""Another real process that holds a file's ``flock`` (as a vpod node frozen or cut off
mid-file does): for the tests of vpod.safety's rule under a claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HOLD = (
    "import fcntl, sys, time\n"
    "f = open(sys.argv[1], sys.argv[2]); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)"
)


def hold_flock(path: Path, mode: str = "rb") -> subprocess.Popen[bytes]:
    """Start a process that opens ``path`` (``rb``; ``r+b``: for writing) and keeps its
    exclusive ``flock``; returns once the lock is held. The caller kills it."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    return holder
