"""Did inotify have room for every folder? watchdog does not say.

watchdog adds one inotify watch per folder of a recursive tree and, for any folder but
the root, silently ignores a failure, including ``ENOSPC`` (the per-user limit
``fs.inotify.max_user_watches``, inotify(7)). Folders past the limit would then never
report a new file. :func:`watches_exhausted` asks the kernel directly: right after a
tree was registered, one more watch must still be possible, otherwise the
registration was probably cut short and the tree needs the polling observer.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from watchdog.observers.inotify_c import inotify_add_watch, inotify_init

_IN_ATTRIB = 0x00000004  # inotify(7): any event mask will do for a probe


def watches_exhausted(folder: Path) -> bool:
    """True when adding one more inotify watch fails with ENOSPC (or a new inotify
    instance with EMFILE): the per-user inotify limits are used up.

    Any other failure (no inotify, folder gone) returns False: not a limit problem.
    """
    fd = inotify_init()
    if fd == -1:
        return ctypes.get_errno() == errno.EMFILE
    try:
        wd = inotify_add_watch(fd, os.fsencode(folder), _IN_ATTRIB)
        return wd == -1 and ctypes.get_errno() == errno.ENOSPC
    finally:
        os.close(fd)  # closing the instance removes the probe watch
