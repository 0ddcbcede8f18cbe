"""Stand-ins for ``mkvmerge`` that one node finds first on its ``PATH``.

vpod runs its tools by name, looked up on ``PATH`` (:func:`vpod.media.tools.tool_path`,
``shutil.which``), so a folder put first on one node's ``PATH`` changes that node's
tools only. Each wrapper passes a probe (``mkvmerge -J``, ``--version``) straight to
the real tool and acts only on a write (an ``-o``/``--output`` argument):

* :func:`slow_tools`: the write is slow but alive. It prints mkvmerge's own
  ``--gui-mode`` progress lines (``#GUI#progress N%``, mkvmerge(1) "--gui-mode") every
  ``step`` seconds for ``seconds``, then becomes the real mkvmerge (``exec``). A node
  killed during that time leaves its temp file behind, mid-file.
* :func:`hung_tools`: the write hangs. It ignores SIGTERM (and SIGINT, SIGHUP),
  prints nothing and writes nothing, for ever: only SIGKILL ends it.

Each write run appends ``PID ARGS`` to ``folder / "runs.log"`` (:func:`tool_runs`).
Each wrapper is one Python process (``os.execv`` into the real tool), so the
parent-death signal vpod sets on a tool (:mod:`vpod.media.parent_death`) applies to it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

_COMMON = '''\
#!{python}
import os, signal, sys, time
REAL = {real!r}
writes = any(a in ("-o", "--output") or a.startswith("--output=") for a in sys.argv[1:])
if not writes:
    os.execv(REAL, [REAL, *sys.argv[1:]])
with open({runs!r}, "a") as note:
    note.write("%d %s\\n" % (os.getpid(), " ".join(sys.argv[1:])))
'''

_SLOW = _COMMON + '''\
gui = "--gui-mode" in sys.argv[1:]
end = time.monotonic() + {seconds}
percent = 0
while time.monotonic() < end:
    print("#GUI#progress %d%%" % percent if gui else "Progress: %d%%" % percent, flush=True)
    percent = min(percent + 1, 50)
    time.sleep({step})
os.execv(REAL, [REAL, *sys.argv[1:]])
'''

_HUNG = _COMMON + '''\
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, signal.SIG_IGN)
while True:
    time.sleep(3600)
'''


def _install(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return folder


def _real(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed")
    return found


def slow_tools(folder: Path, *, seconds: float, step: float = 0.2, tool: str = "mkvmerge") -> Path:
    """A folder holding a slow ``tool`` (default mkvmerge): each write spends
    ``seconds`` printing progress before the real work. Put it first on a node's PATH.

    Returns:
        ``folder``.
    """
    return _install(folder, tool, _SLOW.format(python=sys.executable, real=_real(tool), runs=str(folder / "runs.log"),
                                               seconds=seconds, step=step))


def hung_tools(folder: Path, *, tool: str = "mkvmerge") -> Path:
    """A folder holding a ``tool`` whose writes hang for ever, deaf to SIGTERM.

    Returns:
        ``folder``.
    """
    return _install(folder, tool, _HUNG.format(python=sys.executable, real=_real(tool), runs=str(folder / "runs.log")))


def tool_runs(folder: Path) -> list[tuple[int, str]]:
    """(pid, arguments) of every write run started from ``folder``'s wrappers so far."""
    log = folder / "runs.log"
    if not log.exists():
        return []
    runs = []
    for line in log.read_text().splitlines():
        pid, _, args = line.partition(" ")
        runs.append((int(pid), args))
    return runs


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def path_with(folder: Path, path: str) -> str:
    """``PATH`` with ``folder`` first."""
    return f"{folder}:{path}"
