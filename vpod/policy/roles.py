"""Track roles: forced, SDH, commentary, audio description, read from flags and titles.

A role is known from the track's Matroska flag (RFC 9559 §5.1.4.1: FlagForced,
FlagHearingImpaired, FlagVisualImpaired, FlagCommentary, FlagTextDescriptions; the
same ffprobe dispositions for other containers) or from its title matching one of the
policy's patterns. Flags win: a title never clears a flag.

Title patterns match whole words, case-insensitively, with any run of characters that
are not letters or digits counting as one space: ``"sdh"`` matches "English (SDH)" and
``"hearing impaired"`` matches "Hearing-Impaired", but ``"cc"`` does not match
"Occitan". A match right after the word "non", "no" or "not" does not count: "Non-SDH"
and "No Commentary" name the opposite of the role. Which patterns apply to which track type:

============================  ==============  =======================  ===========
role (flag)                   patterns key    track types by title     policy word
============================  ==============  =======================  ===========
forced                        forced_patterns subtitle                 forced
hearing_impaired              sdh_patterns    subtitle                 SDH
commentary                    commentary_…    audio, subtitle          commentary
visual_impaired               description_…   audio                    description
text_descriptions             (flag only)     —                        —
============================  ==============  =======================  ===========
"""

from __future__ import annotations

import re
from typing import NamedTuple

from vpod.media.model import Track
from vpod.policy.policy import Policy

ROLE_FLAGS = ("forced", "hearing_impaired", "visual_impaired", "commentary", "text_descriptions")
"""The flags that carry a role, as :class:`~vpod.media.model.Track` attributes."""

_TITLE_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    # role flag: (policy key of its title patterns, track types a title may give it to)
    "forced": ("forced_patterns", ("subtitle",)),
    "hearing_impaired": ("sdh_patterns", ("subtitle",)),
    "commentary": ("commentary_patterns", ("audio", "subtitle")),
    "visual_impaired": ("description_patterns", ("audio",)),
}
_NOT_WORD = re.compile(r"[\W_]+")
_NEGATIONS = ("non", "no", "not")


def _words(text: str) -> str:
    return " " + _NOT_WORD.sub(" ", text.casefold()).strip() + " "


def title_match(title: str | None, patterns: tuple[str, ...]) -> str | None:
    """The first of ``patterns`` found as whole words in ``title``, or ``None``."""
    if not title:
        return None
    words = _words(title)
    for pattern in patterns:
        wanted = _words(pattern)
        if not wanted.strip():
            continue
        start = words.find(wanted)
        while start >= 0:
            before = words[:start].split()
            if not before or before[-1] not in _NEGATIONS:
                return pattern
            start = words.find(wanted, start + 1)
    return None


class Roles(NamedTuple):
    """The roles of one track. Each attribute is ``""`` when the track does not have the
    role, else how it is known: ``"flag"`` or ``"title"``; :meth:`why` explains one."""

    track: Track
    forced: str = ""
    hearing_impaired: str = ""
    visual_impaired: str = ""
    commentary: str = ""
    text_descriptions: str = ""
    matched: tuple[tuple[str, str, str], ...] = ()
    """(role flag, patterns key, pattern) for each role known from the title."""

    @property
    def secondary_audio(self) -> bool:
        """Commentary or audio description: never the default audio track."""
        return bool(self.commentary or self.visual_impaired)

    @property
    def full_subtitle(self) -> bool:
        """A subtitle that is neither forced, SDH, commentary nor text descriptions."""
        return not (self.forced or self.hearing_impaired or self.commentary or self.text_descriptions)

    @property
    def sdh(self) -> bool:
        """SDH: hearing impaired or text descriptions (both describe sounds as text)."""
        return bool(self.hearing_impaired or self.text_descriptions)

    def names(self) -> tuple[str, ...]:
        """Role names for people (``forced``, ``sdh``, ``commentary``, ``description``,
        ``text_descriptions``), for ``vpod inspect``."""
        shown = {"hearing_impaired": "sdh", "visual_impaired": "description"}
        return tuple(shown.get(flag, flag) for flag in ROLE_FLAGS if getattr(self, flag))

    def why(self, flag: str) -> str:
        """``title 'English SDH' matches sdh_patterns "sdh"`` or ``FlagHearingImpaired set``."""
        for role, key, pattern in self.matched:
            if role == flag:
                return f'title {self.track.title!r} matches {key} "{pattern}"'
        return f"{flag} flag set"


def track_roles(track: Track, policy: Policy) -> Roles:
    """The roles of ``track`` under ``policy``'s title patterns (flags first)."""
    values: dict[str, str] = {}
    matched: list[tuple[str, str, str]] = []
    for flag in ROLE_FLAGS:
        if getattr(track, flag):
            values[flag] = "flag"
            continue
        rule = _TITLE_RULES.get(flag)
        if rule is None or track.type not in rule[1]:
            continue
        pattern = title_match(track.title, getattr(policy, rule[0]))
        if pattern is not None:
            values[flag] = "title"
            matched.append((flag, rule[0], pattern))
    return Roles(track=track, matched=tuple(matched), **values)
