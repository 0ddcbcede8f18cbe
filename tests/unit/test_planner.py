"""The planner, rule by rule, on probed-file models (no tools): fast and exhaustive.

Each rule is also checked on real files in tests/integration/test_policy_keys.py.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from pathlib import Path

import pytest

from vpod.errors import ConfigError
from vpod.media.layout import expected_tracks
from vpod.media.model import MATROSKA, MediaInfo, Track
from vpod.policy.languages import track_language
from vpod.policy.plan import ChangeContainer, RemoveTrack, Reorder, SetFlag, SetLanguage, SetTitle
from vpod.policy.planner import plan
from vpod.policy.policy import Policy, policy_from_table


def t(kind: str, language: str = "und", codec: str = "x", **kw: object) -> Track:
    return Track(index=-1, type=kind, codec=codec, language=language, **kw)  # type: ignore[arg-type]


def media(*tracks: Track, name: str = "movie.mkv", container: str = MATROSKA) -> MediaInfo:
    numbered = tuple(replace(track, index=i, number=i + 1) for i, track in enumerate(tracks))
    return MediaInfo(Path("/lib") / name, container, 10.0, numbered, 1000, "mkvmerge")


def policy(**table: object) -> Policy:
    """A policy as a user writes it in [policy] (so names and 639-1 codes are normalized)."""
    return policy_from_table(table, source=None, base_dir=None)


def flags(p, kind: str = "default") -> dict[int, bool]:  # type: ignore[no-untyped-def]
    return {a.track: a.value for a in p.actions if isinstance(a, SetFlag) and a.flag == kind}


def removed(p) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return {a.track: a.reason for a in p.actions if isinstance(a, RemoveTrack)}


def order(p) -> tuple[int, ...] | None:  # type: ignore[no-untyped-def]
    return next((a.order for a in p.actions if isinstance(a, Reorder)), None)


# -- audio_languages ----------------------------------------------------------------


def test_first_preferred_language_present_becomes_the_only_default_audio():
    m = media(t("video"), t("audio", "fre", default=True), t("audio", "jpn", default=True), t("audio", "eng"))
    p = plan(policy(audio_languages=["eng", "jpn"], track_order=[]), m)
    assert flags(p) == {1: False, 2: False, 3: True}


def test_audio_preference_accepts_names_and_iso_639_1_and_639_2t():
    m = media(t("audio", "eng", default=True), t("audio", track_language("deu")))
    for spelled in ("German", "de", "deu", "ger", "GERMAN"):
        assert flags(plan(policy(audio_languages=[spelled], track_order=[]), m)) == {0: False, 1: True}, spelled


def test_no_preferred_audio_leaves_audio_flags_alone():
    m = media(t("audio", "fre", default=True), t("audio", "ita", default=True))
    assert plan(policy(audio_languages=["eng"], default_subtitle="none"), m).is_empty


def test_conforming_file_has_an_empty_plan():
    m = media(t("video"), t("audio", "eng", default=True), t("audio", "jpn"), t("subtitle", "eng", forced=True, default=True))
    assert plan(policy(audio_languages=["eng"]), m).is_empty


# -- keep_*_languages and commentary -----------------------------------------------


def test_keep_audio_languages_removes_others_and_und_can_be_kept():
    m = media(t("video"), t("audio", "eng", default=True), t("audio", "rus"), t("audio", "und"))
    p = plan(policy(keep_audio_languages=["en", "und"]), m)
    assert removed(p) == {2: "keep_audio_languages"}


def test_never_removes_every_audio_track():
    m = media(t("video"), t("audio", "rus", default=True), t("audio", "ukr", title="Commentary"))
    p = plan(policy(keep_audio_languages=["eng"], remove_commentary=True, audio_languages=["eng"]), m)
    assert removed(p) == {}
    assert len(p.warnings) == 1 and "every audio track" in p.warnings[0]
    assert "keep_audio_languages" in p.warnings[0]


def test_keep_subtitle_languages_may_remove_every_subtitle():
    m = media(t("audio", "eng", default=True), t("subtitle", "rus"), t("subtitle", "und"))
    assert removed(plan(policy(keep_subtitle_languages=["eng"]), m)) == {
        1: "keep_subtitle_languages",
        2: "keep_subtitle_languages",
    }


def test_commentary_matched_case_insensitively_in_titles_never_on_video():
    m = media(
        t("video", title="Director's Cut"),
        t("audio", "eng", default=True, title="Main"),
        t("audio", "eng", title="DIRECTOR'S COMMENTARY"),
        t("subtitle", "eng", title="Commentary subs"),
    )
    assert removed(plan(policy(remove_commentary=True), m)) == {2: "remove_commentary", 3: "remove_commentary"}
    assert removed(plan(policy(remove_commentary=False), m)) == {}
    custom = policy(remove_commentary=True, commentary_patterns=["subs"])
    assert removed(plan(custom, m)) == {3: "remove_commentary"}


# -- default_subtitle ----------------------------------------------------------------


def test_default_subtitle_none_clears_every_subtitle_default():
    m = media(t("audio", "eng", default=True), t("subtitle", "eng", default=True), t("subtitle", "fre", default=True))
    assert flags(plan(policy(default_subtitle="none"), m)) == {1: False, 2: False}


def test_default_subtitle_forced_picks_the_forced_track_in_the_default_audio_language():
    m = media(
        t("audio", "eng", default=True),
        t("subtitle", "fre", forced=True),
        t("subtitle", "eng"),
        t("subtitle", "eng", forced=True),
    )
    assert flags(plan(policy(default_subtitle="forced", track_order=[]), m)) == {3: True}


def test_default_subtitle_forced_without_a_forced_track_means_no_default():
    m = media(t("audio", "eng", default=True), t("subtitle", "eng", default=True))
    assert flags(plan(policy(default_subtitle="forced"), m)) == {1: False}


def test_default_subtitle_preferred_foreign_film():
    m = media(
        t("audio", "jpn", default=True),
        t("subtitle", "eng", forced=True),
        t("subtitle", "eng"),
        t("subtitle", "spa"),
    )
    p = plan(policy(audio_languages=["jpn"], subtitle_languages=["eng"], default_subtitle="preferred", track_order=[]), m)
    # full English subtitles, not the forced ones, for a film in a language the viewer lacks
    assert flags(p) == {2: True}


def test_default_subtitle_preferred_same_language_falls_back_to_forced():
    m = media(t("audio", "eng", default=True), t("subtitle", "eng", default=True), t("subtitle", "eng", forced=True))
    p = plan(policy(audio_languages=["eng"], subtitle_languages=["eng"], default_subtitle="preferred", track_order=[]), m)
    assert flags(p) == {1: False, 2: True}


def test_default_subtitle_follows_the_new_default_audio():
    m = media(t("audio", "eng", default=True), t("audio", "jpn"), t("subtitle", "eng"))
    p = plan(policy(audio_languages=["jpn"], subtitle_languages=["eng"], default_subtitle="preferred"), m)
    assert flags(p) == {0: False, 1: True, 2: True}


# -- untagged_language, language elements, titles -------------------------------------


def test_untagged_language_tags_und_tracks_and_counts_for_keep_lists():
    m = media(t("video"), t("audio", "und", default=True), t("audio", "fre"), t("subtitle", "und"))
    p = plan(policy(untagged_language="Japanese", keep_audio_languages=["jpn"], audio_languages=["jpn"]), m)
    assert [(a.track, a.language) for a in p.actions if isinstance(a, SetLanguage)] == [
        (0, "jpn"), (1, "jpn"), (3, "jpn"),
    ]  # fmt: skip
    assert removed(p) == {2: "keep_audio_languages"}


def test_language_elements_that_disagree_are_set_again():
    m = media(t("audio", "fre", default=True, languages_agree=False))
    p = plan(policy(audio_languages=["fre"]), m)
    assert [a for a in p.actions if isinstance(a, SetLanguage)] == [SetLanguage(0, "fre")]


def test_clear_track_titles():
    m = media(t("video", title="x264"), t("audio", "eng", default=True, title="Stereo"), t("audio", "eng"))
    p = plan(policy(clear_track_titles=True), m)
    assert [a for a in p.actions if isinstance(a, SetTitle)] == [SetTitle(0, None), SetTitle(1, None)]


# -- track_order ----------------------------------------------------------------------


def test_track_order_by_type_then_preferred_languages_then_stable():
    m = media(
        t("subtitle", "fre"),   # 0
        t("audio", "fre"),      # 1
        t("video"),             # 2
        t("audio", "eng", default=True),  # 3
        t("subtitle", "eng"),   # 4
        t("audio", "jpn"),      # 5
        t("audio", "ger"),      # 6
        t("subtitle", "ita"),   # 7
    )  # fmt: skip
    p = plan(policy(audio_languages=["jpn", "eng"], subtitle_languages=["eng"], default_subtitle="none"), m)
    assert order(p) == (2, 5, 3, 1, 6, 4, 0, 7)


def test_custom_and_empty_track_order():
    m = media(t("video"), t("audio", "eng", default=True), t("subtitle", "eng"), t("data"))
    assert order(plan(policy(track_order=["subtitle", "audio"], default_subtitle="none"), m)) == (2, 1, 0, 3)
    assert order(plan(policy(track_order=[], default_subtitle="none"), m)) is None


# -- container ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, container, wanted",
    [("a.mp4", "mov,mp4,m4a,3gp,3g2,mj2", True), ("a.webm", MATROSKA, True), ("a.MKV", MATROSKA, False), ("a.mkv", MATROSKA, False)],
)
def test_container_mkv(name, container, wanted):
    m = media(t("video"), t("audio", "eng", default=True), name=name, container=container)
    p = plan(policy(container="mkv"), m)
    assert (ChangeContainer("mkv") in p.actions) is wanted
    assert plan(policy(container="keep"), m).is_empty


# -- idempotence --------------------------------------------------------------------------


def _applied(m: MediaInfo, p) -> MediaInfo:  # type: ignore[no-untyped-def]
    """The file a correct remux writes: expected tracks renumbered, Matroska, named .mkv if changed."""
    tracks = tuple(
        replace(track, index=i, number=i + 1) for i, track in enumerate(x for x in expected_tracks(m, p) if x.type != "attachment")
    )
    name = Path(m.path).with_suffix(".mkv") if any(isinstance(a, ChangeContainer) for a in p.actions) else m.path
    return replace(m, path=name, container=MATROSKA, tracks=tracks)


def test_second_plan_is_empty_for_many_policies_and_files():
    rng = random.Random(1234)
    languages = ["eng", "jpn", "fre", "und"]
    policies = [
        policy(
            audio_languages=a, subtitle_languages=s, default_subtitle=d, keep_audio_languages=k,
            remove_commentary=True, untagged_language=u, clear_track_titles=c, container=cont,
        )
        for a, s, d, k, u, c, cont in itertools.product(
            [["eng"], ["jpn", "eng"], []], [["eng"], []], ["none", "forced", "preferred"],
            [[], ["jpn"]], ["", "eng"], [False, True], ["keep", "mkv"],
        )
    ]  # fmt: skip
    for n in range(60):
        tracks = [t("video", title=rng.choice([None, "v"]))]
        for _ in range(rng.randint(1, 4)):
            tracks.append(
                t("audio", rng.choice(languages), default=rng.random() < 0.5, title=rng.choice([None, "Commentary", "Main"]))
            )
        for _ in range(rng.randint(0, 4)):
            tracks.append(t("subtitle", rng.choice(languages), default=rng.random() < 0.3, forced=rng.random() < 0.3))
        rng.shuffle(tracks)
        m = media(*tracks, name=rng.choice(["a.mkv", "a.mp4"]))
        for pol in rng.sample(policies, 40):
            first = plan(pol, m)
            second = plan(pol, _applied(m, first))
            assert second.is_empty, (n, pol, first.describe(), second.describe())


# -- policy validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "table, key",
    [
        ({"audio_languages": ["english-ish"]}, "[policy] audio_languages"),
        ({"keep_subtitle_languages": ["xx"]}, "[policy] keep_subtitle_languages"),
        ({"untagged_language": "und"}, "[policy] untagged_language"),
        ({"untagged_language": "Klingonish"}, "[policy] untagged_language"),
        ({"default_subtitle": "always"}, "[policy] default_subtitle"),
        ({"container": "mp4"}, "[policy] container"),
        ({"commentary_patterns": ["commentary", ""]}, "[policy] commentary_patterns"),
        ({"track_order": ["video", "chapters"]}, "[policy] track_order"),
        ({"track_order": ["audio", "audio"]}, "[policy] track_order"),
        ({"on_error": "retry"}, "[policy] on_error"),
        ({"backup": "yes"}, "[policy] backup"),
        ({"audio_language": ["eng"]}, "[policy] audio_language"),
    ],
)
def test_invalid_policy_names_the_key_and_reason(table, key):
    with pytest.raises(ConfigError) as caught:
        policy(**table)
    assert key in str(caught.value)
    assert str(caught.value).count(":") >= 2  # FILE: KEY: reason


def test_policy_file_is_loaded_and_normalized(tmp_path):
    (tmp_path / "anime.toml").write_text('[policy]\naudio_languages = ["Japanese", "en"]\n')
    loaded = policy_from_table({"policy_file": "anime.toml"}, source=tmp_path / "config.toml", base_dir=tmp_path)
    assert loaded.audio_languages == ("jpn", "eng")


def test_actions_compare_and_hash_without_their_why():
    # The actions are NamedTuples (start-up cost) whose ``why`` takes no part in equality,
    # as with the dataclasses' field(compare=False) before; never equal to a plain tuple.
    from vpod.policy.plan import Reorder, SetFlag

    explained, bare = SetFlag(1, "default", True, why="first English track"), SetFlag(1, "default", True)
    assert explained == bare and not explained != bare and hash(explained) == hash(bare)
    assert {explained, bare} == {bare}
    assert SetFlag(1, "default", False) != bare and Reorder((1, 0)) != Reorder((0, 1), why="x")
    assert bare != (1, "default", True, "") and not bare.structural and Reorder((1, 0)).structural
