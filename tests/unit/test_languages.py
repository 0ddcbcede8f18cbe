"""ISO 639-2 normalization (table: Debian iso-codes)."""

from __future__ import annotations

import pytest

from vpod.policy.languages import (
    LanguageError,
    language_name,
    languages_agree,
    legacy_language,
    normalize_language,
    track_language,
)


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


@pytest.mark.parametrize(
    "tag, legacy",
    [
        ("pt-BR", "por"), ("zh-Hant-TW", "chi"), ("en", "eng"), ("und", "und"),
        # ISO 639-3 languages that are IANA extended language subtags: their prefix's code
        ("yue", "chi"), ("cmn-Hans-CN", "chi"), ("nan", "chi"), ("arb", "ara"), ("swh", "swa"),
        ("zsm", "may"), ("ase", "sgn"),
        # ISO 639-3 languages that are not: und, as mkvmerge writes (pes is Persian, ekk Estonian)
        ("pes", "und"), ("ekk", "und"), ("xyz", "und"),
    ],
)  # fmt: skip
def test_legacy_language_is_what_mkvmerge_writes(tag, legacy):
    assert legacy_language(tag) == legacy


def test_languages_agree_as_mkvmerge_pairs_them():
    assert languages_agree("chi", "yue") and languages_agree("ara", "arb") and languages_agree("und", "pes")
    assert languages_agree("por", "pt-BR") and languages_agree("zho", "zh") and languages_agree("eng", None)
    assert not languages_agree("eng", "yue")  # a real disagreement: set again
    assert not languages_agree("per", "pes")  # mkvmerge would write und
    assert not languages_agree("ger", "en")


def test_language_name():
    assert language_name("ger") == "German"
    assert language_name("zzz") == "zzz"


def test_table_is_read_from_a_zip_archive_too(tmp_path):
    # The table is read from the file beside vpod's modules; vpod imported from a zip
    # archive has no such file and reads it through importlib.resources instead.
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    import vpod

    package = Path(vpod.__file__).parent
    archive = tmp_path / "vpod.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, Path("vpod") / path.relative_to(package))
    script = (
        "import vpod.policy.languages as languages\n"
        "assert languages.__file__.startswith(%r), languages.__file__\n"
        "print(languages.normalize_language('German'), languages.language_name('jpn'), languages.legacy_language('yue'))\n"
        % str(archive)
    )
    done = subprocess.run([sys.executable, "-S", "-c", script], env={"PYTHONPATH": str(archive)}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ger", "Japanese", "chi"]
