"""Stand-ins for external tools on PATH (the tools are outside vpod's control)."""

from __future__ import annotations

import shutil
from pathlib import Path


def slow_tool(folder: Path, tool: str, seconds: float) -> Path:
    """A ``tool`` on PATH in ``folder`` that sleeps ``seconds``, then runs the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    real = shutil.which(tool)
    script = folder / tool
    script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return folder


def breakable_tool(folder: Path, tool: str, flag: Path) -> Path:
    """A ``tool`` that fails (exit 2, a message on stderr) while ``flag`` exists, else runs the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    real = shutil.which(tool)
    script = folder / tool
    script.write_text(
        f'#!/bin/sh\nif [ -e "{flag}" ]; then echo "Error: simulated failure ({flag} exists)" >&2; exit 2; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return folder
