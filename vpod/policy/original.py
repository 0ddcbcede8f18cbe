"""The original language of a file's content, as the planner receives it.

Where it comes from is decided outside the planner (``vpod.original``: a Sonarr or
Radarr instance, a track's ``FlagOriginal``, the selected policy's
``original_language``); the planner only needs the answer and its source, to expand
``"original"`` in language lists and to explain its choices.
"""

from __future__ import annotations

from typing import NamedTuple

ORIGINAL = "original"
"""The word that stands for the original language in a policy's language lists."""


class OriginalLanguage(NamedTuple):
    """``code``: ISO 639-2/B (``kor``). ``source``: where it was learned, for people:
    ``sonarr_webhook``, ``radarr_webhook``, ``radarr``, ``sonarr``, ``flag_original`` or ``policy``. ``detail``: more of the
    source when useful (the *arr instance's name, the series' title), or ``""``."""

    code: str
    source: str
    detail: str = ""

    def describe(self) -> str:
        """``kor (from radarr: Parasite)``: the code and where it came from."""
        source = f"{self.source}: {self.detail}" if self.detail else self.source
        return f"{self.code} (from {source})"
