"""``vpod doctor``'s facts about a PostgreSQL database (:func:`vpod.db.diagnose.diagnose`).

Connections are made exactly as the PostgreSQL store makes them (:class:`PgPool`: the
same URL, password, keepalives and timeouts), so what is checked is what a node gets.

A pooler between vpod and PostgreSQL: PgBouncer in ``pool_mode = transaction`` (or
``statement``) gives a client a server session for one transaction only, so session
state does not follow the client: a session advisory lock (vpod's catch-up scan lock)
stays on a server session another client may be handed, ``LISTEN`` is lost, ``SET``
does not stick (https://www.pgbouncer.org/features.html, the table of SQL features in
transaction pooling). It cannot be asked: PgBouncer answers ``SHOW pool_mode`` only on its
admin console, and forwards it to the server otherwise. So :func:`sessions_shared`
looks at what a pooler does: two client connections, each asking for its server
session's id (``pg_backend_pid()``) twice and setting a session variable; on a real
server (or a pooler in session mode) each client keeps one session of its own.
"""

from __future__ import annotations

import secrets
import socket
from typing import Any, Protocol

import psycopg

from vpod.config import DatabaseConfig
from vpod.db.diagnose import DatabaseFacts, Keepalive, Pooler
from vpod.db.pg_pool import PgConnection, PgPool, read_password
from vpod.db.secrets import choose_password
from vpod.db.pg_schema import SCHEMA_VERSION, schema_version
from vpod.errors import StoreError

_PROBE_SETTING = "vpod.doctor_probe"
"""A custom session variable (a name with a dot: any module may define one,
https://www.postgresql.org/docs/current/runtime-config-custom.html); poolers do not
track it, so it shows which server session a statement ran in."""


class _Session(Protocol):
    def execute(self, query: Any, params: Any = ...) -> Any: ...


def diagnose_postgres(database: DatabaseConfig, *, node: str) -> DatabaseFacts:
    """Connect twice as a node would and read the server version, the schema version
    (``vpod_schema``; ``None`` when absent), both sides' TCP keepalives and whether a
    pooler shares server sessions. Writes nothing (a session variable is set and left
    on the session; it names nothing of vpod's).

    Raises:
        StoreError: no connection can be made (the message never holds the password).
    """
    password, _source = choose_password(database.url, database.password_file, read_password)
    pool = PgPool(
        database.url, password=password, node=f"{node}-doctor",
        busy_timeout_seconds=database.busy_timeout_seconds,
    )
    try:
        first, second = pool.connect(), pool.connect()
        try:
            try:
                server = str(first.execute("SELECT version() AS v").fetchone()["v"]).split(" on ")[0]  # type: ignore[index]
                found = schema_version(first)
                database_id = _database_id(first) if found is not None else None
                transport, client = socket_keepalive(first)
                server_side = _server_keepalive(first) if transport == "tcp" else None
                pooler = sessions_shared(first, second)
            except psycopg.Error as exc:  # mapped as the store maps it
                raise pool.error(exc, "read") from None
        finally:
            first.close()
            second.close()
    finally:
        pool.close()
    return DatabaseFacts(
        "postgresql", pool.location, server, found, SCHEMA_VERSION, transport, client, server_side, pooler,
        database_id=database_id,
    )


def _database_id(conn: PgConnection) -> str | None:
    """The database's identity (the ``identity`` table the first migration makes), or
    ``None`` when that table is absent."""
    if conn.execute("SELECT to_regclass('identity') AS t").fetchone()["t"] is None:  # type: ignore[index]
        return None
    row = conn.execute("SELECT database_id FROM identity").fetchone()
    return str(row["database_id"]) if row else None


def socket_keepalive(conn: PgConnection) -> tuple[str, Keepalive | None]:
    """``(transport, keepalive)`` of the connection's socket on this side: ``tcp`` with
    its keepalive options read by ``getsockopt`` (tcp(7)), or ``unix`` and ``None``."""
    fd = conn.pgconn.socket
    sock = socket.socket(fileno=fd)
    try:
        if sock.family == socket.AF_UNIX:
            return "unix", None
        return "tcp", Keepalive(
            bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        )
    finally:
        sock.detach()  # the socket stays libpq's


def _server_keepalive(conn: PgConnection) -> Keepalive:
    """The server's keepalives on its side of this TCP connection: ``SHOW
    tcp_keepalives_idle`` and friends read the socket's values, the operating system's
    defaults when the settings are 0 (https://www.postgresql.org/docs/current/runtime-config-connection.html).
    A server always turns ``SO_KEEPALIVE`` on for TCP clients."""
    values = [
        int(str(conn.execute(f"SHOW {name}").fetchone()[name]))  # type: ignore[index]
        for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
    ]
    return Keepalive(True, *values)


def sessions_shared(first: _Session, second: _Session) -> Pooler:
    """Whether two client connections (autocommit) are served by shared server sessions.

    ``first`` sets :data:`_PROBE_SETTING` to a random value and asks for its session's
    pid; ``second`` asks for its pid and the setting; ``first`` asks again. A pooler in
    transaction or statement mode shows itself by one of: ``first``'s two statements
    ran in two sessions; both connections ran in one session; ``second`` sees
    ``first``'s setting; ``first`` lost its own. (A pooler hands an idle server session
    to the next client, most recently used first, so one free session suffices to show
    it.)
    """
    token = secrets.token_hex(8)
    one = _row(first, "SELECT pg_backend_pid() AS pid, set_config(%s, %s, false) AS probe", (_PROBE_SETTING, token))
    two = _row(second, "SELECT pg_backend_pid() AS pid, current_setting(%s, true) AS probe", (_PROBE_SETTING,))
    again = _row(first, "SELECT pg_backend_pid() AS pid, current_setting(%s, true) AS probe", (_PROBE_SETTING,))
    if one["pid"] != again["pid"] or again["probe"] != token:
        return Pooler(True, "one connection's statements ran in different server sessions (pids "
                            f"{one['pid']}, {again['pid']}): session settings and locks do not stay with it")
    if one["pid"] == two["pid"] or two["probe"] == token:
        return Pooler(True, f"two connections were served by one server session (pid {one['pid']})")
    return Pooler(False, f"two connections kept two sessions of their own (pids {one['pid']}, {two['pid']})")


def _row(session: _Session, query: str, params: tuple[object, ...]) -> dict[str, Any]:
    row = session.execute(query, params).fetchone()
    if row is None:
        raise StoreError("the server returned no row for a probe")
    return dict(row)
