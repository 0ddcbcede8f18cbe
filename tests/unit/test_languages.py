"""ISO 639-2 normalization (table: Debian iso-codes)."""

from __future__ import annotations

import pytest

from vpod.policy.languages import LanguageError, language_name, normalize_language, track_language


@pytest.mark.parametrize(
    "given, code",
    [
        ("eng", "eng"), ("en", "eng"), ("English", "eng"), ("ENGLISH", "eng"),
        ("ger", "ger"), ("deu", "ger"), ("de", "ger"), ("German", "ger"),
        ("fra", "fre"), ("fre", "fre"), ("fr", "fre"),
        ("zho", "chi"), ("zh", "chi"), ("Chinese", "chi"),
        ("jpn", "jpn"), ("ja", "jpn"), ("Japanese", "jpn"),
        ("Spanish", "spa"), ("Castilian", "spa"), ("Greek", "gre"),
        ("und", "und"),
    ],
)
def test_normalize(given, code):
    assert normalize_language(given) == code


@pytest.mark.parametrize("bad", ["", "xx", "klingonese", "en-US", "e"])
def test_unknown_is_rejected(bad):
    with pytest.raises(LanguageError):
        normalize_language(bad)


def test_track_language_is_lenient():
    assert track_language("deu") == "ger"
    assert track_language(None, "pt-BR") == "por"
    assert track_language("und", "ja") == "jpn"
    assert track_language(None) == "und"
    assert track_language("qaa") == "qaa"  # reserved for local use: kept as is
    assert track_language("xyz-weird") == "xyz"


def test_language_name():
    assert language_name("ger") == "German"
    assert language_name("zzz") == "zzz"
