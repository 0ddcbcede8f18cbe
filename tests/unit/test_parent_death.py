"""vpod.media.parent_death: the kernel's rule as vpod relies on it, on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from support.tools import kill_if_running, process_ended

from vpod.media.parent_death import die_with_parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")


def test_the_child_ends_when_the_thread_that_started_it_ends():
    """prctl(2): the "parent" is the thread that forked; vpod's docs say so, this shows it."""
    started: list[subprocess.Popen[bytes]] = []

    def body() -> None:
        started.append(subprocess.Popen(["sleep", "600"], preexec_fn=die_with_parent(), start_new_session=True))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    child = started[0]
    try:
        assert child.wait(timeout=30) == -9  # SIGKILL, although this process lives on
    finally:
        kill_if_running(child.pid)


def test_a_child_whose_parent_died_before_prctl_exits_at_once():
    """The race: the hook compares the parent pid it sees with the one recorded when vpod
    prepared it. Here the hook is prepared in this process and used from a fork, which
    looks to the grandchild exactly like a parent that died and was replaced."""
    hook = die_with_parent()
    pid = os.fork()
    if pid == 0:  # the fork: start `sleep` with a hook that recorded another parent
        try:
            code = subprocess.run(["sleep", "600"], preexec_fn=hook, timeout=60).returncode
        except BaseException:
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1  # exited in the hook: sleep never ran


def test_a_child_outlives_nothing_when_vpod_is_killed(tmp_path):
    """A Python "vpod" that starts a tool the way ToolRunner does, then is SIGKILLed."""
    pidfile = tmp_path / "tool.pid"
    script = (
        "import subprocess, sys, time\n"
        "from vpod.media.parent_death import die_with_parent\n"
        "p = subprocess.Popen(['sleep', '600'], preexec_fn=die_with_parent(), start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        while not pidfile.exists() or not pidfile.read_text():
            assert parent.poll() is None
            time.sleep(0.01)
        tool = int(pidfile.read_text())
        parent.kill()
        parent.wait(30)
        assert process_ended(tool), "the tool outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pidfile.exists() and pidfile.read_text():
            kill_if_running(int(pidfile.read_text()))
