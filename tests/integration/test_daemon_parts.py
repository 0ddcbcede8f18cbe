"""The daemon in-process, through its wiring (issue 12): no subprocess, no sleeping
for time to pass. A fake clock drives the main loop's deadlines (``Daemon.loop(now)``);
the pipeline, the tools, the observers and the SQLite store are the real ones. Tests
wait for what the daemon publishes on its event bus."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from support.clock import FakeClock

from vpod.config import config_from_data
from vpod.daemon import Daemon
from vpod.events import Event

WAIT = 30.0  # seconds at most for a thread of the daemon to do its part (a wait, not a sleep)


class Recorder:
    """Event subscriber that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)
        return self._record

    def _record(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, name: str, since: int = 0, **fields: object) -> Event:
        """The first event ``name`` with ``fields`` (``a__b``: ``event.a.b``) among those
        published from the ``since``-th on; waits for it."""

        def found() -> Event | None:
            for event in self.events[since:]:
                if event.name == name and all(_field(event, k) == v for k, v in fields.items()):
                    return event
            return None

        with self._changed:
            event = self._changed.wait_for(found, timeout=WAIT)
        assert event is not None, f"no {name} {fields} among {[e.name for e in self.events]}"
        return event


def _field(event: Event, dotted: str) -> object:
    value: object = event
    for part in dotted.split("__"):
        value = getattr(value, part)
    return value


def _config(tmp_path: Path, root: Path, *, workers: int = 1, on_error: str = "skip") -> Any:
    return config_from_data(
        {
            "watch": {"paths": [str(root)], "settle_seconds": 0.2},
            "processing": {"workers": workers},
            "database": {"path": str(tmp_path / "vpod.db")},
            "policy": {"audio_languages": ["eng"], "on_error": on_error},
        },
        source=None,
    )


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``started(config, load_config=None)`` → (daemon, clock, recorder); stopped at teardown."""
    monkeypatch.setenv("VPOD_CPU_COUNT", "8")
    daemons: list[Daemon] = []

    def start(config: Any, load_config: Any = None) -> tuple[Daemon, FakeClock, Recorder]:
        clock = FakeClock(1000.0)
        daemon = Daemon(config, clock=clock, load_config=load_config)
        daemons.append(daemon)
        daemon.startup()
        recorder = Recorder()
        daemon.parts.events.subscribe(recorder)
        daemon.loop()
        return daemon, clock, recorder

    yield start
    for daemon in daemons:
        daemon.shutdown()


def _wait_until(check: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_reload_resizes_the_worker_pool(tmp_path, started, jpn_eng_mkv):
    root = tmp_path / "inbox"
    root.mkdir()
    configs = [_config(tmp_path, root, workers=1)]
    daemon, clock, events = started(configs[0], load_config=lambda: configs[-1])
    pool = daemon.parts.pool
    assert pool.count() == 1

    configs.append(_config(tmp_path, root, workers=3))
    daemon.request_reload()
    daemon.loop()
    assert pool.count() == 3
    assert daemon.store.daemon_info()["workers"] == "3"  # what `vpod status` shows

    configs.append(_config(tmp_path, root, workers=1))
    daemon.request_reload()
    daemon.loop()
    _wait_until(lambda: pool.count() == 1)  # idle workers retire once woken
    assert daemon.store.daemon_info()["workers"] == "1"
    shutil.copyfile(jpn_eng_mkv, root / "after-shrink.mkv")
    finished = events.wait_for("file_finished", result__path=root / "after-shrink.mkv")
    assert finished.result.success and finished.result.worker in {w.name for w in pool.workers}


def test_a_root_removed_and_restored_is_watched_again(tmp_path, started, jpn_eng_mkv):
    root = tmp_path / "inbox"
    root.mkdir()
    daemon, clock, events = started(_config(tmp_path, root))
    snapshot = daemon.parts.snapshot

    shutil.rmtree(root)
    clock.now += 5  # the periodic check would find a root the observer did not report
    daemon.loop()
    events.wait_for("watch_root_lost", root=root)
    daemon.loop()
    assert snapshot.health()[1]["unwatched_paths"] == [str(root)]
    assert daemon.store.daemon_info()["unwatched_paths"] == f'["{root}"]'

    root.mkdir()
    shutil.copyfile(jpn_eng_mkv, root / "back.mkv")
    clock.now += 5
    daemon.loop()
    events.wait_for("watch_root_restored", root=root)
    assert snapshot.health()[1]["unwatched_paths"] == []
    assert daemon.store.daemon_info()["unwatched_paths"] == "[]"
    assert events.wait_for("file_finished", result__path=root / "back.mkv").result.success  # caught up


def test_a_failure_pauses_under_on_error_fail_and_resume_goes_on(tmp_path, started, jpn_eng_mkv):
    root = tmp_path / "inbox"
    root.mkdir()
    daemon, clock, events = started(_config(tmp_path, root, on_error="fail"))

    (root / "broken.mkv").write_bytes(b"not a matroska file" * 100)
    paused = events.wait_for("processing_paused")
    assert paused.result.path == root / "broken.mkv" and not paused.result.success
    assert daemon.parts.snapshot.state() == "paused"
    assert daemon.store.daemon_info()["state"] == "paused"
    healthy, body = daemon.parts.snapshot.health()
    assert not healthy and body["reason"] == "paused"

    seen = len(events.events)
    shutil.copyfile(jpn_eng_mkv, root / "waiting.mkv")
    events.wait_for("files_queued", since=seen)
    assert daemon.store.queue_depth() == 1  # queued, not started while paused

    # What `vpod resume` writes before its SIGUSR1 (vpod.control.request_resume, which
    # first checks that the recorded pid is a vpod: this test's process may not say so).
    daemon.store.set_daemon_info(resume_requested_at=time.time())
    daemon.request_control()
    daemon.loop()
    events.wait_for("processing_resumed", paused_path=str(root / "broken.mkv"))
    assert daemon.store.daemon_info()["state"] == "running"
    assert events.wait_for("file_finished", result__path=root / "waiting.mkv").result.success


def test_library_names_bind_at_start_and_on_reload_and_name_a_lost_root(tmp_path, started):
    root = tmp_path / "inbox"
    root.mkdir()

    def named(name: str) -> Any:
        config = _config(tmp_path, root)
        watch = config_from_data(
            {"watch": {"paths": [str(root)], "libraries": {name: str(root)}, "settle_seconds": 0.2},
             "database": {"path": str(tmp_path / "vpod.db")}},
            source=None,
        ).watch
        return dataclasses.replace(config, watch=watch)

    configs = [_config(tmp_path, root)]
    daemon, clock, events = started(configs[0], load_config=lambda: configs[-1])
    assert [(lib.name, lib.path) for lib in daemon.store.libraries()] == [("inbox", str(root))]

    configs.append(named("films"))
    daemon.request_reload()
    daemon.loop()
    assert [(lib.name, lib.path) for lib in daemon.store.libraries()] == [("films", str(root))]

    shutil.rmtree(root)
    clock.now += 5
    daemon.loop()
    events.wait_for("watch_root_lost", root=root, library="films")
