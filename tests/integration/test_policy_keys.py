"""Each [policy] key on a real file made by ffmpeg, processed by the real pipeline, checked
with mkvmerge -J and ffprobe; every processed file is then planned again (idempotence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.media import audio, copy_media, ffprobe_streams, mkvmerge_tracks, subtitle, video
from support.pipeline import pipeline, sha256, stream_stats  # noqa: F401  (fixture)
from vpod.policy.policy import policy_from_table

pytestmark = pytest.mark.integration


def policy(**table: object):  # type: ignore[no-untyped-def]
    return policy_from_table(table, source=None, base_dir=None)


@pytest.fixture
def prepared(media_cache, pipeline):  # noqa: F811
    """Copy a session-cached generated file into the pipeline's library."""

    def get(name: str, tracks: list, *, as_name: str | None = None) -> Path:
        return copy_media(media_cache(name, tracks), pipeline.library / (as_name or name))

    return get


def summary(path: Path) -> list[tuple]:
    """(type, language, default, forced, title) per track, from mkvmerge -J."""
    return [(t["type"], t["language"], t["default"], t["forced"], t["title"]) for t in mkvmerge_tracks(path)]


def ffprobe_summary(path: Path) -> list[tuple]:
    """(type, language, default, forced, title) per stream, from ffprobe."""
    return [
        (
            s["codec_type"],
            (s.get("tags") or {}).get("language", "und"),
            bool(s["disposition"]["default"]),
            bool(s["disposition"]["forced"]),
            (s.get("tags") or {}).get("title"),
        )
        for s in ffprobe_streams(path)
    ]


def processed(pipeline, path: Path, pol) -> Path:  # noqa: F811
    """Run the pipeline, require success, check idempotence; returns where the file is now."""
    out = pipeline.run(path, pol).result
    assert out.success, out.error
    final = out.final_path
    pipeline.assert_conforms(final, pol)
    assert pipeline.temps_left() == []
    return final


def test_audio_languages_sets_the_only_default_audio_in_place(pipeline, prepared):  # noqa: F811
    path = prepared("eng-jpn-fre.mkv", [video(), audio("eng", default=True), audio("jpn"), audio("fre", default=True)])
    inode = path.stat().st_ino
    final = processed(pipeline, path, policy(audio_languages=["Japanese", "en"], track_order=[]))
    assert [t[:3] for t in summary(final) if t[0] == "audio"] == [
        ("audio", "eng", False), ("audio", "jpn", True), ("audio", "fre", False),
    ]  # fmt: skip
    assert [s[2] for s in ffprobe_summary(final) if s[0] == "audio"] == [False, True, False]
    assert final.stat().st_ino == inode  # header-only: mkvpropedit in place


def test_audio_languages_match_iso_639_2t_tags_in_files(pipeline, prepared):  # noqa: F811
    path = prepared("deu-eng.mkv", [video(), audio("eng", default=True), audio("deu")])
    final = processed(pipeline, path, policy(audio_languages=["German"], track_order=[]))
    assert [(t[1], t[2]) for t in summary(final) if t[0] == "audio"] == [("eng", False), ("ger", True)]


def test_subtitle_languages_and_default_subtitle_preferred(pipeline, prepared):  # noqa: F811
    path = prepared(
        "anime.mkv",
        [video(), audio("jpn", default=True), subtitle("spa"), subtitle("eng", forced=True, title="Signs"), subtitle("eng", title="Full")],
    )
    final = processed(
        pipeline, path, policy(audio_languages=["ja"], subtitle_languages=["en"], default_subtitle="preferred")
    )
    subs = [t for t in summary(final) if t[0] == "subtitles"]
    # preferred language first (stable), and the full English track is the default
    assert subs == [
        ("subtitles", "eng", False, True, "Signs"),
        ("subtitles", "eng", True, False, "Full"),
        ("subtitles", "spa", False, False, None),
    ]
    assert [s[2] for s in ffprobe_summary(final) if s[0] == "subtitle"] == [False, True, False]


def test_default_subtitle_forced(pipeline, prepared):  # noqa: F811
    path = prepared(
        "forced.mkv", [video(), audio("eng", default=True), subtitle("eng", default=True), subtitle("eng", forced=True)]
    )
    final = processed(pipeline, path, policy(audio_languages=["eng"], default_subtitle="forced"))
    assert [(t[2], t[3]) for t in summary(final) if t[0] == "subtitles"] == [(False, False), (True, True)]


