"""The glob dialect of policy rules (vpod/policy/pathglob.py): what matches, what is refused."""

from __future__ import annotations

import pytest

from vpod.policy.pathglob import GlobError, compile_glob


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("Anime/**", ["Anime/a.mkv", "Anime/Show/S01/e1.mkv"], ["Anime", "AnimeX/a.mkv", "x/Anime/a.mkv"]),
        ("Kids/*", ["Kids/a.mkv", "Kids/.b.mkv"], ["Kids/Show/a.mkv", "More/Kids/a.mkv", "kids/a.mkv"]),
        ("**/Extras/*", ["Extras/a.mkv", "x/y/Extras/a.mkv"], ["Extras/b/a.mkv", "xExtras/a.mkv"]),
        ("a/**/b.mkv", ["a/b.mkv", "a/x/y/b.mkv"], ["ab.mkv", "a/x/b.mkv.part", "x/a/b.mkv"]),
        ("**", ["a.mkv", "a/b/c.mkv"], []),
        ("*.mp4", ["x.mp4"], ["d/x.mp4", "x.mkv"]),  # no floating: only the library's own folder
        ("S0?/*", ["S01/e.mkv"], ["S1/e.mkv", "S0/x/e.mkv"]),
        ("[A-C]*/*", ["Anime/e.mkv", "Cartoons/e.mkv"], ["Docs/e.mkv"]),
        ("[!A]*/*", ["Docs/e.mkv"], ["Anime/e.mkv"]),
        ("[[]x]/*", ["[x]/e.mkv"], ["x/e.mkv"]),
        ("Films (2019)/*", ["Films (2019)/a.mkv"], ["Films 2019/a.mkv"]),  # regex characters are literal
        ("[+-0]*", [".x", "0x"], []),
        ("[!-a]x", ["5x", "bx"], ["-x", "ax"]),  # a leading "-" is itself, after "!" too
        ("[a-c-e]", ["b", "-", "e"], ["d"]),  # "-" after a range is itself, as in the regex
    ],
)
def test_globs_match_as_documented(pattern, matching, not_matching):
    glob = compile_glob(pattern)
    assert [p for p in matching if not glob.matches(p)] == []
    assert [p for p in not_matching if glob.matches(p)] == []


def test_a_set_never_matches_the_separator():
    """A range spanning "/" ("+" to "0") still never crosses folders (fnmatch FNM_PATHNAME)."""
    assert not compile_glob("a[+-0]b").matches("a/b")
    assert not compile_glob("a[!x]b").matches("a/b")


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("", "empty"),
        ("/Anime/**", "leading /"),
        ("Anime/", "'Anime/**'"),
        ("a//b", "empty path component"),
        ("../x/*", "'..'"),
        ("a**/b", "whole path component"),
        ("a/[bc", "closing ]"),
        ("Kids/[z-a]*", "range z-a is backwards (it matches nothing); write a-z"),
        ("[!a-Z]*", "range a-Z is backwards"),
        ("[b-a-c]*", "range b-a is backwards"),
        ("[é-a]*", "range é-a is backwards"),
    ],
)
def test_globs_outside_the_dialect_are_refused_with_what_to_write(pattern, says):
    with pytest.raises(GlobError) as caught:
        compile_glob(pattern)
    assert says in str(caught.value)
