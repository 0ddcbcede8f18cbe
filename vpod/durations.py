"""Durations as people read them in messages: ``1.3 s``, ``10 min``, ``2 h 13 min``."""

from __future__ import annotations


def duration_text(seconds: float) -> str:
    """``seconds`` for a message: under a minute to a tenth (``1.3 s``, ``30 s``); under
    an hour in minutes and seconds (``10 min``, ``4 min 5 s``); then hours and minutes
    (``2 h 13 min``, ``1 h``); from a day on, days and hours (``7 d``, ``1 d 2 h``).
    Rounded, never more than two units (a limit's last seconds say nothing)."""
    if seconds < 59.95:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + " s"
    total = round(seconds)
    for big, big_unit, small, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s")):
        if total >= big or big == 60:
            count, rest = divmod(total, big)
            part = round(rest / small)
            if part * small >= big:  # 59.6 min rounds to 60: one more hour
                count, part = count + 1, 0
            return f"{count} {big_unit}" + (f" {part} {small_unit}" if part else "")
    raise AssertionError("unreachable")
