"""The transcoding keys (issue 18 item 1): audio_compat, audio_convert, video_codec,
keep_if_larger, min_saving_percent; parsed and checked, then planned on probed-file
models (no tools). Every "not planned" case has its test, and a file made as the
executor writes a plan's output (tests/integration/test_plan_transcode.py does it with
real tools) plans nothing on a second pass.

The output layout assumed here (the executor's, docs/policy.md "Transcoding"): an added
track right after its source, in the source's language after the plan, titled as
configured, FlagDefault as configured, its other flags off; a converted track keeps its
place, language, title, flags and channels; a transcoded video track keeps everything
but its codec.
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
from vpod.policy.original import OriginalLanguage
from vpod.policy.plan import AddAudio, ChangeContainer, ConvertAudio, Plan, RemoveTrack, SetFlag, SetTitle, TranscodeVideo
from vpod.policy.planner import minimums_measure, plan
from vpod.policy.policy import Policy, policy_from_table
from vpod.policy.selection import policies_from_table
from vpod.tomlschema import section_as_dict

MKVMERGE_NAMES = {
    "aac": "AAC", "ac3": "AC-3", "eac3": "E-AC-3", "opus": "Opus", "flac": "FLAC",
    "hevc": "HEVC/H.265/MPEG-H", "av1": "AV1", "h264": "AVC/H.264/MPEG-4p10",
}  # fmt: skip
H264 = "AVC/H.264/MPEG-4p10"
HOUR = 3600.0


def t(kind: str, codec: str, language: str = "eng", **kw: object) -> Track:
    return Track(index=-1, type=kind, codec=codec, language=language, **kw)  # type: ignore[arg-type]


def media(*tracks: Track, size: int = 4 * 10**9, duration: float | None = HOUR, name: str = "movie.mkv") -> MediaInfo:
    numbered = tuple(replace(track, index=i, number=i + 1) for i, track in enumerate(tracks))
    return MediaInfo(Path("/lib") / name, MATROSKA, duration, numbered, size, "mkvmerge")


def policy(**table: object) -> Policy:
    return policy_from_table(table, source=None, base_dir=None)


def of(p: Plan, kind: type) -> list:  # type: ignore[type-arg]
    return [a for a in p.actions if isinstance(a, kind)]


def applied(m: MediaInfo, p: Plan) -> MediaInfo:
    """The file the executor writes for ``p`` (the layout in the module docstring)."""
    kept = list(expected_tracks(m, p))
    converted = {a.track: a for a in p.actions if isinstance(a, (ConvertAudio, TranscodeVideo))}
    out: list[Track] = []
    for track in kept:
        if track.type == "attachment":
            continue
        action = converted.get(track.index)
        out.append(replace(track, codec=MKVMERGE_NAMES[action.codec]) if action else track)
        for add in (a for a in p.actions if isinstance(a, AddAudio) and a.source == track.index):
            out.append(
                Track(index=-1, type="audio", codec=MKVMERGE_NAMES[add.codec], language=track.language,
                      language_tag=track.language_tag, title=add.title or None, default=add.default, channels=add.channels)
            )  # fmt: skip
    tracks = tuple(replace(x, index=i, number=i + 1) for i, x in enumerate(out))
    path = m.path.with_suffix(".mkv") if of(p, ChangeContainer) else m.path
    return replace(m, path=path, container=MATROSKA, tracks=tracks, size_bytes=m.size_bytes // 3)


COMPAT = {"audio_compat": {"codec": "aac"}}


# -- parsing ---------------------------------------------------------------------------


def test_defaults_are_resolved_when_the_policy_loads():
    p = policy(
        audio_compat=[{"codec": "aac"}, {"codec": "AC-3", "channels": 6}, {"codec": "opus", "channels": 6},
                      {"codec": "eac3"}, {"codec": "flac", "channels": 1}],
        audio_convert={"codecs": ["DTS-HD MA", "TrueHD", "lpcm"], "to": "E-AC-3"},
    )  # fmt: skip
    assert [(e.codec, e.channels, e.bitrate_kbps, e.title, e.default) for e in p.audio_compat] == [
        ("aac", 2, 0, "AAC Stereo", False), ("ac3", 6, 0, "AC-3 5.1", False), ("opus", 6, 0, "Opus 5.1", False),
        ("eac3", 2, 0, "E-AC-3 Stereo", False), ("flac", 1, 0, "FLAC Mono", False),
    ]  # fmt: skip
    # A bitrate left out follows the channels written (the plan's), as audio_convert's does.
    assert [e.bitrate_for(e.channels) for e in p.audio_compat] == [192, 640, 256, 224, None]
    assert p.audio_compat[1].bitrate_for(1) == 192
    assert (p.audio_convert.codecs, p.audio_convert.to, p.audio_convert.bitrate_kbps) == (("dtshd", "truehd", "pcm"), "eac3", 0)
    assert p.audio_convert.bitrate_for(6) == 640 and p.audio_convert.bitrate_for(2) == 224
    for codec, crf, preset, convert in (
        ("hevc", 22, "medium", ("h264", "mpeg2", "mpeg4", "vc1")),
        ("av1", 30, "8", ("h264", "mpeg2", "mpeg4", "vc1")),
        ("H.264", 20, "medium", ("mpeg2", "mpeg4", "vc1")),
    ):
        v = policy(video_codec=codec).video_codec
        assert (v.crf, v.preset, v.convert, v.encoder) == (crf, preset, convert, "software"), codec
    v = policy(video_codec={"codec": "av1", "preset": 6, "crf": 35, "convert": ["AVC", "MPEG-2", "hevc"], "encoder": "vaapi"}).video_codec
    assert (v.codec, v.preset, v.crf, v.convert, v.encoder) == ("av1", "6", 35, ("h264", "mpeg2", "hevc"), "vaapi")
    assert policy(keep_if_larger=False, min_saving_percent=12.5).min_saving_percent == 12.5


def test_the_neutral_values_plan_nothing_and_equal_the_defaults():
    neutral = policy(audio_compat=[], audio_convert={"to": "keep"}, video_codec="keep", keep_if_larger=True, min_saving_percent=5)
    assert neutral == Policy()
    assert policy(audio_convert={}).audio_convert == Policy().audio_convert


@pytest.mark.parametrize(
    "table, key, words",
    [
        ({"audio_compat": {"channels": 2}}, "[policy] audio_compat", "codec is required"),
        ({"audio_compat": {"codec": "mp3"}}, "[policy] audio_compat", "encodes only"),
        ({"audio_compat": {"codec": "aac", "chanels": 2}}, "[policy] audio_compat", "unknown key 'chanels'"),
        ({"audio_compat": [{"codec": "aac"}, {"codec": "aac", "channels": 0}]}, "[policy] audio_compat[1]", "channels"),
        ({"audio_compat": {"codec": "ac3", "bitrate_kbps": 1000}}, "[policy] audio_compat", "640"),
        ({"audio_compat": {"codec": "flac", "bitrate_kbps": 900}}, "[policy] audio_compat", "lossless"),
        # One message for a negative bitrate and for 1-7 (issue 18 follow-up).
        ({"audio_compat": {"codec": "aac", "bitrate_kbps": -128}}, "[policy] audio_compat",
         "bitrate_kbps: expected 0 (the codec's default) or from 8 to 6,144, got -128"),
        ({"audio_compat": {"codec": "aac", "bitrate_kbps": 7}}, "[policy] audio_compat",
         "bitrate_kbps: expected 0 (the codec's default) or from 8 to 6,144, got 7"),
        ({"audio_compat": [{"codec": "aac", "default": True}, {"codec": "ac3", "channels": 6, "default": True}]},
         "[policy] audio_compat", "at most one"),
        ({"audio_compat": [{"codec": "aac"}, {"codec": "aac"}]}, "[policy] audio_compat[1]", "already listed"),
        ({"audio_compat": {"codec": "aac", "title": "Director's Commentary"}}, "[policy] audio_compat", "commentary"),
        ({"audio_compat": {"codec": "flac"}, "audio_convert": {"codecs": ["flac"], "to": "eac3"}},
         "[policy] audio_compat", "converted again"),
        ({"audio_convert": {"codecs": ["dts"], "to": "mp3"}}, "[policy] audio_convert", "encodes only"),
        ({"audio_convert": {"codecs": ["dts", "eac3"], "to": "eac3"}}, "[policy] audio_convert", "converts to"),
        ({"audio_convert": {"codecs": ["atmos"], "to": "eac3"}}, "[policy] audio_convert", "not an audio codec"),
        ({"audio_convert": {"to": "eac3"}}, "[policy] audio_convert", "non-empty list"),
        ({"audio_convert": ["dts"]}, "[policy] audio_convert", "expected a table"),
        # Sub-keys that would have no effect are refused, never dropped (T18C finding 5).
        ({"audio_convert": {"codecs": ["dts"]}}, "[policy] audio_convert",
         'to is required when codecs is given: the codec the listed tracks are converted into, one of aac, ac3, '
         'eac3, opus, flac; to convert nothing, write audio_convert = "keep"'),
        ({"audio_convert": {"codecs": ["dts"], "to": "keep"}}, "[policy] audio_convert", 'codecs: no effect under to = "keep"'),
        ({"video_codec": {"codec": "keep", "crf": 20}}, "[policy] video_codec",
         'crf: no effect under codec = "keep" (nothing is re-encoded); leave it out, or name a codec (hevc, av1, h264)'),
        ({"video_codec": {"codec": "keep", "preset": "slow", "convert": ["h264"], "min_gb_per_hour": 1}},
         "[policy] video_codec", 'convert, min_gb_per_hour, preset: no effect under codec = "keep"'),
        ({"video_codec": {"codec": "hevc", "convert": []}}, "[policy] video_codec",
         'convert = [] converts nothing: list the source codecs to re-encode into hevc (leave convert out for '
         '["h264", "mpeg2", "mpeg4", "vc1"]), or write video_codec = "keep" to re-encode none'),
        # Values echoed as TOML, as written (not Python's True, 95.0 or 'x').
        ({"video_codec": {"codec": "hevc", "crf": True}}, "[policy] video_codec",
         "crf: expected an integer from 0 to 51, got true"),
        ({"video_codec": {"codec": "hevc", "preset": "fastest"}}, "[policy] video_codec", 'got "fastest"'),
        ({"video_codec": "vp9"}, "[policy] video_codec", "expected one of hevc, av1, h264"),
        ({"video_codec": {"codec": "hevc", "convert": ["h264", "hevc"]}}, "[policy] video_codec", "converts to"),
        ({"video_codec": {"codec": "hevc", "convert": ["realvideo"]}}, "[policy] video_codec", "not a video codec"),
        ({"video_codec": {"codec": "hevc", "crf": 60}}, "[policy] video_codec", "crf"),
        ({"video_codec": {"codec": "hevc", "preset": "8"}}, "[policy] video_codec", "preset"),
        ({"video_codec": {"codec": "av1", "preset": "medium"}}, "[policy] video_codec", "preset"),
        ({"video_codec": {"codec": "hevc", "encoder": "amf"}}, "[policy] video_codec", "encoder"),
        ({"video_codec": {"codec": "hevc", "min_gb_per_hour": -1}}, "[policy] video_codec", "min_gb_per_hour"),
        ({"video_codec": {"convert": ["h264"]}}, "[policy] video_codec", "codec is required"),
        ({"min_saving_percent": 95}, "[policy] min_saving_percent", "expected a number from 0 to 90, got 95"),
        ({"keep_if_larger": "yes"}, "[policy] keep_if_larger", "boolean"),
    ],
)
def test_bad_values_are_refused_naming_the_key(table, key, words):
    with pytest.raises(ConfigError) as caught:
        policy(**table)
    assert caught.value.key == key and words in caught.value.reason, caught.value


def test_an_unknown_key_lists_every_known_key_the_transcoding_ones_included():
    with pytest.raises(ConfigError) as caught:
        policy(video_codecs="hevc")
    known = caught.value.reason.split("known keys: ", 1)[1].rstrip(")").split(", ")
    for key in ("audio_compat", "audio_convert", "video_codec", "keep_if_larger", "min_saving_percent", "audio_languages"):
        assert key in known, caught.value.reason


def test_a_named_policy_names_its_own_table_in_errors():
    with pytest.raises(ConfigError) as caught:
        policies_from_table({"films": {"video_codec": "mpeg2"}}, default=Policy(), source=None, base_dir=None)
    assert caught.value.key == "[policies.films] video_codec"
    (name, films), = policies_from_table({"films": {"video_codec": "av1"}}, default=Policy(), source=None, base_dir=None)
    assert films.video_codec.codec == "av1"


def test_config_check_output_reads_back_as_the_same_policy():
    p = policy(
        audio_compat=[{"codec": "aac", "title": ""}, {"codec": "ac3", "channels": 6, "default": True}],
        audio_convert={"codecs": ["dts", "pcm"], "to": "flac"}, video_codec={"codec": "av1", "min_gb_per_hour": 2.5},
        keep_if_larger=False,
    )  # fmt: skip
    data = section_as_dict(p)
    assert data["video_codec"]["codec"] == "av1" and data["audio_compat"][1]["bitrate_kbps"] == 0
    assert policy(**{k: data[k] for k in ("audio_compat", "audio_convert", "video_codec", "keep_if_larger")}) == p


def test_the_new_keys_enter_the_digest_only_when_not_default():
    assert policy(audio_compat=[], video_codec="keep", keep_if_larger=True, min_saving_percent=5.0).digest == Policy().digest
    assert Policy().digest == "e3a4e01966fcd4e0"  # 649f7f0's digest of the defaults: an upgrade re-judges nothing
    digests = {
        policy(**table).digest
        for table in ({}, COMPAT, {"video_codec": "hevc"}, {"video_codec": "av1"}, {"keep_if_larger": False},
                      {"min_saving_percent": 10}, {"audio_convert": {"codecs": ["dts"], "to": "eac3"}})
    }  # fmt: skip
    assert len(digests) == 7


# -- audio_compat ----------------------------------------------------------------------


def test_compat_track_is_added_from_the_best_main_track_of_the_default_language():
    m = media(
        t("video", H264), t("audio", "AC-3", "fre", channels=6, default=True), t("audio", "AC-3", channels=6),
        t("audio", "TrueHD Atmos", channels=8), t("audio", "E-AC-3", channels=2),
    )  # fmt: skip
    p = plan(policy(audio_languages=["eng"], **COMPAT), m)
    assert of(p, AddAudio) == [AddAudio(3, "aac", 2, 192, "AAC Stereo", False)]
    assert p.cost == "transcode" and p.transcodes and p.needs_remux
    assert flags(p) == {1: False, 3: True}  # the source is the default; the added track is not


def flags(p: Plan, flag: str = "default") -> dict[int, bool]:
    return {a.track: a.value for a in p.actions if isinstance(a, SetFlag) and a.flag == flag}


def test_never_an_upmix_and_each_entry_on_its_own():
    m = media(t("video", H264), t("audio", "DTS", channels=2, default=True))
    p = plan(policy(audio_compat=[{"codec": "ac3", "channels": 6}, {"codec": "aac"}]), m)
    assert [(a.codec, a.channels, a.bitrate_kbps, a.title) for a in of(p, AddAudio)] == [
        ("ac3", 2, 192, "AC-3 Stereo"), ("aac", 2, 192, "AAC Stereo")
    ]
    assert plan(policy(audio_compat=[{"codec": "ac3", "channels": 6}, {"codec": "aac"}]), applied(m, p)).is_empty


@pytest.mark.parametrize(
    "entry, source_channels, kbps",
    [({"codec": "ac3", "channels": 6}, 1, 192), ({"codec": "ac3", "channels": 6}, 6, 640),
     ({"codec": "aac", "channels": 6}, 2, 192), ({"codec": "opus", "channels": 8}, 6, 256),
     ({"codec": "ac3", "channels": 6, "bitrate_kbps": 448}, 1, 448), ({"codec": "flac", "channels": 6}, 2, None)],
)  # fmt: skip
def test_the_default_bitrate_follows_the_channels_written(entry, source_channels, kbps):
    # T18C finding 7: AC-3 5.1 from a mono source was planned "1 ch 640 kb/s".
    m = media(t("video", H264), t("audio", "DTS", channels=source_channels, default=True))
    (added,) = of(plan(policy(audio_compat=entry), m), AddAudio)
    assert (added.channels, added.bitrate_kbps) == (min(entry["channels"], source_channels), kbps)


@pytest.mark.parametrize(
    "entry, title",
    [({"codec": "aac"}, "AAC Mono"), ({"codec": "ac3", "channels": 6}, "AC-3 Mono"),
     ({"codec": "aac", "title": "Compat"}, "Compat"), ({"codec": "aac", "channels": 1}, "AAC Mono")],
)  # fmt: skip
def test_the_default_title_names_the_layout_written_and_the_why_what_was_asked(entry, title):
    # T18D N5: from a mono source the added track was titled "AAC Stereo" with 1 channel,
    # and the why-text read "no aac 1 ch eng track" although the entry asks for 2.
    m = media(t("video", H264, title="v"), t("audio", "FLAC", channels=1, default=True))
    p = policy(audio_compat=entry, clear_track_titles=True)
    first = plan(p, m)
    (added,) = of(first, AddAudio)
    assert (added.channels, added.title) == (1, title)
    asked = entry.get("channels", 2)
    fewer = " (from a 1-channel source: 1 ch written)" if asked > 1 else ""
    assert added.why.startswith(f"audio_compat[0]: no {entry['codec']} {asked} ch eng track{fewer}; made from track 1"), added.why
    assert plan(p, applied(m, first)).is_empty  # clear_track_titles leaves the title written
    # a mono compat track an older vpod titled with the entry's title ("AAC Stereo") keeps it too
    older = applied(m, first)
    older = replace(older, tracks=tuple(replace(x, title=p.audio_compat[0].title) if x.index == 2 else x for x in older.tracks))
    assert of(plan(p, older), SetTitle) == []


def test_not_planned_when_an_equivalent_track_is_there():
    # same codec family and channel count, in the default audio language, whatever its title and flags
    m = media(t("video", H264), t("audio", "DTS-HD Master Audio", channels=6, default=True), t("audio", "AAC", channels=2, title="Stereo"))
    assert of(plan(policy(**COMPAT), m), AddAudio) == []
    # in another language it does not count
    other = media(t("video", H264), t("audio", "DTS", channels=6, default=True), t("audio", "AAC", "fre", channels=2))
    assert of(plan(policy(**COMPAT), other), AddAudio) == [AddAudio(1, "aac", 2, 192, "AAC Stereo", False)]


@pytest.mark.parametrize("codec, channels", [("AAC", 2), ("AAC", 1), ("aac", 2)])
def test_not_planned_when_the_source_already_is_that_codec_with_at_most_those_channels(codec, channels):
    m = media(t("video", H264), t("audio", codec, channels=channels, default=True))
    assert plan(policy(**COMPAT), m).is_empty


def test_a_source_with_more_channels_in_the_codec_still_gets_its_downmix():
    m = media(t("video", H264), t("audio", "AAC", channels=6, default=True))
    assert of(plan(policy(**COMPAT), m), AddAudio) == [AddAudio(1, "aac", 2, 192, "AAC Stereo", False)]


def test_never_made_from_a_track_that_is_removed():
    # eng is removed by keep_audio_languages: the default audio (and the source) is jpn
    m = media(t("video", H264), t("audio", "TrueHD", channels=8), t("audio", "AC-3", "jpn", channels=6, default=True))
    p = plan(policy(audio_languages=["eng"], keep_audio_languages=["jpn"], **COMPAT), m)
    assert set(removed(p)) == {1} and of(p, AddAudio) == [AddAudio(2, "aac", 2, 192, "AAC Stereo", False)]
    # max_audio_per_language removes the lower-ranked track, never the source
    m = media(t("video", H264), t("audio", "DTS", channels=6, default=True), t("audio", "TrueHD", channels=6))
    p = plan(policy(max_audio_per_language=1, audio_codec_preference=["truehd"], **COMPAT), m)
    assert set(removed(p)) == {1} and of(p, AddAudio)[0].source == 2


def removed(p: Plan) -> dict[int, str]:
    return {a.track: a.reason for a in p.actions if isinstance(a, RemoveTrack)}


def test_never_made_from_commentary_or_audio_description():
    m = media(
        t("video", H264), t("audio", "TrueHD", channels=8, title="Director's Commentary"),
        t("audio", "DTS", channels=6, visual_impaired=True), t("audio", "AC-3", channels=2, default=True),
    )  # fmt: skip
    assert of(plan(policy(audio_compat={"codec": "ac3", "channels": 6}), m), AddAudio) == []  # the main track is AC-3 2.0
    assert of(plan(policy(audio_compat={"codec": "eac3", "channels": 6}), m), AddAudio) == [
        AddAudio(3, "eac3", 2, 224, "E-AC-3 Stereo", False)  # 2 channels written: E-AC-3's stereo default and title
    ]
    only_commentary = media(t("video", H264), t("audio", "TrueHD", channels=8, commentary=True, default=True))
    assert of(plan(policy(**COMPAT), only_commentary), AddAudio) == []


def test_the_added_track_is_kept_not_default_and_not_converted_on_a_second_pass():
    m = media(
        t("video", H264), t("audio", "TrueHD", channels=6, default=True), t("audio", "AC-3", channels=6),
        t("audio", "AAC", "jpn", channels=2), t("subtitle", "SubRip/SRT"),
    )  # fmt: skip
    p = policy(
        audio_compat={"codec": "ac3", "channels": 6}, max_audio_per_language=1, audio_codec_preference=["ac3", "truehd"],
        audio_convert={"codecs": ["truehd"], "to": "flac"}, mark_original=True, clear_track_titles=True,
        video_codec="hevc",
    )  # fmt: skip
    first = plan(p, m, OriginalLanguage("eng", "radarr", "A film"))
    # the AC-3 already there meets the entry: kept although max_audio_per_language = 1 and
    # preferred by audio_codec_preference, it does not become the default
    assert of(first, AddAudio) == [] and removed(first) == {}
    assert flags(first) == {} and of(first, ConvertAudio) == [ConvertAudio(1, "flac", None, None)]
    assert 2 not in flags(first, "original")  # its FlagOriginal is left as it is
    out = applied(m, first)
    assert plan(p, out, OriginalLanguage("eng", "radarr", "A film")).is_empty


def test_default_true_makes_the_compat_track_the_default_audio():
    m = media(t("video", H264), t("audio", "DTS", channels=6, default=True))
    p = policy(audio_compat={"codec": "aac", "default": True})
    first = plan(p, m)
    assert of(first, AddAudio) == [AddAudio(1, "aac", 2, 192, "AAC Stereo", True)] and flags(first) == {1: False}
    assert plan(p, applied(m, first)).is_empty
    # an equivalent track already there becomes the default
    there = media(t("video", H264), t("audio", "DTS", channels=6, default=True), t("audio", "AAC", channels=2))
    assert flags(plan(p, there)) == {1: False, 2: True}


def test_the_title_of_a_compat_track_survives_clear_track_titles():
    m = media(t("video", H264, title="x"), t("audio", "DTS", channels=6, default=True, title="DTS"))
    p = policy(clear_track_titles=True, **COMPAT)
    first = plan(p, m)
    assert {a.track for a in of(first, SetTitle)} == {0, 1}
    assert plan(p, applied(m, first)).is_empty


def test_a_header_only_plan_adds_converts_and_transcodes_nothing():
    m = media(t("video", H264), t("audio", "DTS", channels=6, default=False))
    p = policy(video_codec="hevc", audio_convert={"codecs": ["dts"], "to": "eac3"}, **COMPAT)
    assert len(plan(p, m).actions) == 4
    assert plan(p, m, header_only=True).actions == (SetFlag(1, "default", True),)


# -- audio_convert -----------------------------------------------------------------------


def test_convert_every_kept_track_of_a_listed_family():
    m = media(
        t("video", H264), t("audio", "DTS-HD Master Audio", channels=8, default=True), t("audio", "DTS", "fre", channels=6),
        t("audio", "pcm_s24le", "ger", channels=2), t("audio", "FLAC", channels=2, commentary=True),
        t("audio", "TrueHD", "spa", channels=6), t("audio", "E-AC-3", "ita", channels=6),
    )  # fmt: skip
    p = plan(policy(audio_convert={"codecs": ["dts", "pcm", "flac", "truehd"], "to": "eac3"}, keep_audio_languages=["eng", "fre", "ger", "ita"]), m)
    assert sorted(of(p, ConvertAudio)) == [
        ConvertAudio(1, "eac3", 640), ConvertAudio(2, "eac3", 640), ConvertAudio(3, "eac3", 224), ConvertAudio(4, "eac3", 224)
    ]  # dts covers DTS-HD; the removed spa TrueHD and the E-AC-3 (already the target) are not converted
    only_hd = plan(policy(audio_convert={"codecs": ["dtshd"], "to": "ac3", "bitrate_kbps": 448}), m)
    assert of(only_hd, ConvertAudio) == [ConvertAudio(1, "ac3", 448)]


def test_a_converted_track_meets_audio_compat_by_itself():
    m = media(t("video", H264), t("audio", "TrueHD", channels=6, default=True))
    p = policy(audio_convert={"codecs": ["truehd"], "to": "eac3"}, audio_compat={"codec": "eac3", "channels": 6})
    first = plan(p, m)
    assert of(first, ConvertAudio) == [ConvertAudio(1, "eac3", 640)] and of(first, AddAudio) == []
    assert plan(p, applied(m, first)).is_empty


# -- video_codec --------------------------------------------------------------------------


def test_video_of_a_listed_codec_is_transcoded():
    for codec in (H264, "h264", "MPEG-1/2", "mpeg2video", "MPEG-4p2", "VC-1"):
        p = plan(policy(video_codec="hevc"), media(t("video", codec), t("audio", "AAC", channels=2, default=True)))
        assert of(p, TranscodeVideo) == [TranscodeVideo(0, "hevc", "software", 22, "medium")], codec
        assert p.cost == "transcode"


@pytest.mark.parametrize("codec", ["HEVC/H.265/MPEG-H", "hevc", "AV1", "VP9"])
def test_not_planned_when_the_codec_is_the_target_or_not_listed(codec):
    assert plan(policy(video_codec="hevc"), media(t("video", codec), t("audio", "AAC", channels=2, default=True))).is_empty


def test_not_planned_for_cover_art():
    # ffprobe's attached_pic becomes an attachment (vpod.media.probe); an image codec is no family
    m = media(t("video", "mjpeg"), t("audio", "AAC", channels=2, default=True), t("attachment", "png"))
    assert plan(policy(video_codec={"codec": "hevc", "convert": ["h264", "mpeg2", "mpeg4", "vc1", "vp9", "av1"]}), m).is_empty


def test_minimum_bitrate_and_size_per_hour():
    tracks = (t("video", H264), t("audio", "AAC", channels=2, default=True))
    rule = {"video_codec": {"codec": "hevc", "min_bitrate_kbps": 4000, "min_gb_per_hour": 1.5}}
    # 2 GB in an hour: 4,444 kb/s and 2 GB/h: both reached
    assert of(plan(policy(**rule), media(*tracks, size=2 * 10**9)), TranscodeVideo)
    # 1.6 GB in an hour: 3,556 kb/s is below min_bitrate_kbps
    assert plan(policy(**rule), media(*tracks, size=16 * 10**8)).is_empty
    # 1.8 GB in 70 minutes: 3,429 kb/s, 1.54 GB/h; with the bitrate rule alone at 3000: planned
    assert of(plan(policy(video_codec={"codec": "hevc", "min_bitrate_kbps": 3000}), media(*tracks, size=18 * 10**8, duration=4200)), TranscodeVideo)
    # 1 GB in an hour is below min_gb_per_hour 1.5
    assert plan(policy(video_codec={"codec": "hevc", "min_gb_per_hour": 1.5}), media(*tracks, size=10**9)).is_empty
    unknown = plan(policy(**rule), media(*tracks, size=10**10, duration=None))
    assert unknown.is_empty and "duration is unknown" in unknown.warnings[0]
    assert of(plan(policy(video_codec="hevc"), media(*tracks, size=10, duration=None)), TranscodeVideo)  # no minimum


# The minimums judge the file less its audio_compat tracks at their nominal bitrate (T18C
# finding 1: a file just under min_gb_per_hour got an AAC track, was over it afterwards,
# and failed its verification on every attempt).
UNDER = {"audio_compat": {"codec": "aac", "channels": 2}, "video_codec": {"codec": "hevc", "min_gb_per_hour": 1.5}}
AAC_HOUR = 192_000 // 8 * 3600  # 86.4 MB: 192 kb/s for an hour


def test_the_minimums_do_not_count_an_audio_compat_track_at_its_nominal_bitrate():
    source = media(t("video", H264), t("audio", "FLAC", channels=6, default=True), size=147 * 10**7)  # 1.47 GB/h
    first = plan(policy(**UNDER), source)
    assert not of(first, TranscodeVideo) and [a.bitrate_kbps for a in of(first, AddAudio)] == [192]
    # the output: 1.5564 GB/h in all, but 1.47 GB/h less the added track's 192 kb/s
    output = replace(applied(source, first), size_bytes=source.size_bytes + AAC_HOUR)
    assert output.size_bytes / 10**9 > 1.5 and [t.codec for t in output.tracks][1:3] == ["FLAC", "AAC"]
    assert plan(policy(**UNDER), output).is_empty
    # the same bytes without a compat track (FLAC and AC-3 stereo) are over: transcoded
    other = replace(output, tracks=tuple(replace(x, codec="AC-3") if x.codec == "AAC" else x for x in output.tracks))
    assert of(plan(policy(**UNDER), other), TranscodeVideo)


def test_the_source_and_the_plans_output_read_the_same_measure():
    for compat, added_kbps in (({"codec": "aac"}, 192), ({"codec": "aac", "bitrate_kbps": 256}, 256),
                               ([{"codec": "ac3", "channels": 6}, {"codec": "aac"}], 640 + 192)):  # fmt: skip
        p = policy(audio_compat=compat, video_codec={"codec": "hevc", "min_bitrate_kbps": 1})
        source = media(t("video", H264), t("audio", "DTS-HD Master Audio", channels=6, default=True), size=3 * 10**9)
        first = plan(p, source)
        assert sum(a.bitrate_kbps for a in of(first, AddAudio)) == added_kbps, compat
        output = replace(applied(source, first), size_bytes=source.size_bytes + added_kbps * 1000 // 8 * 3600)
        before, after = minimums_measure(p, source), minimums_measure(p, output)
        assert before == (pytest.approx(3 * 10**9 * 8 / 3600 / 1000), pytest.approx(3.0), 0)
        assert (after.kbps, after.gb_per_hour) == (pytest.approx(before.kbps), pytest.approx(before.gb_per_hour))
        assert after.less_kbps == added_kbps


def test_what_the_measure_leaves_out():
    p = policy(**UNDER)
    # the best main track itself meets the entry (an AAC stereo film): nothing is subtracted
    only_aac = media(t("video", H264), t("audio", "AAC", channels=2, default=True), size=16 * 10**8)
    assert minimums_measure(p, only_aac).less_kbps == 0 and of(plan(p, only_aac), TranscodeVideo)
    # an AAC stereo track in another language, or commentary, is no compat track
    for extra in (t("audio", "AAC", "fre", channels=2), t("audio", "AAC", channels=2, commentary=True)):
        m = media(t("video", H264), t("audio", "FLAC", channels=6, default=True), extra, size=16 * 10**8)
        assert minimums_measure(p, m).less_kbps == 0, extra
    # a FLAC entry has no nominal bitrate: nothing is subtracted for it
    flac = policy(audio_compat={"codec": "flac", "channels": 2}, video_codec="hevc")
    m = media(t("video", H264), t("audio", "DTS", channels=6, default=True), t("audio", "FLAC", channels=2))
    assert minimums_measure(flac, m).less_kbps == 0
    assert minimums_measure(p, media(t("video", H264), duration=None)) is None


def test_the_why_says_what_was_measured():
    tracks = (t("video", H264), t("audio", "FLAC", channels=6, default=True), t("audio", "AAC", channels=2))
    m = media(*tracks, size=2 * 10**9)
    [action] = of(plan(policy(**UNDER), m), TranscodeVideo)
    assert action.why == (
        "video_codec: h264 is in convert [h264, mpeg2, mpeg4, vc1]; "
        "4,252 kb/s, 1.91 GB/h (the file less 192 kb/s of audio_compat tracks)"
    )
    [action] = of(plan(policy(**UNDER), replace(m, tracks=m.tracks[:2])), TranscodeVideo)
    assert action.why.endswith("; 4,444 kb/s, 2.00 GB/h (the file)")


def test_minimums_of_judges_the_output_by_its_sources_measure():
    """The verification's re-plan (vpod.media.verify.verify_written): an output over a
    minimum its source was under plans no video transcode; everything else is still planned."""
    source = media(t("video", H264), t("audio", "FLAC", channels=6, default=True), size=149 * 10**7)
    # an output larger than its nominal bytes explain (a real encoder, a converted track)
    output = replace(applied(source, plan(policy(**UNDER), source)), size_bytes=2 * 10**9)
    assert of(plan(policy(**UNDER), output), TranscodeVideo)
    assert plan(policy(**UNDER), output, minimums_of=source).is_empty
    # strict for the rest: a flag left wrong is still to do
    wrong = replace(output, tracks=tuple(replace(x, default=False) for x in output.tracks))
    assert [a.describe() for a in plan(policy(**UNDER), wrong, minimums_of=source).actions] == [
        "track 1: set default flag on"
    ]
    # a source over the minimum: its measure plans the transcode (the output of a declined one)
    over = replace(source, size_bytes=2 * 10**9)
    assert of(plan(policy(**UNDER), output, minimums_of=over), TranscodeVideo)
    # the source's duration unknown: not re-encoded, as its own plan said
    assert not of(plan(policy(**UNDER), output, minimums_of=replace(source, duration_seconds=None)), TranscodeVideo)


# -- a second pass plans nothing ------------------------------------------------------------------


def test_second_plan_is_empty_for_many_transcoding_policies_and_files():
    rng = random.Random(18)
    compat_choices = [[], [{"codec": "aac"}], [{"codec": "ac3", "channels": 6}, {"codec": "aac", "default": True}],
                      [{"codec": "eac3", "channels": 6}]]  # fmt: skip
    policies = [
        policy(
            audio_languages=a, keep_audio_languages=k, remove_commentary=True, untagged_language=u, clear_track_titles=c,
            max_audio_per_language=n, audio_codec_preference=pref, audio_compat=compat, video_codec="hevc",
            audio_convert={"codecs": ["dts", "truehd", "pcm"], "to": to} if to != "keep" else "keep", container="mkv",
            mark_original=True,
        )
        for a, k, u, c, n, pref, compat, to in itertools.product(
            [["eng"], ["jpn", "eng"], []], [[], ["jpn"]], ["", "eng"], [False, True], [0, 1, 2],
            [[], ["aac", "ac3", "truehd"]], compat_choices, ["keep", "eac3"],
        )
    ]  # fmt: skip
    seen = {"added": 0, "kept_by_limit": 0, "default_added": 0}
    codecs = ["TrueHD Atmos", "DTS-HD Master Audio", "DTS", "AC-3", "E-AC-3", "AAC", "pcm_s24le", "FLAC", "Opus"]
    for n in range(40):
        tracks = [t("video", rng.choice([H264, "HEVC/H.265/MPEG-H", "MPEG-1/2"]))]
        for _ in range(rng.randint(1, 4)):
            tracks.append(t(
                "audio", rng.choice(codecs), rng.choice(["eng", "jpn", "fre", "und"]), default=rng.random() < 0.5,
                channels=rng.choice([1, 2, 6, 8]), title=rng.choice([None, "Commentary", "Main", "AAC Stereo"]),
                original=rng.random() < 0.3,
            ))  # fmt: skip
        tracks.append(t("subtitle", "SubRip/SRT", rng.choice(["eng", "jpn"])))
        m = media(*tracks, name=rng.choice(["a.mkv", "a.mp4"]))
        original = rng.choice([None, OriginalLanguage("jpn", "sonarr", "x"), OriginalLanguage("eng", "radarr", "y")])
        for pol in rng.sample(policies, 40):
            first = plan(pol, m, original)
            again = plan(pol, applied(m, first), original)
            assert again.is_empty, (n, pol, m.tracks, first.actions, again.actions)
            seen["added"] += bool(of(first, AddAudio))
            seen["default_added"] += any(a.default for a in of(first, AddAudio))
            seen["kept_by_limit"] += bool(of(first, AddAudio) and pol.max_audio_per_language)
    assert min(seen.values()) > 50, seen  # the cases that matter were met


def test_a_folder_file_may_set_the_transcoding_keys():
    from vpod.policy.policy import policy_with_overrides

    base = policy(**COMPAT)
    folder = policy_with_overrides(base, {"video_codec": "av1", "min_saving_percent": 20}, source=Path("/lib/.vpod.toml"))
    assert (folder.video_codec.codec, folder.min_saving_percent, folder.audio_compat) == ("av1", 20.0, base.audio_compat)
    with pytest.raises(ConfigError) as caught:
        policy_with_overrides(base, {"audio_convert": {"codecs": ["dts"], "to": "mp3"}}, source=Path("/lib/.vpod.toml"))
    assert caught.value.key == "audio_convert" and "encodes only" in caught.value.reason
