"""A TCP proxy between one vpod node and PostgreSQL that can go silent (a network cut).

:class:`BlackholeProxy` listens on a free localhost port and forwards every connection
to ``upstream`` (host, port), byte for byte, in both directions. :meth:`blackhole`
makes it behave like a cable pulled or a firewall that drops packets: connections
already open stay open but nothing is forwarded either way, new connections are
accepted (the listening socket is the proxy's, as a SYN reaches a host whose
firewall drops everything else) and then get nothing; no FIN and no RST is sent, so
the node sees neither an error nor an end of stream, only silence, until its own
timeouts fire. :meth:`heal` forwards again: bytes that piled up meanwhile are
delivered late (as TCP retransmission would), and new connections work at once.

Stdlib only (sockets, threads). One thread accepts; two threads per connection
pump bytes. Every socket is closed by :meth:`close` (use it as a context manager).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

_CHUNK = 65536


class BlackholeProxy:
    """Forward ``127.0.0.1:port`` to ``upstream``; silent while blackholed.

    Args:
        upstream: (host, port) of the real server.

    Attributes:
        port: the local port to point the node at.
        connections: number of client connections accepted so far.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()  # set: forwarding; clear: blackhole
        self._open.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, name="blackhole-proxy", daemon=True)
        self._thread.start()

    # -- control ------------------------------------------------------------------

    def blackhole(self) -> None:
        """Stop forwarding: open connections and new ones get silence (no FIN, no RST)."""
        self._open.clear()

    def heal(self) -> None:
        """Forward again, including what piled up while silent."""
        self._open.set()

    @property
    def silent(self) -> bool:
        """True while blackholed."""
        return not self._open.is_set()

    def close(self) -> None:
        """Close the listener and every connection (the node then sees them reset)."""
        self._closed.set()
        self._open.set()  # wake pumps waiting to forward
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass
        self._thread.join(5)

    def __enter__(self) -> "BlackholeProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the pumps ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), name="blackhole-conn", daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        # A connection made while silent is held (accepted, nothing sent) until healed.
        self._wait_open()
        if self._closed.is_set():
            return
        try:
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(server)
        for src, dst in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(src, dst), name="blackhole-pump", daemon=True).start()

    def _wait_open(self) -> None:
        while not self._open.wait(0.2):
            if self._closed.is_set():
                return

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                data = src.recv(_CHUNK)
            except OSError:
                data = b""
            # Silence: what was read is held, not forwarded, and an end of stream is not
            # passed on either, until heal() (or close()).
            self._wait_open()
            if self._closed.is_set():
                return
            if not data:
                _shutdown_write(dst)
                return
            try:
                dst.sendall(data)
            except OSError:
                _shutdown_write(src)
                return


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
