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
