"""Connections to PostgreSQL for the PostgreSQL store: a pool, each connection with a
statement timeout and TCP keepalives, and every driver exception mapped to
:class:`~vpod.errors.StoreBusy` / :class:`~vpod.errors.StoreError`.

Settings on every connection (libpq parameters, https://www.postgresql.org/docs/current/libpq-connect.html,
and server settings, https://www.postgresql.org/docs/current/runtime-config-client.html):

- ``connect_timeout`` 10 s: a server that does not answer is an error, not a hang.
- TCP keepalives on: first probe after 10 s idle, then every 5 s, the connection dead
  after 3 unanswered probes (about 25 s); ``tcp_user_timeout`` 20 s bounds unacknowledged
  writes. A cut-off database is noticed by the node, not waited on forever.
- ``statement_timeout`` 30 s.
  ``lock_timeout`` = the busy timeout, ``idle_in_transaction_session_timeout`` 60 s so
  a frozen node's open transaction cannot hold rows.
- ``application_name`` ``vpod:NODE``, so ``pg_stat_activity`` says which node holds a
  connection.
- Lease renewals and confirmations have connections of their own (at most 4), never
  queued behind a worker's, with 5 s for the statement, the TCP user timeout and the
  connect timeout: over a cut-off network a renewal fails in about 5 s (the server's
  statement timeout cannot end a request that never reached it), so the lease keeper
  learns in time that it must self-fence.
- Reconnecting after the server went away (stopped, restarted, cut off): psycopg_pool
  makes a lost connection again in a background worker, waiting 1 s, then twice as long
  after each failure, for ``reconnect_timeout`` (300 s by default; psycopg_pool's
  ``AttemptWithBackoff``, https://www.psycopg.org/psycopg3/docs/api/pool.html). After a
  75 s outage its next try came 50 s after the server was back. Here each series of
  tries lasts :data:`RECONNECT_SECONDS` (tries at about 0, 1, 3 and 5 s), and when it
  gives up while a caller waits for a connection, a new series starts at once
  (``reconnect_failed`` -> ``ConnectionPool.check()``, which refills an empty pool): a
  node reconnects within about 2 s of the server answering again, and tries about once
  a second per pool, only while something waits for a connection (no storm, and no
  tries at all from an idle pool).

The password is passed to libpq as a separate parameter (from ``password_file``) or stays
in the URL; :func:`redacted` is what people see: the URL with no password.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from vpod.errors import StoreBusy, StoreError

CONNECT_TIMEOUT_SECONDS = 10
KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 3
TCP_USER_TIMEOUT_MS = 20_000
STATEMENT_TIMEOUT_MS = 30_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
POOL_SIZE = 16
"""Connections at most: each worker, the watcher, status readers."""
LEASE_TIMEOUT_MS = 5_000
"""Statement timeout, TCP user timeout and connect timeout of the lease connections."""
LEASE_POOL_SIZE = 4
"""Connections at most for lease renewals and confirmations, apart from the others."""
RECONNECT_SECONDS = 5.0
"""How long one series of reconnection tries lasts (psycopg_pool ``reconnect_timeout``):
its tries are about 1 s, then 2 s apart, so a lost connection is made again at most about
2 s after the server answers (see the module's docstring)."""

PgConnection = psycopg.Connection[DictRow]

# Errors that mean "try again later" rather than "the database is unusable".
_BUSY = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,  # statement_timeout
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


def redacted(url: str) -> str:
    """``url`` without its password (``postgresql://user@host:5432/db``), and without a
    ``password=`` query parameter: what logs, messages and :attr:`Store.location` show."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{hostport}"
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def read_password(password_file: str) -> str | None:
    """The first line of ``password_file`` (``""``: none, libpq then looks in the URL,
    ``$PGPASSWORD`` or ``~/.pgpass``).

    Raises:
        StoreError: the file cannot be read (the message names the file, never its content).
    """
    if not password_file:
        return None
    try:
        text = Path(password_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read [database] password_file {password_file}: {getattr(exc, 'strerror', None) or exc}") from None
    return text.splitlines()[0] if text else ""


def scrub(message: str, secret: str | None) -> str:
    """A driver's message with the password (if it ever appears) replaced by ``***``."""
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]+):[^@\s]*@", r"\1:***@", message)
    return text.replace(secret, "***") if secret else text


def _try_again_if_awaited(pool: ConnectionPool[Any]) -> None:
    """psycopg_pool's ``reconnect_failed`` callback: a series of tries to connect ended
    (:data:`RECONNECT_SECONDS`). When a caller is waiting for a connection and none is
    free, start another series now (``check()`` refills an empty pool: psycopg_pool 3.1.5
    release notes) instead of leaving the caller to its timeout; else do nothing: the next
    caller's request starts one (a pool with no connection tries at once)."""
    if pool.closed:
        return
    stats = pool.get_stats()
    if stats.get("requests_waiting", 0) > 0 and stats.get("pool_available", 0) == 0:
        pool.check()


