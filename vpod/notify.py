"""The sd_notify protocol, spoken directly: readiness, status, reload, stop and watchdog.

systemd passes ``NOTIFY_SOCKET`` to a ``Type=notify`` service: the address of an
``AF_UNIX`` datagram socket, a file system path or, when it starts with ``@``, a name in
the abstract namespace (the ``@`` stands for a leading NUL byte). Each datagram holds
newline-separated ``KEY=VALUE`` assignments such as ``READY=1`` or ``STATUS=...``
(sd_notify(3), "DESCRIPTION" and "NOTES"). ``WATCHDOG_USEC`` is the watchdog timeout in
microseconds; systemd recommends pinging every half of it, and a ``WATCHDOG_PID`` other
than ours means the watchdog is meant for another process (sd_watchdog_enabled(3)).

Sending never raises: a daemon must keep working when nobody listens.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Mapping

import structlog


def socket_address(value: str) -> str | bytes | None:
    """The ``connect()`` address for a ``NOTIFY_SOCKET`` value, or ``None`` for an unusable one.

    ``@name`` becomes the abstract address ``b"\\0name"``; an absolute path stays a path.
    Other forms (``vsock:``, relative paths) are not supported here and return ``None``.
    """
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or ``None`` when the
    watchdog is off, malformed, or meant for another process (``WATCHDOG_PID``)."""
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    target = environ.get("WATCHDOG_PID", "")
    if target and (not target.isdigit() or int(target) != pid):
        return None
    return int(usec) / 2_000_000


class SystemdNotifier:
    """Sends sd_notify messages to one socket; thread-safe; a no-op without a socket.

    Args:
        address: from :func:`socket_address` (``None``: notifications are off).
        watchdog_seconds: ping period in seconds (``None``: no watchdog).

    Build it with :meth:`from_environ` in the process systemd started.
    """

    def __init__(self, address: str | bytes | None, watchdog_seconds: float | None = None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds if address is not None else None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._warned = False
        self.log = structlog.get_logger("vpod")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "SystemdNotifier":
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (systemd.exec(5)).

        The caller should remove these variables from ``os.environ`` afterwards (see
        :func:`forget_environ`), so tools vpod starts do not talk to systemd as if they
        were the service.
        """
        env = os.environ if environ is None else environ
        address = socket_address(env.get("NOTIFY_SOCKET", ""))
        return cls(address, watchdog_interval(env, os.getpid()))

    @property
    def enabled(self) -> bool:
        """True when a notify socket was given."""
        return self.address is not None

    def send(self, **fields: object) -> bool:
        """Send one datagram ``KEY=VALUE\\n...``; keyword ``READY=1`` gives ``READY=1``.

        Returns False when notifications are off or the send failed (logged once as
        ``notify_failed``).
        """
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(message, self.address)
                return True
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    self.log.warning("notify_failed", socket=repr(self.address), error=str(exc))
                return False

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up or a reload is complete."""
        return self.send(READY=1, **({"STATUS": status} if status else {}))

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (needed by ``Type=notify-reload``, systemd ≥ 253)."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)

    def status(self, text: str) -> bool:
        """``STATUS=text``: one line shown by ``systemctl status``."""
        return self.send(STATUS=text.replace("\n", " "))

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.send(STOPPING=1)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the daemon is alive."""
        return self.send(WATCHDOG=1)

    def close(self) -> None:
        """Close the socket (sending again reopens it)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def forget_environ() -> None:
    """Remove the sd_notify variables from this process's environment (like
    ``sd_notify(unset_environment=1)``), so child processes do not inherit them."""
    for name in NOTIFY_VARIABLES:
        os.environ.pop(name, None)
