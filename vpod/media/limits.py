"""How long one external tool run may take, by what it does.

A probe (``mkvmerge -J``, ``ffprobe``) reads a file's headers: seconds, whatever the
file's size, so it gets its own short limit. A run that reads or writes the whole file
(a remux, a cover extraction, an in-place header edit, which may have to move header
elements) gets a base limit plus a number of seconds per GiB of the source, so a large
file is not killed for being large and a small one that hangs is not waited on for
hours. Built from ``[processing] probe_timeout_seconds``, ``tool_timeout_seconds`` and
``tool_timeout_seconds_per_gib`` (README, "Configuration").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from vpod.tomlschema import MAX_SECONDS

if TYPE_CHECKING:
    from vpod.config import ProcessingConfig

GIB = 1024**3

BASE_KEYS = "[processing] tool_timeout_seconds"
"""The key setting :attr:`ToolLimits.base_seconds`, as a timeout's message names it."""
SIZE_KEYS = "[processing] tool_timeout_seconds + tool_timeout_seconds_per_gib × the file's size"
"""The keys setting :meth:`ToolLimits.for_size`'s limit."""
ENCODE_KEYS = "[processing] tool_timeout_seconds + transcode_timeout_seconds_per_hour × the file's duration"
"""The keys setting :meth:`ToolLimits.for_encode`'s limit (of a file whose duration is known)."""
PROBE_KEYS = "[processing] probe_timeout_seconds"
"""The key setting :attr:`ToolLimits.probe_seconds`."""


class ToolLimits(NamedTuple):
    """Wall-clock limits of tool runs, in seconds.

    Attributes:
        probe_seconds: one ``mkvmerge -J`` or ``ffprobe`` run.
        base_seconds: any other run, before the size share; also the limit of a run
            that names no file.
        seconds_per_gib: added to ``base_seconds`` per GiB (2**30 bytes) of the file a
            run reads or writes.
        encode_seconds_per_hour: added to ``base_seconds`` per hour of the file's
            duration for an encode (:meth:`for_encode`).
    """

    probe_seconds: float
    base_seconds: float
    seconds_per_gib: float
    encode_seconds_per_hour: float = 28800.0

    @classmethod
    def uniform(cls, seconds: float) -> "ToolLimits":
        """The same limit for every run, whatever it does and whatever the file's size."""
        return cls(probe_seconds=seconds, base_seconds=seconds, seconds_per_gib=0.0)

    @classmethod
    def from_config(cls, processing: "ProcessingConfig") -> "ToolLimits":
        """The limits ``[processing]`` sets (``ProcessingConfig()``: the built-in defaults)."""
        return cls(
            probe_seconds=processing.probe_timeout_seconds,
            base_seconds=processing.tool_timeout_seconds,
            seconds_per_gib=processing.tool_timeout_seconds_per_gib,
            encode_seconds_per_hour=processing.transcode_timeout_seconds_per_hour,
        )

    def for_size(self, size_bytes: int) -> float:
        """The limit of a run over a file of ``size_bytes`` bytes:
        ``base_seconds + seconds_per_gib × size / GiB``, at most 7 days
        (:data:`vpod.tomlschema.MAX_SECONDS`, the longest wait the OS timers take)."""
        return min(self.base_seconds + self.seconds_per_gib * max(size_bytes, 0) / GIB, MAX_SECONDS)

    def for_encode(self, size_bytes: int, duration_seconds: float | None) -> float:
        """The limit of an encode (``[processing] transcode_timeout_seconds_per_hour``):
        ``base_seconds + encode_seconds_per_hour × duration / 3600 s``, at most 7 days; a
        file of unknown duration gets :meth:`for_size`'s limit."""
        if not duration_seconds or duration_seconds <= 0:
            return self.for_size(size_bytes)
        return min(self.base_seconds + self.encode_seconds_per_hour * duration_seconds / 3600.0, MAX_SECONDS)

    @staticmethod
    def encode_keys(duration_seconds: float | None) -> str:
        """The keys that set :meth:`for_encode`'s limit for a file of ``duration_seconds``
        (:data:`ENCODE_KEYS`; :data:`SIZE_KEYS` when the duration is unknown)."""
        return ENCODE_KEYS if duration_seconds and duration_seconds > 0 else SIZE_KEYS
