"""Issue 13's planner rules on probed-file models: roles from flags and titles, the
original language, the best track of a language, per-language limits, explanations.

The same rules on real files: tests/integration/test_policy_roles.py.
"""

from __future__ import annotations

import itertools
import random

import pytest

from vpod.policy.original import OriginalLanguage
from vpod.policy.plan import ChangeContainer, RemoveTrack, Reorder, SetFlag, SetTitle
from vpod.policy.planner import plan
from vpod.policy.codecs import codec_family, track_codec_family
from vpod.policy.roles import title_match, track_roles

from test_planner import _applied, flags, media, order, policy, removed, t

KOREAN = OriginalLanguage("kor", "radarr", "Parasite")


def korean_film():  # type: ignore[no-untyped-def]
    return media(
        t("video"),
        t("audio", "eng", default=True, title="English dub", channels=6),
        t("audio", "kor", channels=6),
        t("audio", "eng", title="Director's Commentary", channels=2),
        t("subtitle", "eng", title="English SDH"),
        t("subtitle", "eng", title="English"),
        t("subtitle", "eng", title="Signs & Songs"),
    )


def why(p, track: int, flag: str = "default") -> str:  # type: ignore[no-untyped-def]
    return next(a.why for a in p.actions if isinstance(a, SetFlag) and a.track == track and a.flag == flag)


# -- roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "pattern", "hit"),
    [
        ("English (SDH)", "sdh", True),
        ("English CC", "cc", True),
        ("Occitan", "cc", False),
        ("Hearing-Impaired", "hearing impaired", True),
        ("Director's COMMENTARY", "commentary", True),
        ("Signs & Songs", "signs", True),
        ("Forcedly", "forced", False),
        (None, "sdh", False),
    ],
)
def test_title_patterns_match_whole_words_case_insensitively(title, pattern, hit):
    assert (title_match(title, (pattern,)) == pattern) is hit


def test_flags_win_and_titles_only_give_roles_to_their_track_types():
    p = policy()
    assert track_roles(t("subtitle", hearing_impaired=True, title="Full"), p).hearing_impaired == "flag"
    assert track_roles(t("subtitle", title="SDH"), p).hearing_impaired == "title"
    assert track_roles(t("audio", title="SDH"), p).hearing_impaired == ""  # SDH is a subtitle word
    assert track_roles(t("audio", title="Audio Description"), p).visual_impaired == "title"
    assert track_roles(t("subtitle", title="Forced"), p).forced == "title"
    assert track_roles(t("audio", title="Forced"), p).forced == ""
    custom = policy(sdh_patterns=["für hörgeschädigte"])
    assert track_roles(t("subtitle", title="Deutsch (für Hörgeschädigte)"), custom).hearing_impaired == "title"


# -- original language -------------------------------------------------------------------


def test_original_in_audio_languages_becomes_the_known_original_language():
    p = plan(policy(audio_languages=["original", "eng"]), korean_film(), KOREAN)
    assert flags(p) == {1: False, 2: True}
    assert why(p, 2) == "audio_languages[0]=original→kor (from radarr: Parasite)"
    assert p.as_dicts()[[a.get("track") for a in p.as_dicts()].index(2)]["why"].startswith("audio_languages[0]")


def test_an_unknown_original_matches_nothing_and_a_keep_list_naming_it_removes_nothing():
    pol = policy(audio_languages=["original", "eng"], keep_audio_languages=["original", "eng"])
    p = plan(pol, korean_film(), None)
    # eng (track 1) stays the default audio: "original" matched nothing; so the forced
    # English subtitle ("Signs & Songs") becomes the default subtitle.
    assert flags(p) == {6: True}
    assert why(p, 6) == "default_subtitle=forced: forced subtitle in the audio language eng"
    assert removed(p) == {}
    assert any('keep_audio_languages names "original"' in w for w in p.warnings)
    known = plan(pol, korean_film(), KOREAN)
    assert removed(known) == {}  # kor and eng both kept
    fre = OriginalLanguage("fre", "policy")
    assert set(removed(plan(pol, korean_film(), fre))) == {2}


def test_mark_original_sets_flag_original_and_clears_it_only_against_a_better_source():
    m = media(t("audio", "kor"), t("audio", "eng", original=True), t("subtitle", "kor"))
    p = plan(policy(audio_languages=[]), m, KOREAN)
    assert flags(p, "original") == {0: True, 1: False, 2: True}
    assert "mark_original: kor is the original language kor (from radarr: Parasite)" == why(p, 0, "original")
    # When the flags are the source, vpod adds the flag to the original language's other tracks only.
    from_flags = plan(policy(audio_languages=[]), m, OriginalLanguage("eng", "flag_original"))
    assert flags(from_flags, "original") == {}
    assert flags(plan(policy(audio_languages=[], mark_original=False), m, KOREAN), "original") == {}


# -- the Korean film of the issue ---------------------------------------------------------------


