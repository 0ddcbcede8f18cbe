"""Process exit statuses of the ``vpod`` command (documented in the README)."""

OK = 0
"""Success, or nothing to do."""
FILES_FAILED = 1
"""``vpod process``: one or more files failed."""
USAGE = 2
"""Bad command line or bad configuration (click uses 2 for usage errors too)."""
STOPPED_EARLY = 3
"""``vpod process``: the batch stopped at a failure under ``on_error = "fail"``."""
UNAVAILABLE = 69
"""A required tool (ffprobe, mkvmerge, ...) is missing: ``EX_UNAVAILABLE`` from sysexits.h."""
SOFTWARE = 70
"""The database could not be opened or written: ``EX_SOFTWARE`` from sysexits.h."""
ALREADY_RUNNING = 75
"""``vpod run``: another daemon already uses this database: ``EX_TEMPFAIL`` from sysexits.h."""
OSERR = 71
"""The HTTP listener cannot bind ``[http] listen``: ``EX_OSERR`` from sysexits.h."""
CHECK_FAILED = 1
"""``vpod doctor``: a blocking problem was found."""
NOT_RUNNING = 3
"""``vpod status``: no daemon is running for this database (as LSB's "program is not running")."""
