"""A file deleted while the pipeline works on it is reported as vanished, not as a tool or OS failure."""

from __future__ import annotations

import threading
import time

import pytest

from support.media import copy_media
from support.pipeline import pipeline  # noqa: F401  (fixture)
from support.tools import path_with, slow_tool
from vpod.policy.policy import Policy

pytestmark = pytest.mark.integration


def test_deleted_during_the_probe(tmp_path, pipeline, jpn_eng_mkv, monkeypatch):  # noqa: F811
    path = copy_media(jpn_eng_mkv, pipeline.library / "movie.mkv")
    monkeypatch.setenv("PATH", path_with(slow_tool(tmp_path / "slowbin", "mkvmerge", 1.0)))
    outputs = []
    worker = threading.Thread(target=lambda: outputs.append(pipeline.run(path, Policy())))
    worker.start()
    time.sleep(0.3)  # the slow mkvmerge is starting; the file is open and locked
    path.unlink()
    worker.join(60)
    result = outputs[0].result
    assert (result.success, result.skipped, result.reason) == (False, True, "vanished"), result
    assert not result.permanent  # the same name may come back with new content
