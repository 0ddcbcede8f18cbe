"""A watch root's observer thread that dies is noticed (issue 11, item 8).

Nothing vpod reads can kill an observer thread any more (the event handler catches and
logs its own errors: tests/unit/test_handler.py), so the death is caused from outside,
the way a bug in watchdog would end it: gdb attaches to the running daemon and raises
``SystemExit`` in the thread named ``vpod-watch ROOT`` (``PyThreadState_SetAsyncExc``,
the C API behind "raise in another thread"). No hook in vpod is involved.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from support.http import health
from support.notify import NotifyListener

pytestmark = pytest.mark.integration

# Python run inside the daemon by gdb: end every observer thread of the given root.
_KILL_THREAD = (
    "import ctypes, threading\n"
    "for t in threading.enumerate():\n"
    "    if t.name == {name!r}:\n"
    "        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(SystemExit))\n"
)


def end_thread(pid: int, name: str) -> None:
    """Raise SystemExit in the thread called ``name`` of process ``pid``, through gdb."""
    code = _KILL_THREAD.format(name=name).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out = subprocess.run(
        ["gdb", "-p", str(pid), "-batch", "-nx",
         "-ex", "call (int)PyGILState_Ensure()",
         "-ex", f'call (int)PyRun_SimpleString("{code}")',
         "-ex", "call (void)PyGILState_Release($1)"],
        capture_output=True, text=True, timeout=60,
    )
    if "$2 = 0" not in out.stdout:
        pytest.skip(f"gdb could not run code in the daemon (ptrace not allowed here?): {out.stdout[-400:]} {out.stderr[-400:]}")


def test_a_dead_observer_makes_the_daemon_unhealthy_and_stops_the_watchdog_pings(tmp_path, daemon_factory):
    if shutil.which("gdb") is None:
        pytest.skip("needs gdb to end a thread of the running daemon")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    notify = NotifyListener()
    try:
        daemon = daemon_factory(
            {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "http": {"listen": "127.0.0.1:0"}},
            extra_env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"},
        )
        port = daemon.wait_for("http_listening")[0]["port"]
        assert health(port)[0] == 200
        notify.wait_for(lambda m: m.get("WATCHDOG") == "1")

        thread = f"vpod-watch {inbox}"
        end_thread(daemon.proc.pid, thread)
        # The exception is raised once the thread runs Python code again: when it wakes
        # from its wait for the next event.
        (inbox / "wake-up.txt").write_text("x")

        died = daemon.wait_for("thread_died", thread=thread, timeout=30)
        assert len(died) == 1
        code, body = health(port)
        assert code == 503 and body["reason"] == "thread_died" and body["threads"] == [thread], body
        # No WATCHDOG=1 after the death was noticed: systemd's watchdog restarts vpod.
        pings = len(notify.with_key("WATCHDOG"))
        time.sleep(1.0)  # 5 ping periods of 0.2 s
        assert len(notify.with_key("WATCHDOG")) == pings
        assert daemon.stop() == 0
    finally:
        notify.close()