def test_korean_film_under_original_first():
    pol = policy(
        audio_languages=["original", "eng"], subtitle_languages=["eng"], default_subtitle="preferred",
        track_order=["video", "audio", "subtitle"],
    )  # fmt: skip
    p = plan(pol, korean_film(), KOREAN)
    assert flags(p) == {1: False, 2: True, 5: True}  # kor audio; full English subtitles
    assert flags(p, "hearing_impaired") == {4: True}
    assert flags(p, "forced") == {6: True}
    assert flags(p, "commentary") == {3: True}
    assert flags(p, "original") == {2: True}
    assert order(p) == (0, 2, 1, 3, 4, 5, 6)
    assert plan(pol, _applied(korean_film(), p), KOREAN).is_empty
    removing = replace_policy(pol, remove_commentary=True)
    p2 = plan(removing, korean_film(), KOREAN)
    assert removed(p2) == {3: "remove_commentary"}
    assert plan(removing, _applied(korean_film(), p2), KOREAN).is_empty


def replace_policy(pol, **changes):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(pol, **changes)


def test_commentary_is_never_the_default_audio():
    m = media(t("audio", "eng", title="Commentary", default=True), t("audio", "eng"))
    assert flags(plan(policy(), m)) == {0: False, 1: True}
    # No main track in a preferred language: the commentary flagged default still loses it.
    m2 = media(t("audio", "eng", commentary=True, default=True), t("audio", "jpn"))
    p = plan(policy(audio_languages=["eng"]), m2)
    assert flags(p) == {0: False, 1: True}
    assert "never the default audio" in why(p, 1)
    only = media(t("audio", "eng", visual_impaired=True, default=True))
    assert flags(plan(policy(), only)) == {}


def test_tracks_are_judged_by_their_flags_without_titles():
    m = media(
        t("audio", "eng", commentary=True, default=True, channels=2),
        t("audio", "eng", channels=2),
        t("subtitle", "eng", hearing_impaired=True, default=True),
        t("subtitle", "eng"),
        t("audio", "jpn", original=True),
    )
    pol = policy(audio_languages=["eng"], subtitle_languages=["eng"], default_subtitle="preferred", track_order=[])
    p = plan(pol, m, OriginalLanguage("jpn", "flag_original"))
    assert flags(p) == {0: False, 1: True, 2: False}  # eng main audio; jpn audio keeps its flag off
    assert flags(plan(replace_policy(pol, audio_languages=("jpn",)), m, OriginalLanguage("jpn", "flag_original"))) == {
        0: False, 4: True, 2: False, 3: True,
    }  # fmt: skip
    assert flags(plan(replace_policy(pol, subtitle_preference="sdh", audio_languages=("jpn",)), m)) == {0: False, 4: True}


# -- the best track of a language, and limits -------------------------------------------------------


def test_the_default_audio_is_the_best_main_track_of_its_language():
    m = media(
        t("audio", "eng", channels=2, codec="AAC"),
        t("audio", "eng", channels=6, codec="AC-3"),
        t("audio", "eng", channels=6, codec="TrueHD Atmos"),
        t("audio", "eng", channels=8, title="Commentary"),
    )
    assert flags(plan(policy(), m)) == {1: True}
    p = plan(policy(audio_codec_preference=["truehd", "ac3"]), m)
    assert flags(p) == {2: True}
    assert "the best of 3 main eng tracks" in why(p, 2)


def test_max_audio_per_language_keeps_the_best():
    m = media(
        t("audio", "eng", channels=2), t("audio", "eng", channels=6), t("audio", "jpn"), t("audio", "eng", title="Commentary", channels=8)
    )
    p = plan(policy(max_audio_per_language=1), m)
    assert removed(p) == {0: "max_audio_per_language", 3: "max_audio_per_language"}
    assert plan(policy(max_audio_per_language=1), _applied(m, p)).is_empty


@pytest.mark.parametrize(("preference", "kept"), [("full", 1), ("sdh", 2)])
def test_max_subtitles_per_language_keeps_full_or_sdh_first(preference, kept):
    m = media(t("audio", "eng"), t("subtitle", "eng"), t("subtitle", "eng", title="SDH"), t("subtitle", "eng", forced=True))
    p = plan(policy(max_subtitles_per_language=1, subtitle_preference=preference), m)
    assert set(removed(p)) == {1, 2, 3} - {kept}


def test_role_removals_by_flag_and_by_title():
    m = media(
        t("audio", "eng"),
        t("audio", "eng", title="Audio Description"),
        t("subtitle", "eng", hearing_impaired=True),
        t("subtitle", "eng", title="Forced"),
        t("subtitle", "eng"),
    )
    assert removed(plan(policy(remove_audio_description=True), m)) == {1: "remove_audio_description"}
    assert removed(plan(policy(remove_sdh=True), m)) == {2: "remove_sdh"}
    assert removed(plan(policy(remove_forced_subtitles=True), m)) == {3: "remove_forced_subtitles"}


