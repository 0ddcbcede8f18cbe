"""What a failed tool's message keeps: the complaint, not its progress output or lines
written by libraries linked into it (found under the systemd unit, issue 18)."""

from __future__ import annotations

from vpod.media.decode_check import decode_errors
from vpod.media.tools import ToolResult, tool_message


def test_a_killed_ffmpeg_with_progress_on_stdout_is_not_described_by_its_progress_blocks():
    progress = "".join(
        f"frame={n}\nfps=25.0\nstream_0_0_q=28.0\nbitrate=900.1kbits/s\ntotal_size={n * 1000}\nout_time_us={n}\n"
        f"out_time_ms={n}\nout_time=00:00:0{n}.000000\ndup_frames=0\ndrop_frames=0\nspeed=1.5x\nprogress=continue\n"
        for n in range(1, 9)
    )
    killed = ToolResult(returncode=-15, stdout=progress, stderr="")
    assert tool_message(killed) == "(no message)"
    said = ToolResult(returncode=1, stdout=progress + "Conversion failed!\n", stderr="")
    assert tool_message(said) == "Conversion failed!"


def test_the_decode_check_ignores_libgcrypts_warning_and_the_null_muxers_timestamps_and_nothing_else():
    assert decode_errors("Warning: using insecure memory!\n") == ""
    muxer = "[null @ 0x55f272b7f780] Application provided invalid, non monotonically increasing dts to muxer in stream 0: 41 >= 41\n"
    assert decode_errors(muxer) == ""
    real = "Warning: using insecure memory!\n" + muxer + "[hevc @ 0x5581] Could not find ref with POC 7\n"
    assert decode_errors(real) == "[hevc @ 0x5581] Could not find ref with POC 7"
