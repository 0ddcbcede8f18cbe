"""ISO 639-2 language codes: parse what users write, normalize what files carry.

The table is ``vpod/data/iso_639-2.json`` from Debian's iso-codes project (LGPL-2.1+,
https://salsa.debian.org/iso-codes-team/iso-codes), itself taken from the ISO 639-2
registration authority (Library of Congress). Matroska's ``Language`` element holds
ISO 639-2/B codes (Matroska specification, RFC 9559 §5.1.4.1.19), so that is vpod's
canonical form: ``ger`` not ``deu``, ``fre`` not ``fra``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

UNDETERMINED = "und"
"""ISO 639-2 code for "no language known"; also what Matroska assumes when the element is absent."""


class LanguageError(ValueError):
    """A language string is not an ISO 639-2 or 639-1 code or an ISO 639-2 English name."""


class _Table(NamedTuple):
    by_key: dict[str, str]  # lower-case code or name -> ISO 639-2/B code
    names: dict[str, str]  # ISO 639-2/B code -> English name


def _table_text(name: str = "iso_639-2.json") -> str:
    """The text of ``vpod/data/NAME`` (``iso_639-2.json`` by default): read from the file beside vpod's modules
    (an installed or checked-out vpod); only where there is no such file (vpod imported
    from a zip archive) through ``importlib.resources``, whose import alone took 8 ms of
    every ``vpod process`` start (contrib/bench/startup.py)."""
    path = Path(__file__).parent.parent / "data" / name
    try:
        return path.read_text("utf-8")
    except OSError:  # inside a zip archive: NotADirectoryError
        from importlib import resources

        return resources.files("vpod.data").joinpath(name).read_text("utf-8")


@lru_cache(maxsize=1)
def _table() -> _Table:
    raw = json.loads(_table_text())
    by_key: dict[str, str] = {}
    names: dict[str, str] = {}
    full_names: dict[str, str] = {}
    short_owners: dict[str, set[str]] = {}
    modern: dict[str, str] = {}
    for entry in raw["639-2"]:
        code_b = entry.get("bibliographic", entry["alpha_3"])
        names[code_b] = entry["name"]
        for code in (entry["alpha_3"], entry.get("bibliographic"), entry.get("alpha_2")):
            if code:
                by_key[code.lower()] = code_b
        # "Spanish; Castilian" is also "Spanish" and "Castilian"; "Greek, Modern
        # (1453-)" is also "Greek", but "English, Middle" must not take "English".
        for part in entry["name"].split(";"):
            part = part.strip().lower()
            full_names.setdefault(part, code_b)
            short = part.split(",")[0].split("(")[0].strip()
            if short != part:
                short_owners.setdefault(short, set()).add(code_b)
                if "modern" in part:  # "Greek" means modern Greek, not Ancient Greek
                    modern.setdefault(short, code_b)
    for name, code_b in full_names.items():
        by_key.setdefault(name, code_b)
    for name, owners in short_owners.items():
        if len(owners) == 1:
            by_key.setdefault(name, next(iter(owners)))
        elif name in modern:
            by_key.setdefault(name, modern[name])
    return _Table(by_key=by_key, names=names)


def normalize_language(value: str) -> str:
    """Return the ISO 639-2/B code for a code or English name a user wrote.

    Accepts ISO 639-2/B (``ger``), ISO 639-2/T (``deu``), ISO 639-1 (``de``) and
    English names (``German``), case-insensitively; ``und`` stays ``und``.

    Raises:
        LanguageError: ``value`` matches none of these.
    """
    key = value.strip().lower()
    code = _table().by_key.get(key)
    if code is None:
        raise LanguageError(
            f"{value!r} is not an ISO 639-2 code, an ISO 639-1 code or an English language name"
        )
    return code


def track_language(language: str | None, language_ietf: str | None = None) -> str:
    """The ISO 639-2/B code of a track's language as a file carries it.

    Files carry 639-2/B, 639-2/T, 639-1, BCP 47 tags (``pt-BR``, Matroska's
    ``LanguageIETF``) or nothing. Never raises: an unknown value comes back lower-cased
    so it still compares equal to itself, and a missing one is ``und``.
    """
    for candidate in (language, language_ietf):
        if not candidate:
            continue
        primary = candidate.strip().split("-")[0].split("_")[0].lower()
        if not primary or primary == UNDETERMINED:
            continue
        return _table().by_key.get(primary, primary)
    return UNDETERMINED


def language_name(code: str) -> str:
    """English name of an ISO 639-2/B code, or the code itself when unknown."""
    return _table().names.get(code, code)


@lru_cache(maxsize=1)
def _legacy_of_extlangs() -> dict[str, str]:
    table: dict[str, str] = json.loads(_table_text("bcp47_legacy_language.json"))["legacy"]
    return table


def legacy_language(tag: str) -> str:
    """The ISO 639-2/B code mkvmerge and mkvpropedit write to Matroska's legacy
    ``Language`` element for the BCP 47 tag ``tag`` they write to ``LanguageBCP47``.

    mkvmerge's rule (MKVToolNix ``src/common/bcp47.cpp``,
    ``language_c::get_closest_iso639_2_alpha_3_code``): the primary language subtag's
    own ISO 639-2 code (``pt-BR`` → ``por``, ``zh-Hant`` → ``chi``); for a language
    with none that is an extended language subtag of the IANA Language Subtag Registry,
    the code of its prefix, its macrolanguage (``yue``, ``cmn`` → ``chi``; ``arb`` →
    ``ara``; ``ase`` → ``sgn``); else ``und`` (``pes``, ``ekk``). The extlang part is
    ``vpod/data/bcp47_legacy_language.json``, read from mkvmerge v74 by
    ``contrib/data/make_legacy_language_table.py``. Never raises: anything unknown is ``und``.
    """
    primary = tag.strip().split("-")[0].split("_")[0].lower()
    code = _table().by_key.get(primary) if len(primary) in (2, 3) else None
    if code is not None:
        return code
    return _legacy_of_extlangs().get(primary, UNDETERMINED)


def languages_agree(legacy: str | None, tag: str | None) -> bool:
    """Whether a Matroska track's legacy ``Language`` (``None``: absent) and its
    ``LanguageBCP47`` (``None``: absent) are the pair mkvmerge writes for the same
    language, so that no tool need set them again: ``chi`` with ``yue`` agrees (see
    :func:`legacy_language`), ``eng`` with ``yue`` does not. Without a BCP 47 tag there
    is nothing to disagree with.
    """
    if not tag:
        return True
    return track_language(legacy) == legacy_language(tag)