def test_default_subtitle_none(pipeline, prepared):  # noqa: F811
    # "forced" would keep the forced English track as the default; "none" clears it too
    path = prepared(
        "subs-default.mkv",
        [video(), audio("eng", default=True), subtitle("eng", default=True, forced=True), subtitle("fre", default=True)],
    )
    final = processed(pipeline, path, policy(audio_languages=["eng"], default_subtitle="none"))
    assert [t[2] for t in summary(final) if t[0] == "subtitles"] == [False, False]
    assert [s[2] for s in ffprobe_summary(final) if s[0] == "subtitle"] == [False, False]


def test_keep_lists_and_reorder_preserve_the_content_of_kept_streams(pipeline, prepared):  # noqa: F811
    path = prepared(
        "keep.mkv",
        [video(), audio("rus", default=True), audio("eng"), audio("jpn"), subtitle("rus"), subtitle("eng"), subtitle("und")],
    )
    before = {(s["type"], s["language"]): s for s in stream_stats(path)}
    pol = policy(
        audio_languages=["jpn", "eng"], keep_audio_languages=["jpn", "eng"], keep_subtitle_languages=["eng", "und"]
    )
    final = processed(pipeline, path, pol)
    assert [(t[0], t[1]) for t in summary(final)] == [
        ("video", "und"), ("audio", "jpn"), ("audio", "eng"), ("subtitles", "eng"), ("subtitles", "und"),
    ]  # fmt: skip
    after = stream_stats(final)
    assert len(after) == 5
    for stream in after:
        source = before[(stream["type"], stream["language"])]
        assert stream["packets"] == source["packets"] > 0, stream
        assert stream["duration"] == pytest.approx(source["duration"], abs=0.002), stream


def test_never_removes_every_audio_track(pipeline, prepared):  # noqa: F811
    path = prepared("rus-only.mkv", [video(), audio("rus", default=True), audio("ukr")])
    digest = sha256(path)
    out = pipeline.run(path, policy(keep_audio_languages=["eng"], audio_languages=["eng"])).result
    assert out.success and out.changes == 0
    assert sha256(path) == digest
    assert [t[1] for t in summary(path) if t[0] == "audio"] == ["rus", "ukr"]


def test_remove_commentary_with_custom_patterns(pipeline, prepared):  # noqa: F811
    tracks = [
        video(),
        audio("eng", default=True, title="Main"),
        audio("eng", title="Director's COMMENTARY"),
        audio("eng", title="Isolated Score"),
        subtitle("eng", title="Commentary subtitles"),
    ]
    path = prepared("commentary.mkv", tracks)
    final = processed(pipeline, path, policy(remove_commentary=True, commentary_patterns=["commentary", "score"]))
    assert [(t[0], t[4]) for t in summary(final)] == [("video", None), ("audio", "Main")]

    untouched = prepared("commentary.mkv", tracks, as_name="off.mkv")
    assert pipeline.run(untouched, policy(remove_commentary=False, set_flags_from_titles=False)).result.changes == 0
    assert len(summary(untouched)) == 5
    # Kept, the commentary tracks get FlagCommentary from their titles (a header edit).
    flagged = processed(pipeline, untouched, policy(remove_commentary=False))
    assert [t["commentary"] for t in mkvmerge_tracks(flagged)] == [False, False, True, False, True]


def test_track_order(pipeline, prepared):  # noqa: F811
    path = prepared("order.mkv", [subtitle("eng"), audio("eng", default=True), video()])
    final = processed(pipeline, path, policy(track_order=["audio", "subtitle", "video"], default_subtitle="none"))
    assert [s[0] for s in ffprobe_summary(final)] == ["audio", "subtitle", "video"]
    assert [t[0] for t in summary(final)] == ["audio", "subtitles", "video"]


def test_untagged_language(pipeline, prepared):  # noqa: F811
    path = prepared("untagged.mkv", [video(), audio(None, default=True), subtitle("und"), audio("fre")])
    final = processed(pipeline, path, policy(untagged_language="English", track_order=[], audio_languages=["eng"]))
    assert [t[1] for t in summary(final)] == ["eng", "eng", "eng", "fre"]
    assert [s[1] for s in ffprobe_summary(final)] == ["eng", "eng", "eng", "fre"]