def test_set_flags_from_titles_off_keeps_the_titles_that_carry_roles():
    m = media(t("audio", "eng"), t("subtitle", "eng", title="SDH"), t("subtitle", "eng", title="Full"))
    p = plan(policy(set_flags_from_titles=False, clear_track_titles=True), m)
    assert [a.track for a in p.actions if isinstance(a, SetTitle)] == [2]
    assert flags(p, "hearing_impaired") == {}
    on = plan(policy(clear_track_titles=True), m)
    assert flags(on, "hearing_impaired") == {1: True}
    assert sorted(a.track for a in on.actions if isinstance(a, SetTitle)) == [1, 2]
    assert plan(policy(clear_track_titles=True), _applied(m, on)).is_empty


def test_header_only_plans_no_removal_reorder_or_container():
    m = media(t("audio", "fre"), t("audio", "eng"), name="film.mp4", container="mov,mp4,m4a,3gp,3g2,mj2")
    pol = policy(keep_audio_languages=["eng"], container="mkv")
    full = plan(pol, m)
    assert removed(full) and any(isinstance(a, ChangeContainer) for a in full.actions)
    header = plan(pol, m, header_only=True)
    assert not header.needs_remux and flags(header) == {1: True}
    assert not any(isinstance(a, (RemoveTrack, Reorder)) for a in header.actions)


def test_codec_families():
    assert codec_family("E-AC-3") == codec_family("eac3") == codec_family("DD+") == codec_family("ddp") == "eac3"
    assert codec_family("ec3") == codec_family("Dolby Digital Plus") == "eac3"
    assert codec_family("AC-3") == codec_family("DD") == "ac3"
    assert codec_family("DTS-HD MA") == "dtshd" and codec_family("DTS") == "dts"
    assert codec_family("eeac3") is None and codec_family("aacx") is None
    assert track_codec_family("DTS-HD Master Audio") == "dtshd" and track_codec_family("TrueHD Atmos") == "truehd"
    assert track_codec_family("pcm_s24le") == "pcm" and track_codec_family("E-AC-3") == "eac3"


def test_an_unknown_codec_name_is_refused_at_load():
    from vpod.errors import ConfigError

    with pytest.raises(ConfigError, match="'eeac3': not a codec vpod knows; known: truehd"):
        policy(audio_codec_preference=["eac3", "eeac3"])


def test_original_language_und_is_refused():
    from vpod.errors import ConfigError

    with pytest.raises(ConfigError, match='original_language.*other than "und"'):
        policy(original_language="und")


def test_director_s_cut_is_no_commentary_and_non_sdh_is_no_sdh():
    """A main track titled "Director's Cut" stays the default (issue 13 tester, 1.1)."""
    m = media(
        t("audio", "eng", title="English 5.1 (Director's Cut)", default=True, channels=6),
        t("audio", "fre", title="Français"),
        t("subtitle", "eng", title="English (Non-SDH)"),
        t("subtitle", "eng", title="No Commentary"),
    )
    p = plan(policy(remove_commentary=True, remove_sdh=True), m)
    assert removed(p) == {} and flags(p) == {}
    assert title_match("English SDH (not forced)", ("forced",)) is None
    assert title_match("SDH, non-forced, forced", ("forced",)) == "forced"


def test_remove_sdh_removes_text_descriptions_too():
    m = media(t("audio", "eng"), t("subtitle", "eng", text_descriptions=True), t("subtitle", "eng"))
    assert removed(plan(policy(remove_sdh=True), m)) == {1: "remove_sdh"}


def test_second_plan_is_empty_with_roles_original_and_limits():
    rng = random.Random(1313)
    languages = ["eng", "jpn", "kor", "und"]
    titles = [None, "Commentary", "SDH", "Signs & Songs", "Audio Description", "Main"]
    originals = [None, KOREAN, OriginalLanguage("jpn", "policy")]
    policies = [
        policy(
            audio_languages=a, subtitle_languages=["original", "eng"], default_subtitle=d, keep_audio_languages=k,
            max_audio_per_language=m, max_subtitles_per_language=m, subtitle_preference=s,
            remove_commentary=r, set_flags_from_titles=f, clear_track_titles=c,
        )
        for a, d, k, m, s, r, f, c in itertools.product(
            [["original", "eng"], ["eng"]], ["forced", "preferred"], [[], ["original", "und"]], [0, 1],
            ["full", "sdh"], [False, True], [False, True], [False, True],
        )
    ]  # fmt: skip
    for n in range(60):
        tracks = [t("video")]
        for _ in range(rng.randint(1, 4)):
            tracks.append(
                t("audio", rng.choice(languages), default=rng.random() < 0.5, title=rng.choice(titles),
                  channels=rng.choice([2, 6]), original=rng.random() < 0.2, commentary=rng.random() < 0.1)
            )  # fmt: skip
        for _ in range(rng.randint(0, 4)):
            tracks.append(
                t("subtitle", rng.choice(languages), default=rng.random() < 0.3, forced=rng.random() < 0.2,
                  title=rng.choice(titles), hearing_impaired=rng.random() < 0.2)
            )  # fmt: skip
        rng.shuffle(tracks)
        m = media(*tracks)
        for pol in rng.sample(policies, 30):
            original = rng.choice(originals)
            first = plan(pol, m, original)
            second = plan(pol, _applied(m, first), original)
            assert second.is_empty, (n, pol, original, first.describe(), second.describe())
