"""ToolRunner.run with on_output_line: stdout lines as they come, the run's rules kept."""

from __future__ import annotations

import sys

import pytest

from vpod.errors import ToolError, ToolTimeout
from vpod.media.tools import ToolRunner

PY = sys.executable


def test_lines_arrive_while_the_tool_runs_and_the_whole_output_is_kept(tmp_path):
    # The tool prints its second line only once the test has seen the first: were lines
    # handed over at exit only, it would wait for ever and be killed by the timeout.
    seen = tmp_path / "seen"
    script = (
        "import os, sys, time\n"
        "print('#GUI#progress 10%', flush=True)\n"
        f"while not os.path.exists({str(seen)!r}):\n"
        "    time.sleep(0.01)\n"
        "sys.stdout.write('#GUI#progress 60%\\r\\nno end')\n"
    )
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        seen.touch()

    result = ToolRunner(30).run([PY, "-c", script], on_output_line=on_line)
    assert lines == ["#GUI#progress 10%", "#GUI#progress 60%", "no end"]
    assert result.stdout == "#GUI#progress 10%\n#GUI#progress 60%\r\nno end" and result.returncode == 0


def test_a_full_stderr_pipe_does_not_block_and_its_text_is_in_the_error():
    script = "import sys\nsys.stderr.write('e' * 300000 + 'LAST')\nprint('line')\nsys.exit(3)\n"
    lines: list[str] = []
    with pytest.raises(ToolError) as failed:
        ToolRunner(30).run([PY, "-c", script], on_output_line=lines.append)
    assert lines == ["line"] and "status 3" in str(failed.value) and str(failed.value).endswith("LAST")


def test_the_timeout_holds_while_lines_are_read():
    lines: list[str] = []
    with pytest.raises(ToolTimeout):
        ToolRunner(30).run([PY, "-c", "print('a', flush=True)\nimport time\ntime.sleep(30)"],
                           timeout_seconds=0.5, on_output_line=lines.append)  # fmt: skip
    assert lines == ["a"]


def test_a_callback_that_raises_ends_the_tool():
    def broken(line: str) -> None:
        raise ValueError("bug in a progress reader")

    runner = ToolRunner(30)
    with pytest.raises(ValueError):
        runner.run([PY, "-c", "print('a', flush=True)\nimport time\ntime.sleep(30)"], on_output_line=broken)
    assert runner.kill_all() == 0  # nothing left running


def test_mkvmerge_gui_mode_errors_read_like_its_usual_ones(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not media")
    with pytest.raises(ToolError) as failed:
        ToolRunner(30).run(["mkvmerge", "--gui-mode", "-o", str(tmp_path / "out.mkv"), str(text)],
                           on_output_line=lambda line: None)  # fmt: skip
    assert "Error: The type of file" in str(failed.value) and "#GUI#" not in str(failed.value)


def test_a_failure_without_an_error_line_leaves_the_progress_lines_out():
    """Found by a tester: a remux killed at shutdown_timeout gave an error of ~50
    ``#GUI#progress N%`` lines. The message keeps what else the tool said."""
    script = (
        "import sys\nprint('mkvmerge v1 (fake)')\n"
        "for n in range(50):\n    print(f'#GUI#progress {n}%')\n    print(f'Progress: {n}%')\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(ToolError) as failed:
        ToolRunner(30).run([PY, "-c", script])
    message = str(failed.value)
    assert "mkvmerge v1 (fake)" in message and "status 2" in message
    assert "progress" not in message.lower()


def test_without_keep_stdout_the_lines_arrive_and_no_stdout_is_held():
    # A listing of 200,000 lines (a film's packets) is handed over line by line; the result
    # holds none of it, its stderr still kept.
    script = "import sys\nfor i in range(200000):\n    print(f'stream_index=0|size={i}')\nsys.stderr.write('note')\n"
    total = 0
    count = 0

    def on_line(line: str) -> None:
        nonlocal total, count
        total += int(line.rpartition("=")[2])
        count += 1

    result = ToolRunner(60).run([PY, "-c", script], on_output_line=on_line, keep_stdout=False)
    assert (count, total) == (200000, sum(range(200000)))
    assert (result.stdout, result.stderr, result.returncode) == ("", "note", 0)
