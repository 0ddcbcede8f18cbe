"""keep_if_larger judges the video (issue 18): the bytes of the re-encoded video tracks,
counted from their packets in real small files made with ffmpeg, and the decision and
message made from them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.transcode_media import streams as ffprobe_streams
from tests.support.transcode_media import video_packet_bytes, video_with_lossless_audio
from vpod.errors import MediaError
from vpod.media.probe import probe
from vpod.media.tools import ToolRunner
from vpod.media.video_saving import VideoBytes, is_judged, measure_video, packet_bytes, saving_shortfall
from vpod.policy.plan import AddAudio, Plan, SetFlag, TranscodeVideo
from vpod.policy.policy import Policy

RUNNER = ToolRunner(60)


def _encode_video(source: Path, out: Path, video: int) -> Path:
    """``source`` with its stream ``video`` in HEVC, the rest copied, in the same order."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(source), "-map", "0", "-c", "copy",
         f"-c:{video}", "libx265", "-preset", "ultrafast", "-crf", "22", "-x265-params", "log-level=error", str(out)],
        check=True,
    )  # fmt: skip
    return out


def test_a_video_streams_bytes_are_the_sum_of_its_packets_and_the_audio_is_not_counted(tmp_path):
    source = video_with_lossless_audio(tmp_path / "film.mkv", seconds=2.0)
    sums = packet_bytes(source, [0], RUNNER)
    assert sums == {0: video_packet_bytes(source)}
    # The PCM track is most of the file; none of it is in the count.
    assert sums[0] < source.stat().st_size / 5


def test_the_re_encoded_video_is_measured_in_both_files_by_its_own_stream_index(tmp_path):
    # The video comes second (after the PCM track) in both files: the count must follow it.
    source = video_with_lossless_audio(tmp_path / "film.mkv", seconds=2.0, audio_first=True)
    media = probe(source, RUNNER)
    assert [t.type for t in media.tracks] == ["audio", "video"]
    result = _encode_video(source, tmp_path / "encoded.mkv", video=1)
    plan = Plan((TranscodeVideo(1, "hevc", "software", 22, "ultrafast"),))
    video = measure_video(media, plan, result, ffprobe_streams(source), RUNNER)

    assert video == VideoBytes(video_packet_bytes(source), video_packet_bytes(result))
    assert video.result < video.source * 0.9  # the HEVC encode shrank it
    whole = 100 * (1 - result.stat().st_size / source.stat().st_size)
    assert whole < 5 < video.saved_percent  # the whole file says "not smaller"; the video does not
    assert saving_shortfall(video, Policy()) is None


def test_a_file_ffprobe_cannot_read_is_an_error_naming_it(tmp_path):
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x1a\x45\xdf\xa3 not a Matroska file" * 100)
    with pytest.raises(MediaError) as failed:
        packet_bytes(junk, [0], RUNNER)
    assert str(failed.value).startswith(f"{junk}: cannot count the bytes of its video"), failed.value


def test_a_video_stream_with_no_packet_is_an_error_naming_the_file(tmp_path):
    source = video_with_lossless_audio(tmp_path / "film.mkv", seconds=1.0)
    with pytest.raises(MediaError) as failed:
        packet_bytes(source, [0, 1], RUNNER)  # 1 is the PCM track: -select_streams v reads none of it
    assert str(failed.value).startswith(f"{source}: ffprobe read no packet of video stream 1"), failed.value


def test_kept_when_the_video_saved_min_saving_percent():
    assert saving_shortfall(VideoBytes(10_000_000, 9_400_000), Policy()) is None  # 6 % saved
    assert saving_shortfall(VideoBytes(10_000_000, 9_500_000), Policy()) is None  # exactly 5 %
    assert saving_shortfall(VideoBytes(10_000_000, 9_000_000), Policy(min_saving_percent=0)) is None


def test_the_message_says_what_the_video_encode_did():
    short = saving_shortfall(VideoBytes(12_900_000, 12_642_000), Policy())
    assert short == (
        "the video encode saved only 2.0 % (12.3 MiB -> 12.1 MiB of video); keep_if_larger asks for a saving of at "
        "least min_saving_percent = 5 %"
    )
    larger = saving_shortfall(VideoBytes(10_000_000, 10_740_000), Policy(min_saving_percent=10))
    assert larger is not None and larger.startswith("the video encode made the video 7.4 % larger (")
    assert larger.endswith("min_saving_percent = 10 %")


def test_only_a_plan_that_re_encodes_video_under_keep_if_larger_is_judged():
    video = TranscodeVideo(0, "hevc", "software", 22, "medium")
    assert is_judged(Plan((video, AddAudio(1, "aac", 2, 128, "AAC"))), Policy())
    assert not is_judged(Plan((video,)), Policy(keep_if_larger=False))
    assert not is_judged(Plan((AddAudio(1, "aac", 2, 128, "AAC"),)), Policy())  # an audio encode only
    assert not is_judged(Plan((SetFlag(1, "default", True),)), Policy())  # a header edit
