"""Issue 13's policy keys on real files made by ffmpeg/mkvmerge, processed by the real
pipeline and read back with mkvmerge -J; every processed file is planned again
(``processed`` asserts an empty second plan)."""

from __future__ import annotations

import pytest

from support.media import audio, mkvmerge_tracks, subtitle, video
from support.pipeline import pipeline  # noqa: F401  (fixture)
from test_policy_keys import policy, prepared, processed  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def kept(path) -> list[tuple]:  # type: ignore[no-untyped-def]
    """(type, language, title, default) per track of the written file."""
    return [(t["type"], t["language"], t["title"], t["default"]) for t in mkvmerge_tracks(path)]


def test_the_default_audio_is_the_best_main_track_and_never_commentary(pipeline, prepared):  # noqa: F811
    tracks = [
        video(),
        audio("eng", title="Commentary", default=True, channels=6),
        audio("eng", title="Stereo", channels=2),
        audio("eng", title="Surround", channels=6),
    ]
    final = processed(pipeline, prepared("best.mkv", tracks), policy(track_order=[]))
    assert [t[3] for t in kept(final)] == [False, False, False, True]
    assert [t["commentary"] for t in mkvmerge_tracks(final)] == [False, True, False, False]


def test_audio_codec_preference_and_max_audio_per_language(pipeline, prepared):  # noqa: F811
    tracks = [video(), audio("eng", title="AAC"), audio("eng", title="FLAC", codec="flac"), audio("jpn", title="JPN")]
    final = processed(
        pipeline, prepared("codecs.mkv", tracks),
        policy(audio_codec_preference=["flac"], max_audio_per_language=1, track_order=[]),
    )  # fmt: skip
    assert kept(final) == [("video", "und", None, False), ("audio", "eng", "FLAC", True), ("audio", "jpn", "JPN", False)]


@pytest.mark.parametrize(("preference", "title"), [("full", "Full"), ("sdh", "SDH")])
def test_max_subtitles_per_language_with_subtitle_preference(pipeline, prepared, preference, title):  # noqa: F811
    tracks = [video(), audio("eng"), subtitle("eng", title="SDH"), subtitle("eng", title="Full"), subtitle("eng", title="Forced")]
    final = processed(
        pipeline, prepared("subs.mkv", tracks, as_name=f"subs-{preference}.mkv"),
        policy(max_subtitles_per_language=1, subtitle_preference=preference, default_subtitle="none"),
    )  # fmt: skip
    assert [t[2] for t in kept(final) if t[0] == "subtitles"] == [title]


def test_role_removals(pipeline, prepared):  # noqa: F811
    tracks = [
        video(),
        audio("eng"),
        audio("eng", visual_impaired=True),
        audio("eng", title="Audio Description"),
        subtitle("eng", hearing_impaired=True),
        subtitle("eng", title="Signs & Songs"),
        subtitle("eng", title="Full"),
    ]
    final = processed(
        pipeline, prepared("removals.mkv", tracks),
        policy(remove_audio_description=True, remove_sdh=True, remove_forced_subtitles=True),
    )  # fmt: skip
    assert [(t[0], t[2]) for t in kept(final)] == [("video", None), ("audio", None), ("subtitles", "Full")]


def test_set_flags_from_titles_writes_the_flags_players_read(pipeline, prepared):  # noqa: F811
    tracks = [
        video(),
        audio("eng", default=True),
        audio("eng", title="Described Video"),
        subtitle("eng", title="English [CC]"),
        subtitle("eng", title="Signs/Songs"),
        subtitle("eng", title="Occitan"),
    ]
    final = processed(pipeline, prepared("titles.mkv", tracks), policy(default_subtitle="none"))
    flags = [{f for f in ("forced", "hearing_impaired", "visual_impaired") if t[f]} for t in mkvmerge_tracks(final)]
    assert flags == [set(), set(), {"visual_impaired"}, {"hearing_impaired"}, {"forced"}, set()]
    untouched = prepared("titles.mkv", tracks, as_name="off.mkv")
    out = pipeline.run(untouched, policy(default_subtitle="none", set_flags_from_titles=False)).result
    assert out.success and out.changes == 0


def test_flags_set_by_mkvmerge_decide_without_titles(pipeline, prepared):  # noqa: F811
    """FlagCommentary/FlagHearingImpaired/FlagOriginal written by mkvmerge, no title hints."""
    tracks = [
        video(),
        audio("eng", commentary=True, default=True),
        audio("eng"),
        audio("jpn", original=True),
        subtitle("eng", hearing_impaired=True),
        subtitle("eng"),
    ]
    pol = policy(audio_languages=["original", "eng"], subtitle_languages=["eng"], default_subtitle="preferred", track_order=[])
    final = processed(pipeline, prepared("flagged-roles.mkv", tracks), pol)
    # FlagOriginal on the Japanese track makes "original" Japanese: its audio is default,
    # and the full English subtitles (not the SDH ones) are shown.
    assert [t[3] for t in kept(final)] == [False, False, False, True, False, True]


def test_original_language_key_and_mark_original(pipeline, prepared):  # noqa: F811
    """No *arr, no FlagOriginal: the policy's original_language answers; mark_original
    writes FlagOriginal on the tracks in it (and the next pass finds it by that flag)."""
    tracks = [video(), audio("eng", default=True), audio("jpn"), subtitle("jpn"), subtitle("eng")]
    pol = policy(audio_languages=["original", "eng"], original_language="ja", track_order=[])
    final = processed(pipeline, prepared("original-key.mkv", tracks), pol)
    assert [t[3] for t in kept(final)][:3] == [False, False, True]
    assert [t["original"] for t in mkvmerge_tracks(final)] == [False, False, True, True, False]
    off = prepared("original-key.mkv", tracks, as_name="unmarked.mkv")
    final = processed(pipeline, off, policy(audio_languages=["original", "eng"], original_language="ja", mark_original=False, track_order=[]))
    assert not any(t["original"] for t in mkvmerge_tracks(final))
