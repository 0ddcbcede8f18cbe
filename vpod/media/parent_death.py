"""A tool ends when the vpod that started it ends, however vpod ends (even SIGKILL).

Linux's parent-death signal does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child,
between ``fork`` and ``exec``, makes the kernel kill the child when its parent goes
(prctl(2), ``PR_SET_PDEATHSIG``). The setting survives ``execve`` of an ordinary program
(it is cleared only for set-user-ID/set-group-ID programs or ones with file
capabilities, which the media tools are not), and is not inherited by the tool's own
children: mkvmerge, mkvpropedit, ffmpeg and ffprobe start none.

Two details of the kernel's rule:

* "Parent" is the *thread* that forked the child: the signal comes when that thread
  exits, even while the process lives on. vpod starts every tool from the thread that
  waits for it (a daemon worker, a ``vpod process`` pool thread, the main thread of
  ``inspect``/``plan``/``doctor``), and those threads never end while their tool runs:
  a daemon worker retires only between files, pool threads end when the pool shuts
  down after its last file.
* If vpod dies after the fork but before the child's ``prctl`` call, no signal comes
  (the child already has a new parent). The child therefore compares its parent pid
  with vpod's afterwards and exits at once if they differ.

Why ``preexec_fn`` (Python code run in the child between fork and exec): it is the one
place where both steps can happen. Python's documentation warns that it is not safe in
threaded programs because the child could deadlock on a lock another thread held at
fork time; the function below takes no lock: it only calls a libc function resolved in
the parent beforehand (no ``dlopen`` in the child) and ``os.getppid``/``os._exit``, and
CPython resets its own locks in the child. The cost: ``subprocess`` must ``fork``
instead of ``vfork``, about 1-2 ms more per tool start for a daemon-sized process
(measured here: 0.4 ms → 1.7-2.6 ms), against 50-100 ms for the fastest tool run.
``setpriv --pdeathsig`` (util-linux) as a wrapper would cost an extra exec (about 1 ms
here as well) and cannot close the race above.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from typing import Any, Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@functools.cache
def _prctl() -> Any:
    """libc's ``prctl``, resolved once in the parent; ``None`` off Linux or without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that makes the child die (SIGKILL)
    when the calling thread or its process ends; ``None`` where Linux's ``prctl`` is not
    available (the child is then started without it).

    Call it in the thread that starts the child, right before ``Popen``: it records
    this process's pid for the race check described in the module docstring.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def in_child() -> None:
        # A failing prctl (a seccomp filter) leaves the tool without the guarantee
        # rather than failing every tool run: its return value is not checked.
        prctl(PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:  # vpod died before prctl took effect
            os._exit(1)

    return in_child
