"""A root whose inotify queue overflows again and again (issue 11, item 5 follow-up).

With ``fs.inotify.max_queued_events`` below the number of folders of a recursive root,
one overflow never ends: watchdog rebuilds the root's watches after each overflow, each
removed watch queues an ``IN_IGNORED`` event, and those alone overflow the queue again.
vpod switches such a root to polling (``watch_overflow_loop``) and walks it once more,
so no file is lost and the loop stops.

The sysctl is lowered only while the daemon starts (the limit is taken when its inotify
instance is made, inotify(7)) and restored at once, in a finalizer too. The files arrive
while the daemon is stopped (SIGSTOP), so the first overflow does not depend on how fast
the daemon's reader thread is: a fast machine drained 16 events as they came (CI, once).
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

QUEUE_LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")
FOLDERS = 60
FILES = 20


@pytest.fixture
def small_inotify_queue():
    """Set ``max_queued_events`` to 16; returns a function that restores it (also run at
    teardown). Skips where the sysctl cannot be written (no root, read-only /proc/sys)."""
    try:
        original = QUEUE_LIMIT.read_text()
    except OSError as exc:
        pytest.skip(f"cannot read {QUEUE_LIMIT} ({exc.strerror}): no inotify here")

    def restore() -> None:
        QUEUE_LIMIT.write_text(original)

    try:
        QUEUE_LIMIT.write_text("16")
    except OSError as exc:
        pytest.skip(f"cannot write {QUEUE_LIMIT} ({exc.strerror}): needs root and a writable /proc/sys")
    try:
        yield restore
    finally:
        restore()


def test_an_inotify_overflow_loop_ends_in_polling_and_loses_no_file(
    tmp_path, daemon_factory, jpn_eng_mkv, small_inotify_queue
):
    inbox = tmp_path / "inbox"
    folders = [inbox / f"d{i:02}" for i in range(FOLDERS)]
    for folder in folders:
        folder.mkdir(parents=True)
    daemon = daemon_factory(
        {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3, "poll_interval_seconds": 0.5}}
    )
    small_inotify_queue()  # the daemon's inotify instance has its small queue now
    assert [e["observer"] for e in daemon.named("watch_started", root=str(inbox))] == ["inotify"]

    daemon.signal(signal.SIGSTOP)
    try:
        files = [shutil.copyfile(jpn_eng_mkv, folders[i] / f"f{i:02}.mkv") for i in range(FILES)]
    finally:
        daemon.signal(signal.SIGCONT)
    daemon.wait_for("watch_overflow_loop", root=str(inbox), timeout=60)
    daemon.wait_for("watch_started", root=str(inbox), observer="polling")
    for path in files:
        daemon.wait_for("file_processed", path=str(path), success=True, timeout=120)

    # The loop has stopped: a file arriving now is found by polling, with no more losses.
    lost = len(daemon.named("watch_events_lost", root=str(inbox)))
    later = shutil.copyfile(jpn_eng_mkv, folders[-1] / "later.mkv")
    daemon.wait_for("file_processed", path=str(later), success=True)
    assert len(daemon.named("watch_events_lost", root=str(inbox))) == lost
    assert daemon.stop() == 0
