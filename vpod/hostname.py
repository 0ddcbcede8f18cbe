"""This machine's host name, without the ``socket`` module.

``socket.gethostname()`` would import ``socket`` (and ``_socket``, ``array``) into every
``vpod process`` just to read a name the kernel already gives through ``uname(2)``: the
GNU C library implements ``gethostname()`` as a call to ``uname(2)`` that copies its
``nodename`` field (gethostname(2), "C library/kernel differences"), so both give the
same text.
"""

from __future__ import annotations

import os


def host_name() -> str:
    """This machine's host name (``uname(2)`` ``nodename``; what ``socket.gethostname()``
    returns on Linux)."""
    return os.uname().nodename
