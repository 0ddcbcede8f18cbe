"""The ffmpeg command of a transcode, the progress reader's speed/fps, colour and HDR rules,
the encode time limit and the priority wrapper (issue 18, "exec"; the keep_if_larger rule:
test_video_saving.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vpod.errors import MediaError
from vpod.media.encoders import EncoderChoice, TranscodeSettings
from vpod.media.limits import ToolLimits
from vpod.media.model import MediaInfo, Track
from vpod.media.tool_progress import ffmpeg_line_reader
from vpod.media.transcode import VideoEncode, check_one_video_encode, ffmpeg_indexes, transcode_args
from vpod.media.video_color import check_hdr_kept, check_progressive, color_args, output_pixel_format, video_color
from vpod.outcomes import Reason
from vpod.policy.plan import AddAudio, ConvertAudio, Plan, RemoveTrack, Reorder, SetFlag, TranscodeVideo

SOURCE = Path("/media/Film.mkv")


def _media(size: int = 10_000_000) -> MediaInfo:
    tracks = (
        Track(0, "video", "AVC/H.264/MPEG-4p10", "und", default=True),
        Track(1, "audio", "TrueHD", "eng", title="Surround", default=True, channels=6),
        Track(2, "audio", "AC-3", "fre", default=False, channels=6),
        Track(3, "subtitle", "SubRip/SRT", "eng"),
    )
    return MediaInfo(SOURCE, "matroska", 600.0, tracks, size, "mkvmerge", attachments=1)


STREAMS = [
    {"index": 0, "codec_type": "video", "codec_name": "h264", "pix_fmt": "yuv420p"},
    {"index": 1, "codec_type": "audio", "codec_name": "truehd", "disposition": {"default": 1}},
    {"index": 2, "codec_type": "audio", "codec_name": "ac3"},
    {"index": 3, "codec_type": "subtitle", "codec_name": "subrip"},
    {"index": 4, "codec_type": "attachment", "tags": {"filename": "font.ttf"}},
]
X265 = VideoEncode(EncoderChoice("libx265", "", "", ("yuv420p", "yuv420p10le")), video_color(STREAMS[0]), "yuv420p")


def _pairs(args: list[str]) -> list[tuple[str, str]]:
    return list(zip(args, args[1:]))


def test_one_command_writes_the_whole_plan_with_the_added_track_right_after_its_source():
    plan = Plan((
        RemoveTrack(2, "keep_audio_languages"), SetFlag(3, "forced", True),
        TranscodeVideo(0, "hevc", "software", 22, "medium"), AddAudio(1, "aac", 2, 192, "AAC Stereo"),
    ))  # fmt: skip
    args = transcode_args(_media(), plan, Path("/media/.vpod-tmp-x.mkv"), STREAMS, {0: X265})
    maps = [b for a, b in _pairs(args) if a == "-map"]
    assert maps == ["0:0", "0:1", "0:1", "0:3", "0:t?"]  # the French track removed; the AAC after its source
    pairs = _pairs(args)
    assert ("-c", "copy") in pairs and ("-map_chapters", "0") in pairs
    assert ("-c:0", "libx265") in pairs and ("-crf:0", "22") in pairs and ("-preset:0", "medium") in pairs
    assert ("-pix_fmt:0", "yuv420p") in pairs
    assert ("-c:2", "aac") in pairs and ("-b:2", "192k") in pairs and ("-ac:2", "2") in pairs
    assert "-c:1" not in args and "-c:3" not in args  # copied
    assert ("-metadata:s:2", "title=AAC Stereo") in pairs and ("-metadata:s:2", "language=eng") in pairs
    assert ("-disposition:2", "0") in pairs and ("-disposition:1", "default") in pairs
    assert ("-disposition:3", "forced") in pairs
    assert ("-metadata:s:0", "BPS=") in pairs  # the source's statistics do not describe the new stream
    assert args[:1] == ["ffmpeg"] and args[-3:] == ["-f", "matroska", "file:/media/.vpod-tmp-x.mkv"]
    assert ("-progress", "pipe:1") in pairs


def test_converted_audio_keeps_its_place_and_a_reorder_is_followed():
    plan = Plan((ConvertAudio(1, "eac3", 640), Reorder((0, 2, 1, 3))))
    args = transcode_args(_media(), plan, Path("/media/.vpod-tmp-x.mkv"), STREAMS, {}, progress=False)
    assert [b for a, b in _pairs(args) if a == "-map"] == ["0:0", "0:2", "0:1", "0:3", "0:t?"]
    assert ("-c:2", "eac3") in _pairs(args) and ("-b:2", "640k") in _pairs(args)
    assert "-progress" not in args


def test_matroska_track_ids_map_to_ffmpeg_streams_by_position_and_a_disagreement_is_refused():
    assert ffmpeg_indexes(_media(), STREAMS) == {0: 0, 1: 1, 2: 2, 3: 3}
    with pytest.raises(MediaError, match="different tracks"):
        ffmpeg_indexes(_media(), STREAMS[1:])


def test_ffmpeg_progress_blocks_carry_speed_and_fps_as_keywords():
    seen: list[tuple[float, dict[str, object]]] = []
    read = ffmpeg_line_reader(lambda percent, **kw: seen.append((percent, kw)), 100.0)
    block = ["frame=240", "fps=48.00", "out_time_us=10000000", "speed=2.01x", "progress=continue"]
    for line in [*block, "fps=0.00", "out_time_us=N/A", "speed=N/A", "progress=continue", "speed=1.5x", "progress=end"]:
        read(line)
    assert seen == [(10.0, {"speed": 2.01, "fps": 48.0}), (100.0, {"speed": 1.5, "fps": None})]


HDR10 = {
    "codec_type": "video", "pix_fmt": "yuv420p10le", "color_primaries": "bt2020", "color_transfer": "smpte2084",
    "color_space": "bt2020nc", "color_range": "tv",
    "side_data_list": [
        {"side_data_type": "Mastering display metadata", "red_x": "34000/50000", "red_y": "16000/50000",
         "green_x": "13250/50000", "green_y": "34500/50000", "blue_x": "7500/50000", "blue_y": "3000/50000",
         "white_point_x": "15635/50000", "white_point_y": "16450/50000", "min_luminance": "50/10000",
         "max_luminance": "10000000/10000"},
        {"side_data_type": "Content light level metadata", "max_content": 1000, "max_average": 400},
    ],
}  # fmt: skip


def test_hdr10_is_read_and_written_as_x265_and_svtav1_parameters():
    color = video_color(HDR10)
    assert color.depth == 10 and color.hdr and color.light == (1000, 400)
    assert color.mastering is not None and color.mastering.red == (Fraction(34000, 50000), Fraction(16000, 50000))
    x265 = dict(_pairs(color_args(color, "libx265", 0)))
    assert x265["-color_trc:0"] == "smpte2084" and x265["-color_primaries:0"] == "bt2020"
    assert "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)" in x265["-x265-params:0"]
    assert "max-cll=1000,400" in x265["-x265-params:0"]
    svt = dict(_pairs(color_args(color, "libsvtav1", 0)))["-svtav1-params:0"]
    assert "mastering-display=G(0.2650,0.6900)" in svt and "content-light=1000,400" in svt
    check_hdr_kept(color, "libx265", SOURCE)  # no error


def test_what_cannot_be_kept_fails_with_hdr_not_kept():
    with pytest.raises(MediaError) as pq_h264:
        check_hdr_kept(video_color(HDR10), "libx264", SOURCE)
    assert pq_h264.value.reason is Reason.HDR_NOT_KEPT and pq_h264.value.permanent
    dolby = {**HDR10, "side_data_list": [{"side_data_type": "DOVI configuration record", "dv_profile": 8}]}
    with pytest.raises(MediaError, match="Dolby Vision"):
        check_hdr_kept(video_color(dolby), "libx265", SOURCE)
    twelve = video_color({"pix_fmt": "yuv420p12le"})
    with pytest.raises(MediaError, match="12-bit") as depth:
        output_pixel_format(twelve, ("yuv420p", "yuv420p10le"), "libsvtav1", SOURCE)
    assert depth.value.reason is Reason.HDR_NOT_KEPT
    assert output_pixel_format(video_color({"pix_fmt": "yuv422p10le"}), ("yuv420p", "yuv420p10le"), "x", SOURCE) == "yuv420p10le"


@pytest.mark.parametrize("order", ["tt", "bb", "tb", "bt"])
def test_an_interlaced_source_declines_the_video_encode_naming_its_field_order(order):
    with pytest.raises(MediaError) as refused:
        check_progressive({"codec_name": "mpeg2video", "field_order": order}, SOURCE)
    assert refused.value.reason is Reason.INTERLACED_NOT_KEPT and refused.value.permanent
    assert f"field order {order}" in str(refused.value) and 'video_codec = "keep"' in str(refused.value)


@pytest.mark.parametrize("stream", [{"field_order": "progressive"}, {"field_order": "unknown"}, {}])
def test_a_progressive_or_unknown_field_order_is_encoded(stream):
    check_progressive(stream, SOURCE)  # no error


def test_an_encode_limit_grows_with_the_duration():
    limits = ToolLimits(probe_seconds=60, base_seconds=600, seconds_per_gib=300, encode_seconds_per_hour=28800)
    assert limits.for_encode(10 * 1024**3, 7200.0) == 600 + 2 * 28800
    assert limits.for_encode(1024**3, None) == limits.for_size(1024**3)


def test_encoders_run_under_nice_and_ionice():
    assert TranscodeSettings(10, "idle").wrapper() == ("nice", "-n", "10", "ionice", "-t", "-c", "3")
    assert TranscodeSettings(5, "best-effort").wrapper() == ("nice", "-n", "5", "ionice", "-t", "-c", "2", "-n", "7")
    assert TranscodeSettings(0, "none").wrapper() == ()


def test_the_decode_check_reads_three_windows_and_counts_frames():
    from vpod.media.decode_check import _frames, check_points

    assert check_points(3600.0) == (0.0, 1800.0, 3597.0)
    assert check_points(4.0) == (0.0,) and check_points(None) == (0.0,)
    assert _frames("frame=0\nprogress=continue\nframe=48\nprogress=end\n") == 48
    assert _frames("progress=end\n") == 0


def test_verification_names_a_track_whose_codec_or_channels_are_not_the_planned_ones():
    from vpod.media.layout import planned_layout
    from vpod.media.verify import _compare_codecs, codec_family_of

    assert [codec_family_of(Track(0, "video", name)) for name in ("HEVC/H.265/MPEG-H", "hevc", "AVC/H.264/MPEG-4p10", "AV1")] == [
        "hevc", "hevc", "h264", "av1",
    ]  # fmt: skip
    # One family table (vpod/policy/codecs.py) for the planner and the verification: what
    # mkvmerge and ffprobe call MPEG-2 and VC-1 is one family, as video_codec's convert names it.
    assert [codec_family_of(Track(0, "video", name)) for name in ("MPEG-1/2", "mpeg2video", "VC-1", "vc1")] == [
        "mpeg2", "mpeg2", "vc1", "vc1",
    ]  # fmt: skip
    media = _media()
    plan = Plan((TranscodeVideo(0, "hevc", "software", 22, "medium"), AddAudio(1, "aac", 2, 192, "AAC Stereo")))
    planned = planned_layout(media, plan)
    written = [Track(0, "video", "AVC/H.264/MPEG-4p10"), Track(1, "audio", "TrueHD", channels=6),
               Track(2, "audio", "AAC", channels=6), Track(3, "audio", "AC-3", channels=6), Track(4, "subtitle", "SubRip/SRT")]  # fmt: skip
    problems = _compare_codecs("mkvmerge", written, planned, same_reader=True)
    assert problems == [
        "mkvmerge: track 0 (video) codec is 'AVC/H.264/MPEG-4p10', expected hevc",
        "mkvmerge: track 2 (audio) has 6 channels, expected 2",
    ]


def test_a_plan_that_encodes_two_video_tracks_is_declined_with_what_to_do():
    # T18D N3: FFmpeg 5.1 writes the second encoded video track so that it fails the decode check.
    one = Plan((TranscodeVideo(0, "hevc"), AddAudio(2, "aac", 2, 192, "AAC Stereo")))
    check_one_video_encode(one, SOURCE)  # no error
    with pytest.raises(MediaError) as refused:
        check_one_video_encode(one._replace(actions=(*one.actions, TranscodeVideo(1, "hevc"))), SOURCE)
    assert refused.value.reason is Reason.SEVERAL_VIDEO_TRACKS and refused.value.permanent
    assert "2 video tracks (tracks 0, 1)" in str(refused.value) and 'video_codec = "keep"' in str(refused.value)
    assert "remove the extra video track" in str(refused.value)
