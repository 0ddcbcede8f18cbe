"""Exceptions shared across vpod, each carrying what a user needs to act on it."""

from __future__ import annotations

from pathlib import Path

from vpod.durations import duration_text
from vpod.outcomes import Reason


class VpodError(Exception):
    """Base of every error vpod raises on purpose."""


class ConfigError(VpodError):
    """A config or policy file is unreadable or holds a bad value.

    ``str(error)`` reads ``FILE: [section] key: reason``; the CLI prints it and exits 2.
    """

    def __init__(self, source: Path | str | None, key: str | None, reason: str) -> None:
        self.source = str(source) if source is not None else "<defaults>"
        self.key = key
        self.reason = reason
        where = f"{self.source}: {key}" if key else self.source
        super().__init__(f"{where}: {reason}")


class LeaseLost(VpodError):
    """The claim on a job passed to someone else: its lease ended (this node froze, or
    lost the database) and another node took the file, so this node must not replace
    the file or record an outcome for it. The message names the file."""


class UsageProblem(VpodError):
    """A bad command line or environment that click cannot see (``$VPOD_CPU_COUNT``,
    running as root without ``allow_root``); the CLI prints it and exits 2."""


class MediaError(VpodError):
    """A media file cannot be processed.

    ``permanent`` is True when retrying the same bytes cannot help (unreadable media,
    a format the tools reject); such files wait until their content changes.
    ``reason`` (:class:`vpod.outcomes.Reason`) is the short tag used in logs, the
    database and metrics.
    """

    def __init__(self, message: str, *, reason: Reason = Reason.ERROR, permanent: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent


class ToolError(MediaError):
    """An external tool failed: non-zero exit, or output vpod cannot understand.

    The message holds the command name, the exit status and the tool's stderr.
    """


class ToolMissing(ToolError):
    """An external tool is not installed or not on ``PATH``."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"{tool} not found on PATH; install it "
            f"(Debian/Ubuntu: apt-get install {package_for_tool(tool)})",
            reason=Reason.TOOL_MISSING,
            permanent=False,
        )
        self.tool = tool


class ToolTimeout(ToolError):
    """An external tool ran longer than its timeout and was killed."""

    def __init__(self, tool: str, timeout_seconds: float, set_by: str = "") -> None:
        """``set_by``: the config keys that set the limit (``[processing]
        tool_timeout_seconds``), named so the user knows what to raise; ``""`` for a
        fixed limit."""
        raise_it = f" (the limit: {set_by})" if set_by else ""
        super().__init__(
            f"{tool} did not finish within {duration_text(timeout_seconds)} and was killed{raise_it}",
            reason=Reason.TIMEOUT,
            permanent=False,
        )
        self.tool = tool


def package_for_tool(tool: str) -> str:
    """The Debian/Ubuntu package that ships ``tool`` (ffprobe → ffmpeg, mkv* → mkvtoolnix)."""
    return "mkvtoolnix" if tool.startswith("mkv") else "ffmpeg"


class StoreError(VpodError):
    """The store (the durable queue and results) cannot be opened, read or written:
    a bad path or permissions, a full disk, corruption, a database newer than this vpod.

    Backend-neutral: every Store implementation raises it (or :class:`StoreBusy`) and
    never its driver's own exceptions. Importable from :mod:`vpod.db.store`.
    """


class StoreBusy(StoreError):
    """Another process held the store's write lock beyond the configured busy timeout
    (``[database] busy_timeout_seconds``); trying again later can succeed."""
