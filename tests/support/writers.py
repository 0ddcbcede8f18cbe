"""Another real process that keeps a file open for writing (a download still running)."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_WRITE = "import sys; f = open(sys.argv[1], 'ab'); print('open', flush=True); sys.stdin.read()"


@contextmanager
def written_elsewhere(path: Path) -> Iterator[None]:
    """While inside, another process holds ``path`` open for appending; it closes the
    file and exits on leaving."""
    writer = subprocess.Popen([sys.executable, "-c", _WRITE, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        yield
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(10)
