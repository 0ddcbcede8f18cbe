"""Parts of the daemon on their own: the systemd reporter's schedule and the event bus."""

from __future__ import annotations

import math
from pathlib import Path

from vpod.daemon.systemd import SystemdReporter
from vpod.events import EventBus, WatchRootLost, WatchRootRestored


class RecordingNotifier:
    """The sd_notify boundary: what would have been sent to systemd."""

    enabled = True

    def __init__(self, watchdog_seconds: float | None = None) -> None:
        self.watchdog_seconds = watchdog_seconds
        self.sent: list[str] = []

    def ready(self, status: str | None = None) -> bool:
        self.sent.append(f"READY {status}")
        return True

    def status(self, text: str) -> bool:
        self.sent.append(f"STATUS {text}")
        return True

    def watchdog(self) -> bool:
        self.sent.append("WATCHDOG")
        return True


def test_status_is_sent_at_most_once_a_second_and_only_when_changed():
    notifier = RecordingNotifier()
    texts = iter(f"text {n}" for n in range(100))
    reporter = SystemdReporter(notifier, text=lambda: next(texts), dead_threads=list, wake=lambda: None)  # type: ignore[arg-type]
    reporter.ready(100.0)
    assert reporter.tick(100.0) == math.inf  # nothing changed
    reporter.changed()
    assert reporter.tick(100.5) == 101.0 and notifier.sent == ["READY text 0"]  # too soon: due at 101
    assert reporter.tick(101.0) == math.inf and notifier.sent[-1] == "STATUS text 1"
    reporter.changed()
    reporter.changed()
    assert reporter.tick(101.2) == 102.0
    reporter.tick(102.0)
    assert notifier.sent == ["READY text 0", "STATUS text 1", "STATUS text 2"]


def test_watchdog_is_withheld_while_a_thread_is_dead():
    notifier = RecordingNotifier(watchdog_seconds=10.0)
    dead: list[str] = []
    reporter = SystemdReporter(notifier, text=lambda: "", dead_threads=lambda: dead, wake=lambda: None)  # type: ignore[arg-type]
    assert reporter.tick(0.0) == 10.0 and notifier.sent == ["WATCHDOG"]
    assert reporter.tick(5.0) == 10.0 and notifier.sent == ["WATCHDOG"]
    dead.append("vpod-watch /srv/inbox")
    assert reporter.tick(10.0) == 20.0 and notifier.sent == ["WATCHDOG"]  # not sent; not a busy loop either
    dead.clear()
    reporter.tick(20.0)
    assert notifier.sent == ["WATCHDOG", "WATCHDOG"]


def test_events_reach_each_subscriber_method_and_a_failing_subscriber_does_not_stop_the_others():
    bus = EventBus()
    got: list[str] = []

    class Broken:
        def on_watch_root_lost(self, event: WatchRootLost) -> None:
            raise RuntimeError("a bug in a subscriber")

    class Listener:
        def on_watch_root_lost(self, event: WatchRootLost) -> None:
            got.append(f"lost {event.root} moved={event.moved}")

    bus.subscribe(Broken())
    bus.subscribe(Listener())
    bus.publish(WatchRootLost(Path("/srv/inbox"), moved=True))
    bus.publish(WatchRootRestored(Path("/srv/inbox")))  # nobody has on_watch_root_restored
    assert got == ["lost /srv/inbox moved=True"]
