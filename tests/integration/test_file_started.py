"""The ``file_started`` debug event: when a worker takes a file (the latency benchmark's start mark)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _ts(event: dict) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def test_file_started_logged_between_queued_and_processed(tmp_path: Path, daemon_factory, jpn_eng_mkv: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}})  # logs at debug level
    target = inbox / "movie.mkv"
    shutil.copyfile(jpn_eng_mkv, target)

    processed = daemon.wait_for("file_processed", path=str(target))[0]
    started = daemon.named("file_started", path=str(target))
    queued = daemon.named("file_queued", path=str(target))
    assert daemon.stop() == 0

    assert len(started) == 1
    event = started[0]
    assert event["level"] == "debug"
    assert event["attempt"] == 1
    assert event["worker"] == processed["worker"]
    assert event["batch_id"] == processed["batch_id"]
    assert _ts(queued[0]) <= _ts(event) <= _ts(processed)

