"""sd_notify against a real AF_UNIX datagram socket passed as NOTIFY_SOCKET (issue 6)."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from support.media import default_audio_languages
from support.notify import NotifyListener

pytestmark = pytest.mark.integration

SETTLE = 0.3


def config(inbox):
    return {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}, "processing": {"batch_window_seconds": 30}}


@pytest.fixture
def listener():
    made = []

    def make(**kw):
        made.append(NotifyListener(**kw))
        return made[-1]

    yield make
    for item in made:
        item.close()


def test_ready_status_watchdog_reload_stopping(tmp_path, daemon_factory, jpn_eng_mkv, listener):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    notify = listener()
    daemon = daemon_factory(
        config(inbox), extra_env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}
    )

    _, ready = notify.wait_for(lambda m: m.get("READY") == "1")
    assert ready["STATUS"].startswith("running: 0 active, 0 queued, 0 done")
    # READY=1 comes once the observer runs and the catch-up scan was asked for
    assert daemon.named("watch_started", root=str(inbox))
    assert daemon.named("daemon_started")[0]["watchdog_seconds"] == pytest.approx(0.2)

    # WATCHDOG=1 every WATCHDOG_USEC/2 = 0.2 s, from the main loop
    deadline = time.monotonic() + 30
    while len(notify.with_key("WATCHDOG")) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    pings = [t for t, m in notify.with_key("WATCHDOG") if m["WATCHDOG"] == "1"]
    assert len(pings) >= 5

    names = ("a.mkv", "b.mkv", "c.mkv")
    for name in names:  # about a dozen status changes: queued x3, active +-1 x3, done x3
        shutil.copyfile(jpn_eng_mkv, inbox / name)
    for name in names:
        daemon.wait_for("file_processed", path=str(inbox / name))
    notify.wait_for(lambda m: "3 done" in m.get("STATUS", "") and "0 active" in m["STATUS"])
    assert default_audio_languages(inbox / "a.mkv") == ["eng"]
    # STATUS= at most once a second (READY=1 carries one too and is not rate-limited);
    # the slack covers scheduling delays of this receiving thread
    status_times = [t for t, m in notify.with_key("STATUS") if "READY" not in m]
    assert len(status_times) <= (status_times[-1] - status_times[0]) + 2

    count = len(notify.messages)
    daemon.signal(signal.SIGHUP)
    i, reloading = notify.wait_for(lambda m: m.get("RELOADING") == "1", after=count)
    assert int(reloading["MONOTONIC_USEC"]) > 0
    notify.wait_for(lambda m: m.get("READY") == "1", after=i + 1)
    daemon.wait_for("config_reloaded")

    count = len(notify.messages)
    assert daemon.stop() == 0
    notify.wait_for(lambda m: m.get("STOPPING") == "1", after=count, timeout=5)


def test_abstract_socket_name(tmp_path, daemon_factory, listener):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    notify = listener(abstract=True)
    assert notify.address.startswith("@")
    daemon = daemon_factory(config(inbox), extra_env={"NOTIFY_SOCKET": notify.address})
    notify.wait_for(lambda m: m.get("READY") == "1")
    assert daemon.stop() == 0
    notify.wait_for(lambda m: m.get("STOPPING") == "1", timeout=5)
    assert not notify.with_key("WATCHDOG")  # no WATCHDOG_USEC: no pings


def test_watchdog_meant_for_another_pid_is_not_pinged(tmp_path, daemon_factory, listener):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    notify = listener()
    daemon = daemon_factory(
        config(inbox), extra_env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
    )
    notify.wait_for(lambda m: m.get("READY") == "1")
    time.sleep(1.0)  # five ping periods
    assert daemon.stop() == 0
    assert not notify.with_key("WATCHDOG")
