"""Run the real ``vpod`` as a subprocess and read its JSON log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import tomli_w

Event = dict[str, Any]


def write_config(path: Path, sections: dict[str, Any]) -> Path:
    """Write a TOML config; tests run as root in CI, so ``allow_root`` defaults to true."""
    data = {"allow_root": True, **sections}
    path.write_text(tomli_w.dumps(data))
    return path


def daemon_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a vpod subprocess: its own HOME, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPOD_")}
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1"})
    env.pop("INVOCATION_ID", None)
    env.pop("JOURNAL_STREAM", None)
    env.update(extra)
    return env


def run_vpod(args: list[str], *, env: dict[str, str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vpod ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "vpod", *args], env=env, capture_output=True, text=True, timeout=timeout, **kw
    )


class DaemonProcess:
    """``vpod run`` in the background; JSON logs go to ``log_path``.

    ``prefix`` runs it under another command (``setpriv`` to drop root, ``unshare``).
    ``config`` ``None`` gives no ``--config``: the default file (``$HOME/.vpo/config.toml``).

    Use :meth:`wait_for` to block until an event appears (tests may poll; the product
    never does).
    """

    def __init__(
        self,
        config: Path | None,
        *,
        env: dict[str, str],
        log_path: Path,
        args: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "vpod", "run", *(("--config", str(config)) if config else ()), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def events(self) -> list[Event]:
        """Every JSON log line so far (non-JSON lines are skipped)."""
        out = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def named(self, name: str, **fields: Any) -> list[Event]:
        """Events called ``name`` whose fields equal ``fields``."""
        return [e for e in self.events() if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, name: str, *, count: int = 1, timeout: float = 60, where: Callable[[Event], bool] | None = None, **fields: Any) -> list[Event]:
        """Block until at least ``count`` matching events were logged; fail on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.named(name, **fields) if where is None or where(e)]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"vpod exited ({self.proc.returncode}) before {count}x {name}; log:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count}x {name} {fields}; log:\n{self.tail()}")
            time.sleep(0.05)

    def wait_started(self, timeout: float = 30) -> None:
        self.wait_for("daemon_started", timeout=timeout)
        # the catch-up scan and the observers are up once every scan completed
        time.sleep(0.2)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL (crash simulation)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def wait_in_progress(config: Path, env: dict[str, str], path: Path, timeout: float = 60) -> dict[str, Any]:
    """Poll ``vpod status --json`` until ``path`` is in progress; returns that report."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run_vpod(["status", "--config", str(config), "--json"], env=env)
        if out.returncode == 0:
            report = json.loads(out.stdout)
            if any(f["path"] == str(path) for f in report["in_progress"]):
                return report
        time.sleep(0.1)
    raise AssertionError(f"{path} never showed as in progress in vpod status")
