"""Log lines for people and for machines: the console renderer, JSON, local times."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import datetime

import pytest
import structlog

from vpod.logs import DRIVER_LOGGERS, ConsoleLines, configure_logging

TOOL_ERROR = (
    "/srv/inbox/broken.mkv: mkvmerge exited with status 2: mkvmerge v74.0.0 ('You Oughta Know') 64-bit\n"
    "Error: The type of file '/srv/inbox/broken.mkv' could not be recognized.\n"
)


@pytest.fixture
def reset_structlog():
    yield
    structlog.reset_defaults()


def log_to(stream: io.StringIO, fmt: str, timestamps: str = "utc"):
    configure_logging("info", fmt, stream=stream, timestamps=timestamps)
    return structlog.get_logger("vpod")


def test_console_line_starts_with_the_event_then_the_file(reset_structlog):
    stream = io.StringIO()
    log = log_to(stream, "console")
    with structlog.contextvars.bound_contextvars(path="/srv/inbox/a b.mkv", worker="worker-1", batch_id="B1"):
        log.warning("file_retry", attempt=1, reason="locked", retry_in_seconds=5.0, error="locked by another process")
    [line] = stream.getvalue().splitlines()
    event, rest = line.split(None, 1)
    assert event == "file_retry"
    assert rest.startswith("/srv/inbox/a b.mkv  attempt=1 reason=locked retry_in_seconds=5.0 ")
    assert 'error="locked by another process"  worker=worker-1 batch_id=B1  [warning 20' in rest
    assert line.endswith("Z]")


def test_a_multi_line_tool_error_reads_as_indented_lines_in_console_and_one_line_in_json(reset_structlog):
    console = io.StringIO()
    log_to(console, "console").error("file_failed", path="/srv/inbox/broken.mkv", error=TOOL_ERROR, reason="tool_failed")
    lines = console.getvalue().splitlines()
    assert lines[0].startswith("file_failed") and "reason=tool_failed" in lines[0] and "\\n" not in lines[0]
    assert lines[1:] == [
        "  error: /srv/inbox/broken.mkv: mkvmerge exited with status 2: mkvmerge v74.0.0 ('You Oughta Know') 64-bit",
        "    Error: The type of file '/srv/inbox/broken.mkv' could not be recognized.",
    ]
    machine = io.StringIO()
    log_to(machine, "json").error("file_failed", path="/srv/inbox/broken.mkv", error=TOOL_ERROR, reason="tool_failed")
    [line] = machine.getvalue().splitlines()
    assert json.loads(line)["error"] == TOOL_ERROR


def test_a_newline_in_a_file_name_never_breaks_the_line():
    rendered = ConsoleLines()(None, "info", {"event": "file_queued", "path": "/srv/in\nbox.mkv", "level": "info"})
    assert rendered == "file_queued           /srv/in\\nbox.mkv  [info]"


def test_local_timestamps_carry_the_offset(reset_structlog):
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # UTC+05:30, no daylight saving time
    time.tzset()
    try:
        machine = io.StringIO()
        log_to(machine, "json", timestamps="local").info("daemon_started")
        utc = io.StringIO()
        log_to(utc, "json").info("daemon_started")
        console = io.StringIO()
        log_to(console, "console", timestamps="local").info("daemon_started")
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
    local_stamp = json.loads(machine.getvalue())["timestamp"]
    utc_stamp = json.loads(utc.getvalue())["timestamp"]
    assert local_stamp.endswith("+05:30") and utc_stamp.endswith("Z")
    assert console.getvalue().rstrip().endswith("+05:30]")
    # The same instant, written two ways.
    local = datetime.fromisoformat(local_stamp).timestamp()
    assert abs(local - datetime.fromisoformat(utc_stamp.replace("Z", "+00:00")).timestamp()) < 5


@pytest.fixture
def driver_loggers():
    """Put the driver loggers back as they were (the test attaches a handler to them)."""
    import logging

    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate) for name in DRIVER_LOGGERS}
    yield
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_database_drivers_stdlib_lines_come_out_in_vpods_format_without_the_password(
    reset_structlog, driver_loggers, fmt
):
    import logging

    stream = io.StringIO()
    configure_logging("debug", fmt, stream)
    configure_logging("debug", fmt, stream)  # a reload replaces the handler: one line per record, not two
    pool = logging.getLogger("psycopg.pool")
    pool.info("connection given by %r", "vpod")  # the pool's chatter: below warning, not shown
    pool.warning("error connecting in %r: %s", "vpod", "postgresql://vpod:s3cret@db/x: password=s3cret\n\tIs it up?")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "s3cret" not in lines[0], lines
    if fmt == "json":
        event = json.loads(lines[0])
        assert (event["event"], event["logger"], event["level"]) == ("database_driver", "psycopg.pool", "warning")
        assert event["message"].startswith("error connecting in 'vpod': postgresql://vpod:***@db/x") and "timestamp" in event
    else:
        assert lines[0].startswith("database_driver") and "[warning " in lines[0]