def test_language_elements_that_disagree_are_made_to_agree(pipeline, prepared):  # noqa: F811
    import subprocess

    path = prepared("ietf.mkv", [video(), audio("eng", default=True)])
    # A tool that updated only one element: Language says eng, LanguageIETF says French.
    subprocess.run(["mkvpropedit", str(path), "--edit", "track:@2", "--set", "language=eng", "--set", "language-ietf=fr"],
                   check=True, capture_output=True)  # fmt: skip
    assert [s[1] for s in ffprobe_summary(path)][1] == "eng"  # ffprobe reads the legacy element
    final = processed(pipeline, path, policy(audio_languages=["fre"], track_order=[]))
    assert summary(final)[1][1] == "fre" and ffprobe_summary(final)[1][1] == "fre"


@pytest.mark.parametrize("tag, code", [("pt-BR", "por"), ("zh-Hant-TW", "chi")])
def test_agreeing_again_keeps_the_full_language_tag(pipeline, prepared, tag, code):  # noqa: F811
    """Found by a first-time user: making the two elements agree wrote a bare 'pt',
    losing the region (Brazilian vs European Portuguese) or the script."""
    import json
    import subprocess

    path = prepared(f"ietf-{code}.mkv", [video(), audio("eng", default=True)])
    subprocess.run(["mkvpropedit", str(path), "--edit", "track:@2", "--set", "language=eng", "--set", f"language-ietf={tag}"],
                   check=True, capture_output=True)  # fmt: skip
    final = processed(pipeline, path, policy(audio_languages=[code], track_order=[]))
    data = json.loads(subprocess.run(["mkvmerge", "-J", str(final)], capture_output=True, check=True).stdout)
    props = data["tracks"][1]["properties"]
    assert (props["language"], props["language_ietf"]) == (code, tag)
    assert ffprobe_summary(final)[1][1] == code


def test_clear_track_titles(pipeline, prepared):  # noqa: F811
    path = prepared("titles.mkv", [video(title="x264 encode"), audio("eng", default=True, title="Stereo"), subtitle("eng", title="SDH")])
    final = processed(pipeline, path, policy(clear_track_titles=True, default_subtitle="none"))
    assert [t[4] for t in summary(final)] == [None, None, None]
    assert [s[4] for s in ffprobe_summary(final)] == [None, None, None]


def test_container_mkv_turns_an_mp4_with_two_audio_and_mov_text_into_conforming_mkv(pipeline, prepared):  # noqa: F811
    path = prepared("film.mp4", [video(), audio("eng", default=True), audio("jpn"), subtitle("eng")])
    assert [s["codec_name"] for s in ffprobe_streams(path)][-1] == "mov_text"
    before = {(s["type"], s["language"]): s for s in stream_stats(path)}
    pol = policy(audio_languages=["jpn"], subtitle_languages=["eng"], default_subtitle="preferred", container="mkv")
    final = processed(pipeline, path, pol)
    assert final == path.with_suffix(".mkv") and not path.exists()
    assert summary(final) == [
        ("video", "und", True, False, None),
        ("audio", "jpn", True, False, None),
        ("audio", "eng", False, False, None),
        ("subtitles", "eng", True, False, None),
    ]
    assert [s["codec_name"] for s in ffprobe_streams(final)] == ["mpeg4", "aac", "aac", "subrip"]
    for stream in stream_stats(final)[:3]:  # audio and video packets unchanged
        assert stream["packets"] == before[(stream["type"], stream["language"])]["packets"]


def test_container_keep_leaves_an_mp4_alone_and_says_why(pipeline, prepared):  # noqa: F811
    path = prepared("keep.mp4", [video(), audio("eng"), audio("jpn", default=True)])
    digest = sha256(path)
    out = pipeline.run(path, policy(audio_languages=["eng"], container="keep")).result
    assert out.skipped and out.reason == "container_not_supported"
    assert 'container = "mkv"' in out.error and str(path) in out.error
    assert sha256(path) == digest


def test_webm_stays_webm_when_the_container_is_kept(pipeline, prepared):  # noqa: F811
    path = prepared(
        "clip.webm",
        [video(codec="libvpx"), audio("eng", codec="libopus"), audio("jpn", default=True, codec="libopus")],
    )
    final = processed(pipeline, path, policy(audio_languages=["jpn"]))  # jpn first: a remux
    assert final == path
    assert [t[1] for t in summary(final) if t[0] == "audio"] == ["jpn", "eng"]
    assert b"webm" in final.read_bytes()[:64]  # EBML DocType


