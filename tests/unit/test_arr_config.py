"""``[arr.NAME]``: Sonarr/Radarr instances in the config (issue 13 item 2): parsed and
checked like every section, the API key never shown, and applied live by a reload."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace

import pytest

from support.daemon import daemon_env, run_vpod
from vpod.arr_config import ArrConfig
from vpod.config import config_from_data, load_config
from vpod.errors import ConfigError
from vpod.reload import RESTART_ONLY, plan_reload

KEY = "0123456789abcdef0123456789abcdef"


def test_instances_in_file_order_with_their_keys(tmp_path):
    (tmp_path / "sonarr.key").write_text(f"  {KEY}\n")
    config = config_from_data(
        {
            "arr": {
                "movies": {
                    "kind": "radarr", "url": "http://127.0.0.1:7878", "api_key": KEY,
                    "path_mappings": {"/movies/": "/srv/media/movies/"}, "when_unavailable": "fallback",
                },
                "tv": {"kind": "sonarr", "url": "https://nas:8989/sonarr", "api_key_file": "sonarr.key", "timeout_seconds": 3},
            }
        },
        source=tmp_path / "config.toml",
    )
    movies, tv = config.arr.instances
    assert (movies.name, movies.kind, movies.timeout_seconds, movies.refresh_seconds) == ("movies", "radarr", 10.0, 600.0)
    assert movies.path_mappings == (("/movies/", "/srv/media/movies"),) and movies.when_unavailable == "fallback"
    assert (tv.name, tv.api_key, tv.api_key_file, tv.timeout_seconds) == ("tv", KEY, tmp_path / "sonarr.key", 3.0)
    assert tv.when_unavailable == "retry"
    assert config.arr.by_name("tv") is tv and config.arr.by_name("x") is None
    assert KEY not in repr(config) and KEY not in json.dumps(config.as_dict())
    assert config.as_dict()["arr"]["instances"][0]["api_key"] == "(hidden)"


@pytest.mark.parametrize(
    "table, key, expected",
    [
        ({"m": {"url": "http://h:1", "api_key": KEY}}, "[arr.m] kind", "required"),
        ({"m": {"kind": "lidarr", "url": "http://h:1", "api_key": KEY}}, "[arr.m] kind", '"radarr", "sonarr"'),
        ({"m": {"kind": "radarr", "api_key": KEY}}, "[arr.m] url", "required"),
        ({"m": {"kind": "radarr", "url": "ftp://h", "api_key": KEY}}, "[arr.m] url", "http:// or https://"),
        ({"m": {"kind": "radarr", "url": "http://u:p@h:1", "api_key": KEY}}, "[arr.m] url", "without a user name"),
        ({"m": {"kind": "radarr", "url": "http://[::1", "api_key": KEY}}, "[arr.m] url", "Invalid IPv6 URL"),
        ({"m": {"kind": "radarr", "url": "http://h:99999", "api_key": KEY}}, "[arr.m] url", "Port out of range"),
        ({"m": {"kind": "radarr", "url": "http://h:1"}}, "[arr.m] api_key", "exactly one of api_key and api_key_file"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY, "api_key_file": "/k"}}, "[arr.m] api_key",
         "exactly one"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": " "}}, "[arr.m] api_key", "a non-empty API key"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key_file": "/nonexistent/k"}}, "[arr.m] api_key_file",
         "cannot read /nonexistent/k"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY, "timeout_seconds": 0}},
         "[arr.m] timeout_seconds", "> 0 and <= 120"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY, "when_unavailable": "wait"}},
         "[arr.m] when_unavailable", '"retry", "fallback"'),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY, "path_mappings": {"/m": "relative"}}},
         "[arr.m] path_mappings", "absolute"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY, "name": "x"}}, "[arr.m] name", "table's name"),
        ({"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY, "apikey": KEY}}, "[arr.m] apikey", "unknown key"),
        ({"m": "http://h:1"}, "[arr] m", "expected a table [arr.NAME]"),
        ({"bad name": {}}, "[arr.bad name]", "a name of letters"),
    ],
)
def test_bad_values_name_the_file_the_key_and_what_was_expected(tmp_path, table, key, expected):
    with pytest.raises(ConfigError) as caught:
        config_from_data({"arr": table}, source=tmp_path / "c.toml")
    assert caught.value.key == key and expected in caught.value.reason and str(tmp_path / "c.toml") in str(caught.value)
    assert KEY not in str(caught.value)


def test_an_empty_key_file_is_refused(tmp_path):
    (tmp_path / "k").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        config_from_data({"arr": {"m": {"kind": "radarr", "url": "http://h:1", "api_key_file": str(tmp_path / "k")}}},
                         source=None)


def test_a_reload_applies_new_instances_live():
    old = config_from_data({}, source=None)
    new = config_from_data({"arr": {"m": {"kind": "radarr", "url": "http://h:1", "api_key": KEY}}}, source=None)
    plan = plan_reload(old, new)
    assert plan.config.arr == new.arr and plan.changed == ("[arr] instances",)
    assert not any(section == "arr" for section, _ in RESTART_ONLY)
    assert plan_reload(new, replace(new, arr=ArrConfig())).config.arr == ArrConfig()


def test_config_check_hides_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[arr.movies]\nkind = "radarr"\nurl = "http://127.0.0.1:7878"\napi_key = "{KEY}"\n')
    assert load_config(path).arr.instances[0].api_key == KEY
    for args in (["config", "check", "--config", str(path)], ["config", "check", "--config", str(path), "--json"]):
        out = run_vpod(args, env=daemon_env(tmp_path))
        assert out.returncode == 0, out.stderr
        assert KEY not in out.stdout + out.stderr and "(hidden)" in out.stdout and "radarr" in out.stdout


def test_config_check_prints_arr_tables_that_read_back_as_toml(tmp_path):
    (tmp_path / "tv.key").write_text(KEY + "\n")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[arr.movies]\nkind = "radarr"\nurl = "http://127.0.0.1:7878"\napi_key = "{KEY}"\n'
        'path_mappings = { "/movies" = "/srv/movies" }\n'
        f'[arr."tv.4k"]\nkind = "sonarr"\nurl = "http://127.0.0.1:8989"\napi_key_file = "{tmp_path / "tv.key"}"\n'
    )
    out = run_vpod(["config", "check", "--config", str(path)], env=daemon_env(tmp_path))
    assert out.returncode == 0, out.stderr
    arr = tomllib.loads(out.stdout)["arr"]
    assert arr["movies"] == {
        "kind": "radarr", "url": "http://127.0.0.1:7878", "api_key": "(hidden)", "timeout_seconds": 10.0,
        "path_mappings": {"/movies": "/srv/movies"}, "refresh_seconds": 600.0, "when_unavailable": "retry",
        "rescan": True,
    }
    assert arr["tv.4k"]["api_key_file"] == str(tmp_path / "tv.key") and "api_key" not in arr["tv.4k"]
    assert KEY not in out.stdout
