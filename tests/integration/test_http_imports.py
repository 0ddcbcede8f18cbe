"""Issue 16 item 1: the HTTP stack (Falcon, waitress, vpod.http) is loaded by a daemon
whose ``[http] listen`` is set, and by nothing else: not by a daemon without a
listener (``vpod process`` and ``vpod --version`` are checked by
test_startup_imports.py through ``DAEMON_STACKS``).

The real daemon runs under ``python -X importtime`` (every import is reported on
stderr); JSON log lines and import lines share stderr, each on its own line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.daemon import write_config
from vpod.cli.lazy import DAEMON_STACKS

pytestmark = pytest.mark.integration

HTTP_STACK = ("falcon", "waitress", "vpod.http")


def daemon_imports(tmp_path: Path, env: dict[str, str], http: dict[str, str]) -> list[str]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path / "config.toml", {
        "watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "vpod.db")},
        "logging": {"format": "json"}, "http": http,
    })
    log = tmp_path / "stderr.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "vpod", "run", "--config", str(config)],
                                env=env, stdout=subprocess.DEVNULL, stderr=sink)
        try:
            deadline = time.monotonic() + 60
            while b'"daemon_started"' not in log.read_bytes():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()
    modules = [line.rsplit("|", 1)[1].strip() for line in log.read_text().splitlines()
               if line.startswith("import time:") and "cumulative" not in line]
    assert "vpod.daemon" in modules  # -X importtime reported the daemon: the check is not vacuous
    return modules


def stack(modules: list[str]) -> set[str]:
    return {s for s in HTTP_STACK for m in modules if m == s or m.startswith(s + ".")}


def test_a_daemon_without_a_listener_never_imports_the_http_stack(tmp_path, env):
    assert set(HTTP_STACK) <= set(DAEMON_STACKS)  # vpod process and --version are held to it too
    assert stack(daemon_imports(tmp_path, env, {"listen": ""})) == set()


def test_a_daemon_with_a_listener_imports_it(tmp_path, env):
    assert stack(daemon_imports(tmp_path, env, {"listen": "127.0.0.1:0"})) == set(HTTP_STACK)
