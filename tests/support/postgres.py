"""A real PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

The server listens on 127.0.0.1 on a free port (never a system server, never a Unix
socket others use). As root, ``initdb`` refuses to run (it says so), so the server's
programs run as the ``postgres`` user the Debian package makes. Each test gets its own
database (``CREATE DATABASE ... TEMPLATE template0``), owned by the role ``vpod`` that
logs in with a password (SCRAM over TCP) read from a ``password_file``, as a node would.

Use the ``postgres`` fixture (tests/conftest.py): ``postgres.database(tmp_path)`` gives a
:class:`~vpod.config.DatabaseConfig` of a fresh, empty database. Tests that need to stop,
restart or cut the server (issue 14's acceptance) start their own :class:`PostgresServer`.

The binaries are looked for on PATH, then in ``/usr/lib/postgresql/*/bin`` (Debian). When
they are missing the tests are skipped with that reason, except under CI (``$CI`` set, or
``.ci/run``, which installs the ``postgresql`` package): there a missing server fails.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

from vpod.config import DatabaseConfig

ADMIN = "postgres"
ROLE = "vpod"
PASSWORD = "vpod-test-secret-7f3a"  # what a test greps the logs for: it must never appear


class PostgresMissing(Exception):
    """PostgreSQL's server programs are not installed here."""


def postgres_bin_dir() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: PATH first, then the newest
    ``/usr/lib/postgresql/VERSION/bin`` (Debian's layout); ``None`` when absent."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    versions.sort(key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0)
    return versions[-1] if versions else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 no one listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_ci() -> bool:
    """Whether this is a CI run, where every test must run (nothing skipped for a missing server)."""
    return bool(os.environ.get("CI") or os.environ.get("VPOD_CI"))


class PostgresServer:
    """One PostgreSQL cluster in ``folder`` on 127.0.0.1:``port``, run as ``postgres`` when root.

    Args:
        folder: an empty folder for the cluster (data, socket, log, password file).
        bin_dir: where ``initdb`` and ``pg_ctl`` are.

    Raises:
        RuntimeError: ``initdb`` or ``pg_ctl start`` failed (its output is in the
            message; the server's in ``folder/server.log``).
    """

    def __init__(self, folder: Path, bin_dir: Path, *, port: int | None = None) -> None:
        self.folder = folder
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.password_file = folder / "password"
        self._as_postgres = os.geteuid() == 0
        self._databases = itertools.count(1)
        folder.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            folder.chmod(0o755)
        self._run(
            "initdb", "-D", str(self.data), "--username", ADMIN, "--auth-local", "trust", "--auth-host", "trust",
            "--encoding", "UTF8", "--locale", "C.UTF-8", "--no-sync",
        )
        with (self.data / "pg_hba.conf").open("w") as hba:
            # The admin (fixture only) is trusted; the role vpod uses logs in with a password.
            hba.write(f"host all {ADMIN} 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{folder}'\n"
                # fsync off (only an OS crash could lose data; tests restart the server, never
                # the machine); synchronous_commit stays on: an immediate stop keeps every commit.
                "fsync = off\nfull_page_writes = off\nmax_connections = 200\n"
            )
        self.start()
        self.admin_sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' CREATEDB")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: ``smart``, ``fast`` or ``immediate``, pg_ctl(1))."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: the server goes away and comes back on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "restart")

    def admin_url(self, dbname: str = "postgres") -> str:
        """A URL of the superuser (trusted; for the fixture's own work)."""
        return f"postgresql://{ADMIN}@127.0.0.1:{self.port}/{dbname}"

    def url(self, dbname: str) -> str:
        """The URL a node uses: role ``vpod``, no password (it comes from :attr:`password_file`)."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{dbname}"

    def admin_sql(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement as the superuser (autocommit); returns its rows, if any."""
        import psycopg

        with psycopg.connect(self.admin_url(dbname), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> str:
        """A fresh, empty database owned by ``vpod``; returns its name."""
        name = f"vpod_test_{os.getpid()}_{next(self._databases)}"
        self.admin_sql(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE template0")
        return name

    def database(self, tmp_path: Path | None = None, **overrides: object) -> DatabaseConfig:
        """The ``[database]`` section of a fresh database (``tmp_path``: where the unused
        SQLite ``path`` points, so nothing lands in a home folder)."""
        folder = tmp_path if tmp_path is not None else self.folder
        values: dict[str, object] = {
            "path": folder / "unused-sqlite.db",
            "url": self.url(self.new_database()),
            "password_file": str(self.password_file),
            "busy_timeout_seconds": 5.0,
        }
        values.update(overrides)
        return DatabaseConfig(**values)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the server (immediately) and remove its folder."""
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_later(folder: Path) -> None:
    """Remove ``folder`` in a process of its own that outlives this one (``rm -rf`` at
    the lowest CPU priority), so the caller does not wait for it: the session's server
    holds one database of about 8 MB and 300 files per test that used it, and removing
    them all took 15 to 25 s at the end of a run on a loaded 2-CPU machine."""
    # sh puts rm in the background and exits at once (waited here: no zombie, no
    # ResourceWarning); rm, a child of init now, goes on after pytest ends.
    subprocess.run(["sh", "-c", 'nice -n 19 rm -rf --one-file-system -- "$1" >/dev/null 2>&1 &', "sh", str(folder)],
                   check=False, start_new_session=True)


@contextlib.contextmanager
def running_postgres(*, remove_in_background: bool = False) -> Iterator[PostgresServer]:
    """A :class:`PostgresServer` in a new temporary folder, stopped and removed after
    (``remove_in_background``: the server is stopped, its folder removed by
    :func:`remove_later`).

    Raises:
        PostgresMissing: the binaries are missing (callers skip or fail on it, see :func:`in_ci`).
        RuntimeError: the server could not be made or started.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise PostgresMissing("PostgreSQL's initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    # Not under pytest's tmp folders: those are mode 0700 to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="vpod-pg-"))
    folder.chmod(0o755)  # the postgres user must reach the cluster inside
    server = PostgresServer(folder / "cluster", bin_dir)
    try:
        yield server
    finally:
        if remove_in_background:
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
            remove_later(folder)
        else:
            server.close()
            shutil.rmtree(folder, ignore_errors=True)
