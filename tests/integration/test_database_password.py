"""Which PostgreSQL password a node uses (issue 14 fresh-user finding): a password in the
URL (``$VPOD_DATABASE_URL``, or ``[database] url``) wins over ``[database] password_file``,
which fills in when the URL has none; ``daemon_started`` names the source, never the
password. A real PostgreSQL server and real ``vpod`` processes."""

from __future__ import annotations

import json

import pytest

from support.daemon import run_vpod, write_config
from support.postgres import PASSWORD, ROLE
from vpod.db.secrets import choose_password, password_source, url_has_password

pytestmark = pytest.mark.integration


def test_the_rule(tmp_path):
    def read(_path: str) -> str:
        return "from-file"

    assert url_has_password("postgresql://u:p@h/db") and url_has_password("postgresql://u@h/db?password=p")
    assert not url_has_password("postgresql://u@h/db?sslmode=require")
    assert choose_password("postgresql://u:p@h/db", "/etc/pw", read) == (None, "url")
    assert choose_password("postgresql://u@h/db", "/etc/pw", read) == ("from-file", "password_file")
    assert choose_password("postgresql://u@h/db", "", read) == (None, "libpq")
    assert password_source("postgresql://u@h/db?password=p", "/etc/pw") == "url"


def test_a_password_in_vpod_database_url_wins_over_password_file(tmp_path, env, postgres, daemon_factory):
    db = postgres.database(tmp_path)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with_password = db.url.replace(f"//{ROLE}@", f"//{ROLE}:{PASSWORD}@")
    section = {"url": db.url, "password_file": str(wrong), "path": str(db.path)}
    config = write_config(tmp_path / "node.toml", {"watch": {"paths": [str(inbox)]}, "database": section})

    # The URL (from the environment) holds the right password, the file a wrong one: the URL's is used.
    out = run_vpod(["status", "--json", "--config", str(config)], env={**env, "VPOD_DATABASE_URL": with_password})
    assert out.returncode == 3 and json.loads(out.stdout)["database"], out.stderr  # 3: no daemon runs
    # Without a password in the URL, the file's (wrong) one is used, and refused.
    refused = run_vpod(["status", "--json", "--config", str(config)], env=env)
    assert refused.returncode == 70 and "password" in refused.stderr.lower(), refused.stderr
    assert PASSWORD not in out.stdout + out.stderr + refused.stdout + refused.stderr

    daemon = daemon_factory(
        {"watch": {"paths": [str(inbox)]}, "database": section}, extra_env={"VPOD_DATABASE_URL": with_password}
    )
    [started] = daemon.wait_for("daemon_started")
    assert started["database_password"] == "url"
    assert PASSWORD not in json.dumps(started)
