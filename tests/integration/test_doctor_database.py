"""vpod doctor's database checks (issue 14, must-have 7): the connection, the schema version
(older: upgraded at start; newer: refused), TCP keepalives, a pooler in transaction mode.

Real SQLite files and a real PostgreSQL server (tests/support/postgres.py); the pooler is
a real PgBouncer in ``pool_mode = transaction`` when the machine has one (Debian package
``pgbouncer``), else that test is skipped with the reason. What PgBouncer does to vpod's
connections (two clients served by one server session) is also shown on the real
server by handing the probe one connection twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from support.cluster import wait_until
from support.daemon import run_vpod, write_config
from support.postgres import PASSWORD, ROLE, PostgresServer, free_port
from vpod.config import DatabaseConfig
from vpod.db.diagnose import DatabaseFacts, Keepalive, Pooler
from vpod.db.factory import open_store
from vpod.db.pg_diagnose import sessions_shared
from vpod.db.pg_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION
from vpod.db.schema import SCHEMA_VERSION
from vpod.doctor import judge_database

pytestmark = pytest.mark.integration


def doctor(config: Path, env: dict[str, str]) -> tuple[int, dict[str, dict]]:
    result = run_vpod(["doctor", "--json", "--config", str(config)], env=env)
    assert PASSWORD not in result.stdout + result.stderr
    return result.returncode, {f["check"]: f for f in json.loads(result.stdout)}


def config_for(tmp_path: Path, database: dict[str, object]) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return write_config(tmp_path / "vpod.toml", {"watch": {"paths": [str(inbox)]}, "database": database})


# -- SQLite -------------------------------------------------------------------------


def sqlite_at_version(path: Path, version: int) -> None:
    open_store(DatabaseConfig(path=path)).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()


def test_sqlite_schema_newer_than_this_vpod_blocks(tmp_path, env):
    db = tmp_path / "v.db"
    sqlite_at_version(db, SCHEMA_VERSION + 1)
    code, found = doctor(config_for(tmp_path, {"path": str(db)}), env)
    assert code == 1
    assert found["schema"]["level"] == "fail" and "newer than this vpod understands" in found["schema"]["detail"]
    assert found["database"]["level"] == "ok"


def test_sqlite_schema_older_is_upgraded_at_start_and_doctor_leaves_it(tmp_path, env):
    db = tmp_path / "v.db"
    sqlite_at_version(db, SCHEMA_VERSION)  # a real schema, then marked one version older
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        conn.commit()
    code, found = doctor(config_for(tmp_path, {"path": str(db)}), env)
    assert found["schema"]["level"] == "ok" and "upgraded when this vpod starts" in found["schema"]["detail"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1  # doctor migrated nothing


# -- PostgreSQL ----------------------------------------------------------------------


def pg_section(postgres: PostgresServer, tmp_path: Path, url: str | None = None) -> dict[str, object]:
    database = postgres.database(tmp_path)
    return {"url": url or database.url, "password_file": database.password_file, "path": str(database.path)}


def test_postgres_connection_schema_keepalives_and_no_pooler(tmp_path, env, postgres):
    section = pg_section(postgres, tmp_path)
    config = config_for(tmp_path, section)
    code, found = doctor(config, env)
    assert code == 0, found
    assert found["database"]["level"] == "ok" and "connected (PostgreSQL" in found["database"]["detail"]
    assert "over tcp" in found["database"]["detail"]
    assert found["schema"]["level"] == "ok" and "no vpod schema yet" in found["schema"]["detail"]
    # the store's own connection settings (vpod/db/pg_pool.py): found dead within a lease
    assert found["keepalive"]["level"] == "ok" and "first probe after 10 s idle" in found["keepalive"]["detail"]
    assert found["keepalive server"]["level"] in ("ok", "warn")  # the server's own settings, as found
    assert found["pooler"]["level"] == "ok" and "two sessions of their own" in found["pooler"]["detail"]

    open_store(postgres_config(section)).close()  # a node started: the schema is made
    assert doctor(config, env)[1]["schema"]["detail"] == f"version {PG_SCHEMA_VERSION}, this vpod's"

    dbname = str(section["url"]).rsplit("/", 1)[1]
    postgres.admin_sql("UPDATE vpod_schema SET version = version + 1", dbname)
    code, found = doctor(config, env)
    assert code == 1 and found["schema"]["level"] == "fail" and "refuses to claim" in found["schema"]["detail"]


def test_postgres_unreachable_or_wrong_password_fails_without_the_password(tmp_path, env, postgres):
    section = pg_section(postgres, tmp_path)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    code, found = doctor(config_for(tmp_path, {**section, "password_file": str(wrong)}), env)
    assert code == 1 and found["database"]["level"] == "fail" and "password" in found["database"]["detail"]
    closed = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    code, found = doctor(config_for(tmp_path, {**section, "url": closed}), env)
    assert code == 1 and found["database"]["level"] == "fail" and "nowhere" in found["database"]["detail"]


def test_server_keepalives_are_read_from_the_server(tmp_path, env, postgres):
    section = pg_section(postgres, tmp_path)
    dbname = str(section["url"]).rsplit("/", 1)[1]
    postgres.admin_sql(f"ALTER DATABASE {dbname} SET tcp_keepalives_idle = 30")
    postgres.admin_sql(f"ALTER DATABASE {dbname} SET tcp_keepalives_interval = 5")
    postgres.admin_sql(f"ALTER DATABASE {dbname} SET tcp_keepalives_count = 4")
    found = doctor(config_for(tmp_path, section), env)[1]
    assert found["keepalive server"]["level"] == "ok"
    assert "about 50 s (first probe after 30 s idle, 4 probes 5 s apart)" in found["keepalive server"]["detail"]


def test_one_server_session_for_two_clients_is_seen(postgres, tmp_path):
    """What a transaction pooler does, on the real server: the probe's two clients are
    handed one server session (the same connection)."""
    database = postgres.database(tmp_path)
    with psycopg.connect(database.url, password=PASSWORD, autocommit=True, row_factory=dict_row) as one:
        shared = sessions_shared(one, one)
        with psycopg.connect(database.url, password=PASSWORD, autocommit=True, row_factory=dict_row) as two:
            apart = sessions_shared(one, two)
    assert shared.shares_sessions and "one server session" in shared.evidence
    assert not apart.shares_sessions


def test_a_real_pgbouncer_in_transaction_mode_is_refused(tmp_path, env, postgres):
    section = pg_section(postgres, tmp_path)
    with pgbouncer(postgres, "transaction") as port:
        url = str(section["url"]).replace(f":{postgres.port}/", f":{port}/")
        code, found = doctor(config_for(tmp_path, {**section, "url": url}), env)
    assert code == 1, found
    assert found["pooler"]["level"] == "fail" and "pool_mode = transaction" in found["pooler"]["detail"]


def test_a_pgbouncer_refusing_vpods_connection_settings_is_named(tmp_path, env, postgres):
    section = pg_section(postgres, tmp_path)
    with pgbouncer(postgres, "session", ignore_options=False) as port:
        url = str(section["url"]).replace(f":{postgres.port}/", f":{port}/")
        code, found = doctor(config_for(tmp_path, {**section, "url": url}), env)
    assert code == 1 and "unsupported startup parameter" in found["database"]["detail"]
    assert "connect vpod to PostgreSQL directly" in found["database"]["detail"]


def test_a_real_pgbouncer_in_session_mode_passes(tmp_path, env, postgres):
    section = pg_section(postgres, tmp_path)
    with pgbouncer(postgres, "session") as port:
        url = str(section["url"]).replace(f":{postgres.port}/", f":{port}/")
        code, found = doctor(config_for(tmp_path, {**section, "url": url}), env)
    assert found["pooler"]["level"] == "ok", found


# -- judging facts only a broken setup shows -------------------------------------------


def facts(**overrides) -> DatabaseFacts:
    values = dict(
        backend="postgresql", location="postgresql://vpod@db/vpod", server="PostgreSQL 15", schema_found=1,
        schema_supported=1, transport="tcp", client_keepalive=Keepalive(True, 10, 5, 3),
        server_keepalive=Keepalive(True, 60, 10, 6), pooler=Pooler(False, "two sessions"),
    )
    values.update(overrides)
    return DatabaseFacts(**values)  # type: ignore[arg-type]


def levels(f: DatabaseFacts) -> dict[str, str]:
    return {finding.check: finding.level for finding in judge_database(f, lease_seconds=60)}


def test_keepalives_off_or_slower_than_a_lease_warn():
    assert levels(facts()) == {"schema": "ok", "keepalive": "ok", "keepalive server": "ok", "pooler": "ok"}
    assert levels(facts(client_keepalive=Keepalive(False, 7200, 75, 9)))["keepalive"] == "warn"
    assert levels(facts(client_keepalive=Keepalive(True, 7200, 75, 9)))["keepalive"] == "warn"
    assert levels(facts(server_keepalive=Keepalive(True, 7200, 75, 9)))["keepalive server"] == "warn"
    assert levels(facts(transport="unix", client_keepalive=None, server_keepalive=None))["keepalive"] == "ok"


def test_an_older_shared_schema_warns_to_upgrade_every_node():
    assert levels(facts(schema_found=1, schema_supported=2))["schema"] == "warn"
    assert levels(facts(backend="sqlite", schema_found=1, schema_supported=2, pooler=None))["schema"] == "ok"


# -- helpers --------------------------------------------------------------------------


def postgres_config(section: dict[str, object]) -> DatabaseConfig:
    return DatabaseConfig(path=Path(str(section["path"])), url=str(section["url"]), password_file=str(section["password_file"]))


@contextlib.contextmanager
def pgbouncer(postgres: PostgresServer, pool_mode: str, *, ignore_options: bool = True) -> Iterator[int]:
    """A real PgBouncer on a free port in front of ``postgres``, in ``pool_mode``; as root
    it runs as the ``postgres`` user (PgBouncer refuses root). ``ignore_options``: it lets
    connections through that set server settings at start-up (vpod's do: `options` in
    vpod/db/pg_pool.py), else it refuses them as PgBouncer does by default."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    folder = postgres.folder.parent / f"pgbouncer-{pool_mode}-{free_port()}"
    folder.mkdir()
    port = free_port()
    (folder / "users.txt").write_text(f'"{ROLE}" "{PASSWORD}"\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={postgres.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\ndefault_pool_size = 4\n"
        + ("ignore_startup_parameters = options,extra_float_digits\n" if ignore_options else "")
        + f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
    )
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (folder, *folder.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(f"postgresql://{ROLE}@127.0.0.1:{port}/postgres", password=PASSWORD, connect_timeout=2):
                    break
            except psycopg.Error:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (folder / "pgbouncer.log").read_text() if (folder / "pgbouncer.log").exists() else ""
                    raise RuntimeError(f"pgbouncer did not start: {log[-2000:]}") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_folder_another_node_of_this_database_holds_passes_and_names_that_node(tmp_path, env, postgres, daemon_factory):
    """Nodes of one database share a root (vpod.watch.ownership): doctor agrees, by the
    database identity in the marker, not by the location it names; it still fails a
    folder held by a vpod of another database."""
    section = pg_section(postgres, tmp_path)
    library = tmp_path / "library"
    library.mkdir()
    (library / "notes.txt").write_text("not empty: a mounted share\n")  # an empty folder is never proven
    link = tmp_path / "link"
    link.symlink_to(library)  # node b reaches the same folder through another path
    for name, root in (("a", library), ("b", link)):
        daemon_factory({"watch": {"paths": [str(root)]}, "database": section, "node": {"name": name}}, name=name)
    wait_until(lambda: (library / ".vpod-library").exists(), timeout=30, what="a node's ownership marker")
    for name, root in (("a", library), ("b", link), ("c", library)):  # c: a node not running
        config = write_config(
            tmp_path / f"doctor-{name}.toml",
            {"watch": {"paths": [str(root)]}, "database": section, "node": {"name": name}},
        )
        _code, found = doctor(config, env)
        finding = found[f"library {root}"]
        assert finding["level"] == "ok", finding
        assert "held now by its node at pid" in finding["detail"] and "share the folder" in finding["detail"]
    other = postgres.database(tmp_path)  # a database of its own: another vpod
    open_store(other).close()
    section = {"url": other.url, "password_file": other.password_file, "path": str(other.path)}
    config = write_config(tmp_path / "doctor-other.toml", {"watch": {"paths": [str(library)]}, "database": section})
    _code, found = doctor(config, env)
    assert found[f"library {library}"]["level"] == "fail"