class PgPool:
    """The PostgreSQL store's connections.

    Args:
        url: the ``[database] url`` (``postgresql://...``).
        password: from ``password_file`` (``None``: libpq's own sources).
        node: this node's name, for ``application_name``.
        busy_timeout_seconds: how long to wait for a free connection or a row lock.

    Raises:
        StoreError: the server cannot be reached or refuses the login.
    """

    def __init__(self, url: str, *, password: str | None, node: str, busy_timeout_seconds: float) -> None:
        self.url = url
        self.location = redacted(url)
        self.busy_timeout_seconds = busy_timeout_seconds
        self._password = password
        self._closed = False
        self._lock = threading.Lock()
        self._kwargs: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
            "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
            "keepalives_count": KEEPALIVE_COUNT,
            "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
            "application_name": f"vpod:{node}"[:63],
            "options": (
                f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
                f" -c lock_timeout={int(busy_timeout_seconds * 1000)}"
                f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
                " -c timezone=UTC"
            ),
            "row_factory": dict_row,
        }
        if password is not None:
            self._kwargs["password"] = password
        # One connection first, outside the pool: a wrong URL, password or database fails
        # now with libpq's reason, instead of the pool retrying until its timeout.
        self.connect().close()
        lease_seconds = LEASE_TIMEOUT_MS // 1000
        lease_kwargs = {
            **self._kwargs,
            "connect_timeout": lease_seconds,
            "tcp_user_timeout": LEASE_TIMEOUT_MS,
            "keepalives_idle": lease_seconds,
            "keepalives_interval": 1,
            "options": self._kwargs["options"].replace(
                f"statement_timeout={STATEMENT_TIMEOUT_MS}", f"statement_timeout={LEASE_TIMEOUT_MS}"
            ),
            "application_name": f"vpod:{node}:lease"[:63],
        }
        self._pool: ConnectionPool[PgConnection] = self._make_pool(self._kwargs, POOL_SIZE, "vpod")
        self._lease_pool: ConnectionPool[PgConnection] = self._make_pool(lease_kwargs, LEASE_POOL_SIZE, "vpod-lease")
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS + 2)
            self._lease_pool.open(wait=False)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            self._lease_pool.close()
            raise StoreError(f"cannot connect to {self.location}: {self.scrub(str(exc))}") from None

    def _make_pool(self, kwargs: dict[str, Any], size: int, name: str) -> ConnectionPool[PgConnection]:
        return ConnectionPool(
            self.url, kwargs=kwargs, min_size=1, max_size=size, open=False,
            timeout=max(self.busy_timeout_seconds, 1.0), check=ConnectionPool.check_connection,
            name=name, connection_class=psycopg.Connection[DictRow],
            reconnect_timeout=RECONNECT_SECONDS, reconnect_failed=_try_again_if_awaited,
        )

    def scrub(self, message: str) -> str:
        """``message`` with the password removed."""
        return scrub(message, self._password)

    def connect(self, *, autocommit: bool = True) -> PgConnection:
        """A connection of its own, outside the pool (the LISTEN connection, a scan lock).

        Raises:
            StoreError: it cannot be made.
        """
        try:
            return psycopg.Connection.connect(self.url, autocommit=autocommit, **self._kwargs)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.location}: {self.scrub(str(exc).strip())}") from None

    def error(self, exc: BaseException, doing: str) -> StoreError:
        """The store error a driver exception becomes (``doing``: "write to", "read")."""
        if isinstance(exc, PoolTimeout):
            return StoreBusy(
                f"no connection to {self.location} within {self.busy_timeout_seconds:g} s"
                " (the database does not answer, or every connection is busy)"
            )
        if isinstance(exc, _BUSY):
            return StoreBusy(f"{self.location} is busy: {self.scrub(str(exc).strip())}")
        return StoreError(f"cannot {doing} {self.location}: {self.scrub(str(exc).strip())}")

    @contextmanager
    def transaction(self, *, lease: bool = False) -> Iterator[PgConnection]:
        """A pooled connection inside one transaction, committed on exit, rolled back on
        an exception (``lease``: one of the lease connections, 5 s limits).

        Raises:
            StoreBusy: no connection free, a lock or statement timeout, a deadlock.
            StoreError: the database is unreachable or refused the statement, or the store is closed.
        """
        if self._closed:
            raise StoreError(f"database {self.location} is closed")
        try:
            pool = self._lease_pool if lease else self._pool
            with pool.connection(timeout=max(self.busy_timeout_seconds, 1.0)) as conn:
                with conn.transaction():
                    yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.error(exc, "write to") from None

    read = transaction
    """Reads use the same pooled connections; a transaction gives them one snapshot
    (``REPEATABLE READ`` is not needed: each report query set runs in one statement batch)."""

    def close(self) -> None:
        """Close every pooled connection; later calls raise :class:`StoreError`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.close()
                self._lease_pool.close()
