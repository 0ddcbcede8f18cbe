"""Config loading and validation: every error names the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpod.config import VPOConfig, config_from_data, config_path, load_config, with_overrides
from vpod.errors import ConfigError
from vpod.policy.policy import Policy


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("VPOD_CONFIG", raising=False)
    config = load_config(None)
    assert config.processing.workers is None  # not set: the CPU cap (vpod.cpu)
    assert config.processing.queue_size == 256
    assert (config.database.lease_seconds, config.database.lease_heartbeat_seconds) == (60.0, 15.0)
    assert config.watch.settle_seconds == 5.0
    assert config.policy.audio_languages == ("eng",)
    assert config.source is None


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_precedence_flag_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("VPOD_CONFIG", str(tmp_path / "env.toml"))
    assert config_path(str(tmp_path / "flag.toml")) == (tmp_path / "flag.toml", True)
    assert config_path(None) == (tmp_path / "env.toml", True)
    monkeypatch.delenv("VPOD_CONFIG")
    path, named = config_path(None)
    assert path.name == "config.toml" and not named


def test_cli_overrides_file_values():
    config = config_from_data({"processing": {"workers": 4}, "policy": {"on_error": "skip"}}, source=None)
    config = with_overrides(config, workers=1, on_error="fail")
    assert config.processing.workers == 1
    assert config.policy.on_error == "fail"
    assert with_overrides(config).processing.workers == 1


@pytest.mark.parametrize(
    "data, key, expected",
    [
        ({"processing": {"workers": 0}}, "[processing] workers", "from 1 to 256"),
        ({"processing": {"workers": 10**20}}, "[processing] workers", "from 1 to 256"),
        ({"processing": {"queue_size": 0}}, "[processing] queue_size", "from 1 to 1,000,000"),
        ({"processing": {"workers": 1.5}}, "[processing] workers", "an integer"),
        ({"processing": {"workers": True}}, "[processing] workers", "an integer"),
        ({"watch": {"settle_seconds": 0}}, "[watch] settle_seconds", "> 0"),
        ({"watch": {"settle_seconds": "5"}}, "[watch] settle_seconds", "a finite number"),
        ({"watch": {"paths": "/media"}}, "[watch] paths", "a list of path strings"),
        ({"watch": {"extensions": [".mkv"]}}, "[watch] extensions", "without a leading dot"),
        ({"watch": {"observer": "fanotify"}}, "[watch] observer", '"inotify"'),
        ({"watch": {"colour": 1}}, "[watch] colour", "unknown key"),
        ({"logging": {"level": "verbose"}}, "[logging] level", '"debug"'),
        ({"policy": {"audio_languages": ["klingonese"]}}, "[policy] audio_languages", "ISO 639-2"),
        ({"policy": {"on_error": "retry"}}, "[policy] on_error", '"skip"'),
        ({"policy": {"track_order": ["audio", "audio"]}}, "[policy] track_order", "at most once"),
        ({"nonsense": {}}, "[nonsense]", "unknown section"),
        ({"allow_root": "yes"}, "allow_root", "a boolean"),
        ({"watch": {"settle_seconds": float("inf")}}, "[watch] settle_seconds", "a finite number"),
        ({"watch": {"settle_seconds": float("nan")}}, "[watch] settle_seconds", "a finite number"),
        ({"processing": {"tool_timeout_seconds": 3_000_000}}, "[processing] tool_timeout_seconds", "7 days"),
        ({"processing": {"shutdown_timeout_seconds": -1}}, "[processing] shutdown_timeout_seconds", "> 0"),
        ({"watch": {"paths": []}}, "[watch] paths", "at least one item"),
        ({"watch": {"paths": ["/a", "/a/"]}}, "[watch] paths", "each item at most once"),
        ({"watch": {"extensions": []}}, "[watch] extensions", "at least one item"),
        ({"database": {"lease_seconds": 0}}, "[database] lease_seconds", "> 0"),
        ({"database": {"lease_seconds": 20}}, "[database] lease_seconds", "shorter than two renewals"),
        ({"database": {"lease_seconds": 3, "lease_heartbeat_seconds": 2}}, "[database] lease_seconds", "at least 4"),
    ],
)
def test_bad_values_name_file_key_and_expectation(tmp_path, data, key, expected):
    source = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as info:
        config_from_data(data, source=source)
    message = str(info.value)
    assert message.startswith(str(source)), message
    assert key in message and expected in message, message


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = config_from_data(
        {"watch": {"paths": ["inbox", "~/x"]}, "database": {"path": "db/vpod.db"}}, source=tmp_path / "c.toml"
    )
    assert config.watch.paths[0] == tmp_path / "inbox"
    assert config.watch.paths[1] == Path("~/x").expanduser()
    assert config.database.path == tmp_path / "db" / "vpod.db"


def test_policy_file(tmp_path):
    (tmp_path / "policy.toml").write_text('audio_languages = ["Japanese", "en"]\non_error = "fail"\n')
    config = config_from_data({"policy": {"policy_file": "policy.toml"}}, source=tmp_path / "c.toml")
    assert config.policy.audio_languages == ("jpn", "eng")
    assert config.policy.on_error == "fail"


def test_policy_file_with_a_policy_table(tmp_path):
    (tmp_path / "p.toml").write_text('[policy]\naudio_languages = ["fr"]\n')
    config = config_from_data({"policy": {"policy_file": "p.toml"}}, source=tmp_path / "c.toml")
    assert config.policy.audio_languages == ("fre",)


def test_policy_file_errors_name_the_policy_file(tmp_path):
    (tmp_path / "p.toml").write_text('audio_languages = ["zz-top"]\n')
    with pytest.raises(ConfigError) as info:
        config_from_data({"policy": {"policy_file": "p.toml"}}, source=tmp_path / "c.toml")
    assert str(tmp_path / "p.toml") in str(info.value)


def test_policy_file_cannot_be_mixed_with_keys(tmp_path):
    with pytest.raises(ConfigError, match="cannot be combined"):
        config_from_data({"policy": {"policy_file": "p.toml", "on_error": "fail"}}, source=tmp_path / "c.toml")


def test_policy_file_with_other_sections(tmp_path):
    (tmp_path / "p.toml").write_text('[policy]\naudio_languages = ["fr"]\n[watch]\npaths = ["/x"]\n')
    with pytest.raises(ConfigError) as info:
        config_from_data({"policy": {"policy_file": "p.toml"}}, source=tmp_path / "c.toml")
    assert str(tmp_path / "p.toml") in str(info.value) and "watch" in str(info.value)


def test_non_utf8_file_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[watch]\npaths = ["/m\xe9dia"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[watch\npaths = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "invalid TOML" in str(info.value)


def test_as_dict_round_trips_paths_as_strings():
    data = VPOConfig().as_dict()
    assert isinstance(data["watch"]["paths"][0], str)
    assert data["policy"]["track_order"] == ["video", "audio", "subtitle", "attachment"]


def test_a_missing_policy_file_names_the_config_key_and_the_target(tmp_path):
    with pytest.raises(ConfigError) as err:
        config_from_data({"policy": {"policy_file": "gone.toml"}}, source=tmp_path / "c.toml")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'c.toml'}: [policy] policy_file: ")
    assert str(tmp_path / "gone.toml") in message and "No such file" in message


def test_a_config_naming_itself_as_policy_file_is_told_so(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[policy]\npolicy_file = "c.toml"\n')
    with pytest.raises(ConfigError, match=r"c\.toml: \[policy\] policy_file: names this file itself"):
        config_from_data({"policy": {"policy_file": "c.toml"}}, source=config)


def test_policy_digest_names_what_a_conforming_file_looks_like():
    """Policy.digest (recorded with each result) changes with any key that changes the
    judgement, not with spelling, key order, or keys that never change a result."""
    base = config_from_data({"policy": {"audio_languages": ["jpn"]}}, source=None).policy
    assert len(base.digest) == 16 and int(base.digest, 16) >= 0
    assert base.digest == config_from_data({"policy": {"audio_languages": ["ja"]}}, source=None).policy.digest
    assert base.digest == Policy(audio_languages=("jpn",)).digest  # another object, same value
    eng = config_from_data({"policy": {"audio_languages": ["eng"]}}, source=None).policy
    assert eng.digest != base.digest
    for key, value in (
        ("container", "mkv"),
        ("track_order", []),
        ("clear_track_titles", True),
        ("hardlinks", "break"),  # a hard-linked file ends differently under "headers"
        ("original_language", "kor"),
    ):
        changed = config_from_data({"policy": {"audio_languages": ["jpn"], key: value}}, source=None).policy
        assert changed.digest != base.digest, key
    neutral = {"on_error": "fail", "backup": True, "keep_mtime": False}
    assert config_from_data({"policy": {"audio_languages": ["jpn"], **neutral}}, source=None).policy.digest == (
        base.digest
    )


def test_break_hardlinks_is_read_as_hardlinks():
    """The key hardlinks replaced keeps working: true is "break", false "headers"."""
    assert config_from_data({"policy": {"break_hardlinks": True}}, source=None).policy.hardlinks == "break"
    assert config_from_data({"policy": {"break_hardlinks": False}}, source=None).policy.hardlinks == "headers"
    with pytest.raises(ConfigError, match="cannot be combined with hardlinks"):
        config_from_data({"policy": {"break_hardlinks": True, "hardlinks": "skip"}}, source=None)
    with pytest.raises(ConfigError, match="hardlinks"):
        config_from_data({"policy": {"hardlinks": "sometimes"}}, source=None)


def test_original_stands_in_language_lists():
    policy = config_from_data(
        {"policy": {"audio_languages": ["Original", "en"], "original_language": "ko"}}, source=None
    ).policy
    assert policy.audio_languages == ("original", "eng") and policy.original_language == "kor"
    with pytest.raises(ConfigError, match="original_language"):
        config_from_data({"policy": {"original_language": "klingonish"}}, source=None)


def test_fallback_database_path_reads_only_the_database_table(tmp_path):
    from vpod.config import DatabaseConfig, fallback_database_path

    config = tmp_path / "c.toml"
    config.write_text('[watch\npaths = 1\n[database]\npath = "db/vpod.db"  # relative to the file\n[policy]\nx = [\n')
    assert fallback_database_path(config) == tmp_path / "db" / "vpod.db"
    config.write_text("[watch]\nbogus = 1\n")  # TOML, no [database]: the default database
    assert fallback_database_path(config) == DatabaseConfig().path
    config.write_text('[watch\ndatabase.path = "x.db"\n')  # not guessed at
    assert fallback_database_path(config) is None
    config.write_text("[database]\npath = 5\n")
    assert fallback_database_path(config) is None
    # Not TOML at all, or broken with no [database] path: not the default database (found by a tester).
    config.write_text("this is not a config file\n")
    assert fallback_database_path(config) is None
    config.write_text('[watch\npaths = 1\n[database]\nbusy_timeout_seconds = 1\n')
    assert fallback_database_path(config) is None
    assert fallback_database_path(tmp_path / "missing.toml") is None
def test_overlapping_watch_roots_are_refused_by_the_folders_they_name(tmp_path):
    library = tmp_path / "library"
    (library / "new").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(library)
    (tmp_path / "other").mkdir()

    def load(paths, **watch):
        return config_from_data({"watch": {"paths": [str(p) for p in paths], **watch}}, source=tmp_path / "c.toml")

    with pytest.raises(ConfigError) as nested:
        load([library, library / "new"])
    assert nested.value.key == "[watch] paths"
    assert f"{library / 'new'} is inside {library}" in nested.value.reason
    with pytest.raises(ConfigError) as nested_reversed:
        load([library / "new", library])
    assert f"{library / 'new'} is inside {library}" in nested_reversed.value.reason
    with pytest.raises(ConfigError) as alias:
        load([library, tmp_path / "alias"])
    assert f"{tmp_path / 'alias'} is the same folder as {library}" in alias.value.reason
    # Not recursive: the subfolder's files are not the folder's.
    assert load([library, library / "new"], recursive=False).watch.paths == (library, library / "new")
    # Apart, or missing (nothing to compare yet): fine.
    load([library, tmp_path / "other", tmp_path / "missing", tmp_path / "missing" / "x"])


def test_a_policy_file_path_with_a_nul_byte_and_a_config_with_a_bom(tmp_path):
    """Found by the issue 13 tester: a NUL byte in policy_file raised ValueError (a
    traceback); a byte order mark made a valid file "invalid TOML"."""
    with pytest.raises(ConfigError, match="policy_file"):
        config_from_data({"policy": {"policy_file": "a\x00b.toml"}}, source=tmp_path / "c.toml")
    config = tmp_path / "bom.toml"
    config.write_bytes(b'\xef\xbb\xbf[policy]\naudio_languages = ["jpn"]\n')
    assert load_config(config).policy.audio_languages == ("jpn",)


def test_node_name_defaults_to_the_host_name_and_refuses_a_slash():
    """Issue 14 item 3: ``[node] name`` names this node; "" means the host name."""
    import socket

    assert config_from_data({}, source=None).node.node_name == socket.gethostname()
    assert config_from_data({"node": {"name": "nas-1"}}, source=None).node.node_name == "nas-1"
    with pytest.raises(ConfigError) as bad:
        config_from_data({"node": {"name": "a/b"}}, source=None)
    assert "[node] name" in str(bad.value)


# -- [database] url, password_file, $VPOD_DATABASE_URL (issue 14) ---------------------------


def test_database_url_empty_means_sqlite_and_a_url_must_be_postgresql():
    config = config_from_data({}, source=None)
    assert (config.database.url, config.database.password_file) == ("", "")
    url = "postgresql://vpod@db.lan:5432/vpod"
    assert config_from_data({"database": {"url": url}}, source=None).database.url == url
    with pytest.raises(ConfigError, match=r"\[database\] url.*postgresql://"):
        config_from_data({"database": {"url": "mysql://db/vpod"}}, source=Path("/etc/vpod.toml"))
    with pytest.raises(ConfigError, match=r"password_file.*absolute path"):
        config_from_data({"database": {"password_file": "relative/pw"}}, source=None)


def test_the_database_url_is_hidden_from_config_check_and_repr():
    url = "postgresql://vpod:s3cret@db.lan/vpod"
    config = config_from_data({"database": {"url": url}}, source=None)
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.as_dict())


def test_vpod_database_url_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "postgresql://file@db/vpod"\n')
    monkeypatch.setenv("VPOD_DATABASE_URL", "postgresql://env@db/vpod")
    assert load_config(path).database.url == "postgresql://env@db/vpod"
    monkeypatch.setenv("VPOD_DATABASE_URL", "")
    assert load_config(path).database.url == "postgresql://file@db/vpod"
    monkeypatch.setenv("VPOD_DATABASE_URL", "sqlite:///x")
    with pytest.raises(ConfigError, match=r"environment: \$VPOD_DATABASE_URL"):
        load_config(path)


def test_http_web_token_and_base_path(tmp_path):
    """Issue 17: [http] token (16+ characters, secret), token_file, base_path."""
    token = "0123456789abcdef-token"
    config = config_from_data({"http": {"token": token, "base_path": "/vpod"}}, source=None)
    assert config.http.token == token and config.http.base_path == "/vpod"
    assert token not in repr(config.http) and token not in str(config.as_dict())
    held = tmp_path / "web.token"
    held.write_text(f"  {token}\n")
    assert config_from_data({"http": {"token_file": str(held)}}, source=None).http.token == token
    for bad, match in (
        ({"token": "short"}, "16 characters"),
        ({"token": token, "token_file": str(held)}, "not both"),
        ({"token_file": str(tmp_path / "missing")}, "cannot read"),
        ({"base_path": "/vpod/"}, "trailing"),
        ({"base_path": "vpod"}, "trailing"),
    ):
        with pytest.raises(ConfigError, match=match):
            config_from_data({"http": bad}, source=None)
    held.write_text("short\n")
    with pytest.raises(ConfigError, match="16 characters"):
        config_from_data({"http": {"token_file": str(held)}}, source=None)


@pytest.mark.parametrize("token", ["has space in it 1234567", "short", 12345678901234567890])
def test_a_rejected_secret_is_never_echoed(token):
    """fix17 defect 13: the error names the key and what is expected, never the value."""
    with pytest.raises(ConfigError) as caught:
        config_from_data({"http": {"token": token}}, source=None)
    message = str(caught.value)
    assert "[http] token" in message and str(token) not in message and "not shown" in message
