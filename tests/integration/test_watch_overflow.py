"""Files whose events the kernel dropped (inotify queue overflow) are found all the same
(issue 11, item 5).

The overflow is real: the daemon is stopped (SIGSTOP) so it cannot read its inotify
queue, the queue is filled past ``fs.inotify.max_queued_events`` with modifications of a
file vpod ignores, then the media files arrive (their events are dropped by the kernel),
and the daemon is continued. No sysctl is changed, so the test runs in a container too
and does not shrink the queues of other programs on the machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import struct
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


IN_MODIFY = 0x00000002
IN_Q_OVERFLOW = 0x00004000


class UnreadQueue:
    """An inotify instance of the test's own on ``folder`` (IN_MODIFY) that nobody reads
    until :meth:`overflowed`: the kernel's witness that the flood did overflow a queue of
    ``max_queued_events`` (inotify(7)), whatever vpod saw."""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_MODIFY) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def overflowed(self) -> bool:
        """True when an ``IN_Q_OVERFLOW`` event is queued (it is the last one); closes it."""
        seen = False
        try:
            while True:
                try:
                    data = os.read(self.fd, 1 << 20)
                except BlockingIOError:
                    return seen
                offset = 0
                while offset + 16 <= len(data):
                    _, mask, _, length = struct.unpack_from("iIII", data, offset)
                    seen = seen or bool(mask & IN_Q_OVERFLOW)
                    offset += 16 + length
        finally:
            os.close(self.fd)


def wait_until_stopped(pid: int, timeout: float = 30.0) -> None:
    """Wait until every thread of ``pid`` is in the stopped state (``T`` in
    /proc/PID/task/TID/stat, proc(5)): a SIGSTOP returns before a busy thread (the
    inotify reader among them) has stopped, and a reader still running drains the queue."""
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                states.append(task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue  # a thread that ended meanwhile
        if states and all(state in ("T", "t") for state in states):
            return
        assert time.monotonic() < deadline, f"vpod's threads did not all stop: {states}"
        time.sleep(0.01)


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

    witness = UnreadQueue(inbox)
    daemon.signal(signal.SIGSTOP)
    try:
        wait_until_stopped(daemon.proc.pid)
        flood(inbox, limit + 1000)
        for path in expected:
            shutil.copyfile(jpn_eng_mkv, path)
    finally:
        daemon.signal(signal.SIGCONT)
    if not witness.overflowed():
        pytest.skip(f"the kernel queued {limit + 1000} events past max_queued_events = {limit} without an overflow")

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
