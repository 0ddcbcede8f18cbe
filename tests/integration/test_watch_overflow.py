"""Files whose events the kernel dropped (inotify queue overflow) are found all the same
(issue 11, item 5).

The overflow is real: the daemon is stopped (SIGSTOP) so it cannot read its inotify
queue, the queue is filled past ``fs.inotify.max_queued_events`` with modifications of a
file vpod ignores, then the media files arrive (their events are dropped by the kernel),
and the daemon is continued. No sysctl is changed, so the test runs in a container too
and does not shrink the queues of other programs on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FILES = 160
QUEUE_LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")


def flood(folder: Path, events: int) -> None:
    """``events`` IN_MODIFY events on two hidden files (alternating, so the kernel
    cannot merge them: it merges an event only with an identical last one, inotify(7))."""
    fds = [os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o644) for name in (".flood-a", ".flood-b")]
    try:
        for i in range(events):
            os.write(fds[i % 2], b"x")
    finally:
        for fd in fds:
            os.close(fd)


def test_files_arriving_while_the_inotify_queue_overflows_are_all_queued(tmp_path, daemon_factory, jpn_eng_mkv):
    try:
        limit = int(QUEUE_LIMIT.read_text())
    except (OSError, ValueError):
        pytest.skip(f"cannot read {QUEUE_LIMIT}: no inotify here")
    if limit > 4_000_000:
        pytest.skip(f"fs.inotify.max_queued_events = {limit}: too many events to overflow in a test")
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}})
    expected = [inbox / f"f{i:03}.mkv" for i in range(FILES // 2)]
    expected += [inbox / "sub" / f"g{i:03}.mkv" for i in range(FILES - len(expected))]

    daemon.signal(signal.SIGSTOP)
    try:
        flood(inbox, limit + 1000)
        for path in expected:
            shutil.copyfile(jpn_eng_mkv, path)
    finally:
        daemon.signal(signal.SIGCONT)

    lost = daemon.wait_for("watch_events_lost", root=str(inbox))
    assert lost[0]["rescan"] == "queued"
    daemon.wait_for("scan_completed", root=str(inbox), why="events_lost")
    # Each file is queued, or (a copy of content vpod has made conform meanwhile)
    # recognized as done: either way the intake took it.
    deadline = time.monotonic() + 120
    missing = {str(p) for p in expected}
    while missing and time.monotonic() < deadline and daemon.proc.poll() is None:
        missing -= {e["path"] for e in daemon.events() if e.get("event") in ("file_queued", "file_not_queued")}
        time.sleep(0.2)
    assert not missing, f"{len(missing)} of {FILES} files never taken in, e.g. {sorted(missing)[:3]}\n{daemon.tail()}"
    assert daemon.stop() == 0
