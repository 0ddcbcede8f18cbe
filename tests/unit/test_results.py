"""Text helpers for paths and messages in logs and terminal output."""

from __future__ import annotations

from vpod.results import as_lines, display_path, one_line


def test_one_line_escapes_control_characters_and_keeps_the_rest():
    assert one_line("a name\nwith\ta tab é") == "a name\\nwith\\ta tab é"
    assert one_line(None) == ""


def test_display_path_shows_undecodable_bytes():
    assert display_path(b"bad\xffname.mkv") == "bad\\xffname.mkv"


def test_as_lines_keeps_a_multi_line_error_as_indented_lines():
    text = "ffprobe exited: moov atom not found\nfile:/a\tb.mp4: Invalid data\n\n"
    assert as_lines(text, "    ") == "ffprobe exited: moov atom not found\n    file:/a\\tb.mp4: Invalid data"
    assert as_lines(None, "  ") == ""
