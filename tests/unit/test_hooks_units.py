"""The pieces of the webhooks without HTTP (issue 16 items 2 and 5): the rate limiter,
the credentials check, the payload reader, the path check and ``[hooks]``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from support.clock import FakeClock
from vpod.config import config_from_data
from vpod.errors import ConfigError
from vpod.hooks.config import HooksConfig
from vpod.hooks.paths import PathRefused, library_file
from vpod.hooks.payload import PayloadError, parse_payload
from vpod.http.auth import authorized
from vpod.http.limits import QUIET_SECONDS, RateLimiter
from vpod.tomlschema import HIDDEN
from vpod.watch.filters import PathFilter
from vpod.config import WatchConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hooks"


def test_a_client_gets_its_burst_then_its_rate_and_one_episode_per_flood():
    clock = FakeClock(100.0)
    limiter = RateLimiter(per_second=2.0, burst=3, clock=clock)
    assert [limiter.admit("a").allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.admit("b").allowed  # each client its own bucket
    refused = limiter.admit("a")
    assert not refused.allowed and not refused.started and refused.retry_after >= 1
    clock.now += 0.5  # one token back, but the flood goes on
    assert limiter.admit("a").ended == 0
    clock.now += QUIET_SECONDS
    admitted = limiter.admit("a")
    assert admitted.allowed and admitted.ended == 2


def test_the_client_table_is_bounded():
    clock = FakeClock(100.0)
    limiter = RateLimiter(per_second=1.0, burst=1, clock=clock, max_clients=3)
    for name in "abc":
        assert limiter.admit(name).allowed
    assert limiter.admit("d").allowed  # a shared bucket for newcomers while the table is full
    assert not limiter.admit("e").allowed
    clock.now += 5  # everyone's bucket is full again: forgotten, room for new clients
    assert limiter.admit("f").allowed and limiter.admit("g").allowed


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("authorization, api_key, ok", [
    (basic("sonarr", "pw"), None, True),
    (None, "key", True),
    (basic("sonarr", "wrong"), None, False),
    (basic("other", "pw"), None, False),
    ("Basic !!not-base64!!", None, False),
    ("Bearer key", None, False),
    (None, "key ", False),
    (None, None, False),
    ("Basic " + base64.b64encode(b"sonarr").decode(), None, False),  # no colon
    (basic("sonarr", "wrong"), "key", True),  # either is enough
])
def test_credentials(authorization, api_key, ok):
    hooks = HooksConfig(username="sonarr", password="pw", api_key="key")
    assert authorized(hooks, authorization, api_key) is ok


def test_no_credentials_configured_lets_nobody_in():
    assert not authorized(HooksConfig(), basic("", ""), "")


@pytest.mark.parametrize("name, kind, path, language, upgrade", [
    ("sonarr-v4-download.json", "sonarr",
     "/tv/Kaguya-sama - Love Is War/Season 01/Kaguya-sama - S01E01 - I Will Make You Invite Me to a Movie.mkv",
     "Japanese", False),
    ("sonarr-v4-upgrade.json", "sonarr",
     "/tv/Kaguya-sama - Love Is War/Season 01/Kaguya-sama - S01E01 - I Will Make You Invite Me to a Movie.mkv",
     "Japanese", True),
    ("sonarr-v3-download.json", "sonarr", "/tv/Dark/Season 1/Dark - S01E01 - Secrets.mkv", None, False),
    ("radarr-v5-download.json", "radarr", "/movies/Parasite (2019)/Parasite (2019) Bluray-1080p.mkv", "Korean", False),
    ("radarr-v3-download.json", "radarr", "/movies/Amélie (2001)/Amélie (2001) Bluray-1080p.mkv", None, False),
])
def test_recorded_downloads(name, kind, path, language, upgrade):
    event = parse_payload(kind, json.loads((FIXTURES / name).read_text()))
    assert (event.event_type, event.file_path, event.language, event.is_upgrade) == ("Download", path, language, upgrade)
    assert event.item_id is not None and event.title


@pytest.mark.parametrize("kind, data, message", [
    ("sonarr", [], "expected a JSON object"),
    ("sonarr", {}, "no eventType"),
    ("sonarr", {"eventType": 3}, "eventType is not a string"),
    ("sonarr", {"eventType": "MovieAdded"}, "unknown sonarr eventType"),
    ("radarr", {"eventType": "SeriesAdd"}, "unknown radarr eventType"),
    ("sonarr", {"eventType": "Download", "series": {"path": "/tv/x"}}, "without episodeFile.path"),
    ("radarr", {"eventType": "Download", "movie": "x"}, "movie: expected an object"),
    ("radarr", {"eventType": "Download", "movieFile": {"path": 5}}, "path: expected a string"),
])
def test_what_is_not_a_payload(kind, data, message):
    with pytest.raises(PayloadError, match=message):
        parse_payload(kind, data)


def test_paths(tmp_path):
    tv = tmp_path / "tv"
    (tv / "Show").mkdir(parents=True)
    (tv / "Show" / "a.mkv").write_bytes(b"x")
    outside = tmp_path / "out"
    outside.mkdir()
    (outside / "b.mkv").write_bytes(b"x")
    (tv / "link").symlink_to(outside)
    kw = dict(path_map=(("/tv", str(tv)),), instance_mappings=(("/series", str(tv)),), roots=(tv,),
              path_filter=PathFilter.from_config(WatchConfig()))
    assert library_file("/tv/Show/a.mkv", **kw) == (tv / "Show" / "a.mkv", tv)
    assert library_file("/series/Show/a.mkv", **kw)[0] == tv / "Show" / "a.mkv"  # the instance's mappings next
    assert library_file("/tv//Show/./a.mkv", **kw)[0] == tv / "Show" / "a.mkv"
    linked = tmp_path / "linked-tv"  # the library watched through a symlink, path_map naming the real folder
    linked.symlink_to(tv)
    via_link = dict(kw, roots=(linked,))
    assert library_file("/tv/Show/a.mkv", **via_link) == (linked / "Show" / "a.mkv", linked)
    for remote, reason in [
        ("/tv/Show/../../out/b.mkv", "path_traversal"), ("..\\b.mkv", "path_traversal"),
        ("/tv/link/b.mkv", "outside_libraries"), (str(outside / "b.mkv"), "outside_libraries"), ("/tv", "outside_libraries"),
        ("Show/a.mkv", "bad_path"), ("/tv/a\0.mkv", "bad_path"), ("/tv/Show/none.mkv", "not_found"),
        ("/tv/Show/a.txt", "not_watched"), ("/tv/Show/.hidden.mkv", "not_watched"),
    ]:
        with pytest.raises(PathRefused) as refused:
            library_file(remote, **kw)
        assert refused.value.reason == reason, remote


def test_hooks_config(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("  pass-word \n")
    config = config_from_data({"hooks": {
        "username": "sonarr", "password_file": str(secret), "api_key": "k1",
        "path_map": [{"remote": "/tv", "local": "/srv/tv/"}],
    }}, source=None)
    assert config.hooks.password == "pass-word" and config.hooks.path_map == (("/tv", "/srv/tv"),)
    shown = config.as_dict()["hooks"]
    assert shown["password"] == HIDDEN and shown["api_key"] == HIDDEN
    assert shown["path_map"] == [{"remote": "/tv", "local": "/srv/tv"}]
    assert "pass-word" not in repr(config) and "k1" not in repr(config)
    for table, key in [
        ({"username": "u"}, "username"),
        ({"password": "p"}, "username"),
        ({"api_key": "k", "api_key_file": str(secret)}, "api_key"),
        ({"api_key_file": str(tmp_path / "missing")}, "api_key_file"),
        ({"path_map": [{"remote": "/tv", "local": "relative"}]}, "path_map"),
        ({"path_map": [{"remote": "/tv"}]}, "path_map"),
        ({"api_key": "two words"}, "api_key"),
        ({"nope": 1}, "nope"),
    ]:
        with pytest.raises(ConfigError, match=key):
            config_from_data({"hooks": table}, source=None)
