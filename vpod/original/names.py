"""Sonarr's and Radarr's language names as ISO 639-2/B codes.

The *arr applications name a language by an ``id`` and an English ``name`` of their
own list (Radarr and Sonarr, ``src/NzbDrone.Core/Languages/Language.cs``: ``Unknown``
= 0, ``English`` = 1, ..., ``Portuguese (Brazil)``, ``Spanish (Latino)``, ``Flemish``,
``Swiss German``, and the pseudo-languages ``Any`` = -1 and ``Original`` = -2). The ids
differ between the two applications and their versions; the names do not, so vpod
reads the name.
"""

from __future__ import annotations

from vpod.policy.languages import LanguageError, normalize_language

NO_LANGUAGE = frozenset({"", "unknown", "any", "original"})
"""Names that are no language: ``Unknown`` (not known to the *arr), and the
pseudo-languages ``Any`` and ``Original`` of its quality and language profiles."""

ALIASES = {
    # ISO 639-2's English names differ from the *arr's for these; the 639-2 code of the
    # same language (a variety of Chinese is ISO 639-2 "chi", which has no finer code).
    "khmer": "khm",  # ISO 639-2: "Central Khmer"
    "cantonese": "chi",
    "mandarin": "chi",
}
"""Names the ISO 639-2 table (:mod:`vpod.policy.languages`) does not know under the
*arr's spelling."""


def language_code(name: str | None) -> str | None:
    """The ISO 639-2/B code of an *arr language name, or ``None`` for no answer.

    ``None`` for :data:`NO_LANGUAGE` and for names neither the ISO 639-2 table nor
    :data:`ALIASES` knows. A regional variant counts as its language: ``Portuguese
    (Brazil)`` is ``por``, ``Spanish (Latino)`` is ``spa`` (Matroska's ``Language``
    element holds the 639-2 code only; the region would be ``LanguageIETF``'s).
    ``Flemish`` is ``dut``: ISO 639-2 lists "Dutch; Flemish" as one language.
    """
    if name is None:
        return None
    key = name.strip().casefold()
    if key in NO_LANGUAGE:
        return None
    for candidate in (key, key.split("(", 1)[0].strip()):
        if candidate in ALIASES:
            return ALIASES[candidate]
        try:
            return normalize_language(candidate)
        except LanguageError:
            continue
    return None
