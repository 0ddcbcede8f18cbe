"""The example policies in contrib/policies load and do what their comments say."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from vpod.media.model import MATROSKA, MediaInfo, Track
from vpod.policy.plan import TRANSCODE_ACTIONS, RemoveTrack, SetFlag
from vpod.policy.planner import plan
from vpod.policy.original import OriginalLanguage
from vpod.policy.policy import Policy, policy_from_table

POLICIES = Path(__file__).resolve().parents[2] / "contrib" / "policies"
EXAMPLES = [
    "anime.toml", "english-only.toml", "flags-only.toml", "original-first.toml", "original-plus-english.toml",
    "transcode-hevc.toml",
]  # fmt: skip
KOREAN = OriginalLanguage("kor", "radarr", "Parasite")


def load(name: str) -> Policy:
    return policy_from_table({"policy_file": str(POLICIES / name)}, source=None, base_dir=None)


def media(*tracks: tuple[str, str], defaults: tuple[int, ...] = ()) -> MediaInfo:
    built = tuple(
        Track(index=i, type=kind, codec="x", language=language, default=i in defaults, number=i + 1)
        for i, (kind, language) in enumerate(tracks)
    )
    return MediaInfo(Path("/lib/a.mkv"), MATROSKA, 10.0, built, 1, "mkvmerge")


def test_every_example_loads():
    assert sorted(p.name for p in POLICIES.glob("*.toml")) == EXAMPLES
    for path in POLICIES.glob("*.toml"):
        load(path.name)


def test_anime_japanese_audio_and_english_subtitles_by_default():
    m = media(("video", "und"), ("audio", "eng"), ("audio", "jpn"), ("subtitle", "eng"), defaults=(1,))
    p = plan(load("anime.toml"), m)
    assert {a.track: a.value for a in p.actions if isinstance(a, SetFlag)} == {1: False, 2: True, 3: True}


def test_english_only_removes_other_languages():
    m = media(("video", "und"), ("audio", "eng"), ("audio", "fre"), ("subtitle", "eng"), ("subtitle", "spa"), defaults=(1,))
    p = plan(load("english-only.toml"), m)
    assert {a.track for a in p.actions if isinstance(a, RemoveTrack)} == {2, 4}


def test_flags_only_never_needs_a_remux():
    rng = random.Random(7)
    policy = load("flags-only.toml")
    for _ in range(300):
        tracks = [(rng.choice(["video", "audio", "subtitle"]), rng.choice(["eng", "jpn", "und"])) for _ in range(6)]
        m = media(*tracks, defaults=tuple(i for i in range(6) if rng.random() < 0.4))
        assert not plan(policy, m).needs_remux
        assert not plan(policy, replace(m, path=Path("/lib/a.mp4"))).needs_remux  # skipped, never remuxed


def titled(*tracks: tuple[str, str, str | None], defaults: tuple[int, ...] = ()) -> MediaInfo:
    built = tuple(
        Track(index=i, type=kind, codec="x", language=language, title=title, default=i in defaults, number=i + 1)
        for i, (kind, language, title) in enumerate(tracks)
    )
    return MediaInfo(Path("/lib/a.mkv"), MATROSKA, 10.0, built, 1, "mkvmerge")


def flags(p, flag: str = "default") -> dict[int, bool]:  # type: ignore[no-untyped-def]
    return {a.track: a.value for a in p.actions if isinstance(a, SetFlag) and a.flag == flag}


FILM = titled(
    ("video", "und", None), ("audio", "eng", "English dub"), ("audio", "kor", None), ("audio", "fre", None),
    ("audio", "eng", "Commentary"), ("subtitle", "eng", "SDH"), ("subtitle", "eng", None), ("subtitle", "spa", None),
    defaults=(1,),
)  # fmt: skip


def test_original_first_keeps_everything_and_makes_the_original_default():
    p = plan(load("original-first.toml"), FILM, KOREAN)
    assert not any(isinstance(a, RemoveTrack) for a in p.actions)
    assert flags(p) == {1: False, 2: True, 6: True}  # Korean audio, full English subtitles
    assert flags(p, "commentary") == {4: True} and flags(p, "hearing_impaired") == {5: True}
    unknown = plan(load("original-first.toml"), FILM, None)
    assert flags(unknown) == {}  # English audio stays default; no English subtitle is needed under it


def test_original_plus_english_removes_other_dubs_commentary_and_spanish_subtitles():
    p = plan(load("original-plus-english.toml"), FILM, KOREAN)
    assert {a.track for a in p.actions if isinstance(a, RemoveTrack)} == {3, 4, 7}
    assert flags(p) == {1: False, 2: True, 6: True}
    # Not knowing the original language removes nothing by the keep lists.
    unknown = plan(load("original-plus-english.toml"), FILM, None)
    assert {a.track for a in unknown.actions if isinstance(a, RemoveTrack)} == {4}  # commentary only


def test_anime_marks_signs_and_songs_forced():
    m = titled(("video", "und", None), ("audio", "jpn", None), ("subtitle", "eng", "Signs & Songs"), ("subtitle", "eng", "Full"))
    p = plan(load("anime.toml"), m)
    assert flags(p, "forced") == {2: True}
    assert flags(p) == {1: True, 3: True}


def test_transcode_hevc_encodes_big_h264_converts_truehd_and_adds_stereo_aac():
    tracks = (
        Track(index=0, type="video", codec="AVC/H.264/MPEG-4p10", number=1),
        Track(index=1, type="audio", codec="TrueHD Atmos", language="kor", channels=8, default=True, number=2),
        Track(index=2, type="audio", codec="AC-3", language="kor", channels=6, number=3),
        Track(index=3, type="audio", codec="DTS", language="eng", channels=6, number=4),
    )
    big = MediaInfo(Path("/lib/a.mkv"), MATROSKA, 7200.0, tracks, 8 * 10**9, "mkvmerge")  # 4 GB/h
    p = plan(load("transcode-hevc.toml"), big, KOREAN)
    assert [a.describe() for a in p.actions if isinstance(a, TRANSCODE_ACTIONS)] == [
        "track 0: transcode video to HEVC (software, crf 22, preset medium)",
        "track 1: convert audio to EAC3 640 kb/s",
        "track 3: convert audio to EAC3 640 kb/s",
        "add AAC 2 ch 192 kb/s audio made from track 1, right after it",
    ]
    assert {a.track for a in p.actions if isinstance(a, RemoveTrack)} == {2}  # one Korean track: the best
    small = replace(big, size_bytes=2 * 10**9)  # 1 GB/h: below min_gb_per_hour
    assert not any(a.track == 0 for a in plan(load("transcode-hevc.toml"), small, KOREAN).actions if hasattr(a, "track"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_pass_config_check(name, tmp_path):
    from vpod.config import load_config

    config = tmp_path / "config.toml"
    config.write_text(f'allow_root = true\n[policy]\npolicy_file = "{POLICIES / name}"\n')
    assert load_config(config).policy == load(name)


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("on_error", ["skip", "fail"])
def test_examples_serve_as_named_policies_whatever_the_global_on_error(name, on_error, tmp_path):
    """on_error is global, so the examples leave it out (issue 13 finding K)."""
    from vpod.config import load_config

    config = tmp_path / "config.toml"
    config.write_text(
        f'allow_root = true\n[policy]\non_error = "{on_error}"\n[policies.x]\npolicy_file = "{POLICIES / name}"\n'
    )
    assert dict(load_config(config).policies)["x"].on_error == on_error
