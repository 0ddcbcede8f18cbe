"""Issue 16, the fresh-user tester's defects (T16 report), end to end: config errors never
echo a secret, `config check` reads notify URLs as Apprise will, a notification that
fails says why (Apprise's warning from its worker threads, masked), `vpod notify test`
names each URL once."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from support.postgres import free_port

pytestmark = pytest.mark.integration


def _check(tmp_path: Path, env: dict[str, str], data: dict) -> str:
    config = write_config(tmp_path / "config.toml", {"database": {"path": str(tmp_path / "vpod.db")}, **data})
    out = run_vpod(["config", "check", "--config", str(config)], env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.mark.parametrize(("data", "secrets"), [
    ({"notify": {"urls": "json://u:NOTIFYPW@127.0.0.1:18123/x"}}, ["NOTIFYPW", "json://"]),
    ({"media_servers": {"jf": {"kind": "jellyfin", "url": "http://u:URLPW@127.0.0.1:8096", "token": "t0123"}}},
     ["URLPW"]),
    ({"arr": {"tv": {"kind": "sonarr", "url": "http://127.0.0.1:8989/?apikey=ARRURLKEY", "api_key": "k0123"}}},
     ["ARRURLKEY"]),
    ({"media_servers": {"px": {"kind": "plex", "url": "http://127.0.0.1:32400/?X-Plex-Token=PLEXTOK", "token": "t01"}}},
     ["PLEXTOK"]),
    ({"media_servers": {"px": {"kind": "plex", "url": "http://127.0.0.1:32400/PATHTOKEN?x=1", "token": "t01"}}},
     ["PATHTOKEN"]),
])
def test_config_errors_never_echo_a_secret(tmp_path, env, data, secrets):
    said = _check(tmp_path, env, data)
    for secret in secrets:
        assert secret not in said, said
    assert "expected" in said  # still says what is wrong


def test_a_media_server_url_error_gives_a_media_server_example(tmp_path, env):
    said = _check(tmp_path, env, {"media_servers": {"jf": {"kind": "jellyfin", "url": "ftp://h", "token": "t0123"}}})
    assert "8096" in said and "7878" not in said and "radarr" not in said.lower()


def test_config_check_reads_notify_urls_as_apprise_does(tmp_path, env):
    said = _check(tmp_path, env, {"notify": {"urls": ["notascheme://foo/bar"]}})
    assert "notify url 1 (notascheme)" in said and "knows no service" in said and "foo/bar" not in said
    said = _check(tmp_path, env, {"notify": {"urls": ["tgram://SECRETBOTTOKEN"]}})
    assert "cannot read this tgram:// URL" in said and "SECRETBOTTOKEN" not in said


def test_a_password_file_of_two_words_says_so(tmp_path, env):
    (tmp_path / "pw").write_text("two words\n")
    said = _check(tmp_path, env, {"hooks": {"username": "sonarr", "password_file": str(tmp_path / "pw")}})
    assert "more than one word" in said and "two words" not in said


def test_urls_file_errors_name_the_line(tmp_path, env):
    (tmp_path / "urls").write_text("# my targets\n\njson://127.0.0.1/x\nnot a url\n")
    said = _check(tmp_path, env, {"notify": {"urls_file": str(tmp_path / "urls")}})
    assert "line 4" in said


def test_notify_test_says_why_a_url_failed_naming_it_once(tmp_path, env):
    dead = free_port()  # nothing listens: connection refused
    config = write_config(tmp_path / "config.toml", {
        "database": {"path": str(tmp_path / "vpod.db")},
        "notify": {"urls": [f"json://127.0.0.1:{dead}/token-abc", "notascheme://foo/bar"]},
    })
    out = run_vpod(["notify", "test", "--config", str(config)], env=env)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    first = next(line for line in lines if line.startswith("notify url 1 (json): failed: "))
    assert "connection error" in first.lower() and "Apprise reported a failure" not in first
    second = next(line for line in lines if line.startswith("notify url 2 (notascheme): failed: "))
    assert second.count("notify url 2") == 1 and "knows no service" in second
    assert "token-abc" not in out.stdout + out.stderr


def test_the_daemon_says_why_a_notification_was_dropped(tmp_path, daemon_factory):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dead = free_port()
    daemon = daemon_factory({
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "processing": {"batch_window_seconds": 1.0},
        "notify": {"urls": [f"json://127.0.0.1:{dead}/secret-path"], "attempts": 1, "events": ["file_failed"]},
    })
    (inbox / "broken.mkv").write_bytes(b"not a matroska file" * 100)
    dropped = daemon.wait_for("integration_failed", dropped="undelivered")[0]
    assert "connection error" in dropped["error"].lower(), dropped
    assert daemon.stop() == 0
    assert "secret-path" not in daemon.log_path.read_text()