def test_backup_keeps_the_original_bytes_after_a_remux(pipeline, prepared):  # noqa: F811
    path = prepared("backup-remux.mkv", [video(), audio("eng"), audio("jpn", default=True)])
    digest = sha256(path)
    processed(pipeline, path, policy(audio_languages=["jpn"], backup=True))
    backup = path.with_name("backup-remux.orig.mkv")
    assert sha256(backup) == digest and sha256(path) != digest


def test_backup_is_a_real_copy_before_an_in_place_edit(pipeline, prepared):  # noqa: F811
    path = prepared("backup-inplace.mkv", [video(), audio("eng"), audio("jpn", default=True)])
    digest = sha256(path)
    processed(pipeline, path, policy(audio_languages=["eng"], track_order=[], backup=True))
    backup = path.with_name("backup-inplace.orig.mkv")
    assert sha256(backup) == digest and sha256(path) != digest
    assert backup.stat().st_ino != path.stat().st_ino
    # a second run never overwrites the backup
    processed(pipeline, path, policy(audio_languages=["jpn"], track_order=[], backup=True))
    assert sha256(backup) == digest


def test_policy_file_key_via_the_cli(tmp_path, env, prepared):
    import json

    from support.daemon import run_vpod, write_config

    path = prepared("cli-policy.mkv", [video(), audio("eng", default=True), audio("jpn")])
    (tmp_path / "anime.toml").write_text('audio_languages = ["jpn"]\ntrack_order = []\n')
    config = write_config(tmp_path / "config.toml", {"policy": {"policy_file": "anime.toml"}})
    result = run_vpod(["plan", str(path), "--config", str(config), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    assert {(a["track"], a["value"]) for a in json.loads(result.stdout)["actions"]} == {(1, False), (2, True)}


@pytest.mark.parametrize(
    "name, extra_tracks, table, tool",
    [
        ("paths.mkv", [], {"track_order": []}, "mkvpropedit"),
        ("paths.mkv", [], {}, "mkvmerge"),  # jpn moves before eng: a remux
        ("paths.mp4", [], {"container": "mkv"}, "mkvmerge"),
        ("paths.mp4", [subtitle("eng", title="Subs")], {"container": "mkv"}, "ffmpeg"),  # mov_text
    ],
)
def test_language_title_and_flag_changes_through_every_apply_path(pipeline, prepared, name, extra_tracks, table, tool):  # noqa: F811
    from vpod.media.probe import probe
    from vpod.media.remux import choose_remuxer

    tracks = [video(title="v"), audio("eng", default=True, title="English"), audio(None, title="Japanese"), *extra_tracks]
    path = prepared(name, tracks, as_name=f"{tool}-{name}")
    if tool != "mkvpropedit":
        assert choose_remuxer(probe(path, pipeline.runner)) == tool
    pol = policy(untagged_language="jpn", audio_languages=["jpn"], clear_track_titles=True, default_subtitle="none", **table)
    final = processed(pipeline, path, pol)
    audio_tracks = [t for t in summary(final) if t[0] == "audio"]
    assert sorted(audio_tracks) == [("audio", "eng", False, False, None), ("audio", "jpn", True, False, None)]
    assert all(t[4] is None for t in summary(final))
    assert all(s[4] is None for s in ffprobe_summary(final))
    assert sorted(s[1] for s in ffprobe_summary(final) if s[0] == "audio") == ["eng", "jpn"]


@pytest.mark.parametrize("clear", [True, False])
def test_track_titles_through_ffmpeg(pipeline, clear):  # noqa: F811
    """FFmpeg 5.1 writes no track titles into MP4; AVI stream names (strn) reach the ffmpeg path."""
    import subprocess

    path = pipeline.library / "titled.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000", "-map", "0", "-map", "1", "-c:v", "mpeg4",
                    "-c:a", "adpcm_ms", "-metadata:s:a:0", "title=Stereo", str(path)], check=True)  # fmt: skip
    final = processed(pipeline, path, policy(container="mkv", clear_track_titles=clear))
    expected = None if clear else "Stereo"
    assert summary(final)[1][4] == expected and ffprobe_summary(final)[1][4] == expected
