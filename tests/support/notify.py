"""A stand-in for systemd's end of the sd_notify protocol: a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from typing import Callable

Message = dict[str, str]


class NotifyListener:
    """Binds ``NOTIFY_SOCKET`` (a short path under /tmp, or an abstract ``@name``) and
    records every datagram as ``(monotonic time, {KEY: VALUE})``."""

    def __init__(self, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._folder = None
        if abstract:
            name = f"vpod-test-{uuid.uuid4().hex[:12]}"
            self.sock.bind(b"\0" + name.encode())
            self.address = "@" + name
        else:
            # sun_path holds at most 107 bytes: pytest's tmp_path is often longer.
            self._folder = tempfile.mkdtemp(prefix="vpn-")
            self.address = os.path.join(self._folder, "notify")
            self.sock.bind(self.address)
        self.messages: list[tuple[float, Message]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str) -> list[tuple[float, Message]]:
        with self._lock:
            return [(t, m) for t, m in self.messages if key in m]

    def wait_for(self, predicate: Callable[[Message], bool], *, timeout: float = 30, after: int = 0) -> tuple[int, Message]:
        """Index and fields of the first message at index >= ``after`` matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for i, (_, m) in enumerate(self.messages[after:], start=after):
                    if predicate(m):
                        return i, m
            time.sleep(0.05)
        raise AssertionError(f"no matching sd_notify message in {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
