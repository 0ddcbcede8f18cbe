"""Process exit statuses of the ``vpod`` command (documented in the README, "Exit statuses").

:class:`ExitCode` is the one list of them; :data:`vpod.cli.exits.EXIT_CODES` maps the
exceptions a command lets through to them.
"""

from __future__ import annotations

import signal
from enum import IntEnum

SIGNAL_BASE = 128
"""``vpod process`` stopped by signal N exits ``SIGNAL_BASE + N`` (the shells' convention)."""


class ExitCode(IntEnum):
    """A status ``vpod`` exits with. Some numbers mean different things for different
    commands; those members are aliases of one value (``CHECK_FAILED`` is
    ``FILES_FAILED``, ``NOT_RUNNING`` is ``STOPPED_EARLY``). The sysexits.h values come
    from sysexits(3)."""

    OK = 0
    """Success, or nothing to do."""
    FILES_FAILED = 1
    """``vpod process``: one or more files failed; ``vpod inspect`` / ``vpod plan``: the
    file cannot be read as media."""
    CHECK_FAILED = 1
    """``vpod doctor``: a blocking problem was found; ``vpod retry``: a path was unknown or
    not failed; ``vpod resume``: not confirmed in time."""
    USAGE = 2
    """Bad command line or bad configuration (click uses 2 for usage errors too)."""
    STOPPED_EARLY = 3
    """``vpod process``: the batch stopped at a failure under ``on_error = "fail"``."""
    NOT_RUNNING = 3
    """``vpod status`` / ``vpod resume``: no daemon is running for this database (as LSB's
    "program is not running")."""
    UNAVAILABLE = 69
    """A required tool (ffprobe, mkvmerge, ...) is missing: ``EX_UNAVAILABLE``."""
    SOFTWARE = 70
    """The database could not be opened or written, or a daemon thread died of a bug:
    ``EX_SOFTWARE``."""
    OSERR = 71
    """The HTTP listener cannot bind ``[http] listen``: ``EX_OSERR``."""
    ALREADY_RUNNING = 75
    """``vpod run``: another daemon already uses this database: ``EX_TEMPFAIL``."""
    INTERRUPTED = SIGNAL_BASE + signal.SIGINT
    """130: a command other than ``vpod run`` / ``vpod process`` was interrupted by Ctrl-C
    (:class:`vpod.cli.exits.ExitOnError`; ``vpod process`` exits ``SIGNAL_BASE + N`` for
    any signal N by its own table)."""

