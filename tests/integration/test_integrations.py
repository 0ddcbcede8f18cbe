"""Issue 16 items 3 and 4, end to end with the real daemon: a container change makes one
rescan command reach the stand-in Sonarr and one refresh reach each stand-in media server
(Jellyfin, Emby, Plex), with the documented method, path, headers and body; Apprise
delivers one message per failure and one per batch to a JSON webhook, none lost nor
duplicated while it is down for a while, and drops are counted when it stays down;
`vpod notify test` reaches it (or says which URL failed)."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest

from support.arr import ArrStandIn
from support.daemon import run_vpod, write_config
from support.http import get
from support.media import audio, copy_media, video
from support.media_servers import JsonReceiver, MediaBrowserStandIn, PlexStandIn
from support.postgres import free_port

pytestmark = pytest.mark.integration

KEY = "0123456789abcdef0123456789abcdef"
JELLYFIN_TOKEN = "jellyfin0123456789"
EMBY_TOKEN = "emby0123456789"
PLEX_TOKEN = "plexToken-XYZ"
SERIES = "Show (2020)"


@pytest.fixture
def stand_ins():
    sonarr = ArrStandIn("sonarr", [("Other", "/tv/Other (2001)", None), ("Show", f"/tv/{SERIES}", "English")],
                        api_key=KEY).start()
    radarr = ArrStandIn("radarr", [("Parasite", "/movies/Parasite (2019)", "Korean")], api_key=KEY).start()
    jellyfin = MediaBrowserStandIn("jellyfin", JELLYFIN_TOKEN).start()
    emby = MediaBrowserStandIn("emby", EMBY_TOKEN).start()
    plex = PlexStandIn(PLEX_TOKEN, [("1", "movie", "Movies", ["/data/movies"]), ("2", "show", "TV", ["/data/tv"])]).start()
    yield sonarr, radarr, jellyfin, emby, plex
    for stand_in in (sonarr, radarr, jellyfin, emby, plex):
        stand_in.stop()


def test_a_container_change_rescans_the_series_and_refreshes_each_media_server(
    tmp_path, daemon_factory, media_cache, stand_ins
):
    sonarr, radarr, jellyfin, emby, plex = stand_ins
    library = tmp_path / "lib"
    tv, movies = library / "tv", library / "movies"
    season = tv / SERIES / "Season 01"
    season.mkdir(parents=True)
    movies.mkdir()
    arr = {"kind": "", "url": "", "api_key": KEY, "timeout_seconds": 5.0}
    daemon = daemon_factory({
        "watch": {"paths": [str(library)], "settle_seconds": 0.3},
        "policy": {"container": "mkv"},
        "arr": {
            "tv": {**arr, "kind": "sonarr", "url": sonarr.url, "path_mappings": {"/tv": str(tv)}},
            "movies": {**arr, "kind": "radarr", "url": radarr.url, "path_mappings": {"/movies": str(movies)}},
        },
        "media_servers": {
            "jf": {"kind": "jellyfin", "url": jellyfin.url, "token": JELLYFIN_TOKEN, "path_mappings": {"/media/tv": str(tv)}},
            "emby": {"kind": "emby", "url": emby.url, "token": EMBY_TOKEN, "path_mappings": {"/media/tv": str(tv)}},
            "plex": {"kind": "plex", "url": plex.url, "token": PLEX_TOKEN, "path_mappings": {"/data/tv": str(tv)}},
        },
    })
    source = media_cache("episode.mp4", [video(), audio("eng", default=True)])
    old = copy_media(source, season / "Show S01E01.mp4")
    new = season / "Show S01E01.mkv"
    processed = daemon.wait_for("file_processed", path=str(old))[0]
    assert processed["final_path"] == str(new)
    notified = daemon.wait_for("integration_notified", count=4, path=str(new))
    assert sorted(e["target"] for e in notified) == ['emby "emby"', 'jellyfin "jf"', 'plex "plex"', 'sonarr "tv"']
    assert daemon.wait_for("integration_skipped", target='radarr "movies"', path=str(new))  # not its file
    assert daemon.stop() == 0

    # Sonarr: one RescanSeries of the series holding the file (id 2 in its list).
    [command] = sonarr.commands
    assert (command.method, command.path) == ("POST", "/api/v3/command")
    assert command.headers["X-Api-Key"] == KEY and command.headers["Content-Type"] == "application/json"
    assert command.json() == {"name": "RescanSeries", "seriesId": 2}
    assert radarr.commands == []
    # Jellyfin and Emby: one POST /Library/Media/Updated, the old path deleted, the new one created.
    expected = {"Updates": [
        {"Path": f"/media/tv/{SERIES}/Season 01/Show S01E01.mp4", "UpdateType": "Deleted"},
        {"Path": f"/media/tv/{SERIES}/Season 01/Show S01E01.mkv", "UpdateType": "Created"},
    ]}
    [updated] = jellyfin.requests
    assert (updated.method, updated.path, updated.json()) == ("POST", "/Library/Media/Updated", expected)
    assert updated.headers["Authorization"] == f'MediaBrowser Token="{JELLYFIN_TOKEN}"'
    assert updated.headers["Content-Type"] == "application/json"
    [updated] = emby.requests
    assert (updated.method, updated.path, updated.json()) == ("POST", "/Library/Media/Updated", expected)
    assert updated.headers["X-Emby-Token"] == EMBY_TOKEN
    # Plex: the sections, then a partial scan of the folder in the section holding it.
    sections, refresh = plex.requests
    assert (sections.method, sections.path, sections.headers["Accept"]) == ("GET", "/library/sections", "application/json")
    parts = urllib.parse.urlsplit(refresh.path)
    assert (refresh.method, parts.path) == ("GET", "/library/sections/2/refresh")
    assert urllib.parse.parse_qs(parts.query) == {"path": [f"/data/tv/{SERIES}/Season 01"]}
    assert all(r.headers["X-Plex-Token"] == PLEX_TOKEN for r in plex.requests)
    log = daemon.log_path.read_text()
    for secret in (KEY, JELLYFIN_TOKEN, EMBY_TOKEN, PLEX_TOKEN):
        assert secret not in log


def notify_daemon(daemon_factory, tmp_path: Path, receiver: JsonReceiver, **notify: object):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    port = free_port()
    daemon = daemon_factory({
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "processing": {"batch_window_seconds": 1.0},
        "http": {"listen": f"127.0.0.1:{port}"},
        "notify": {"urls": [f"json://127.0.0.1:{receiver.port}/hooks/secret-path"], **notify},
    })
    return daemon, inbox, port


def test_apprise_sends_one_message_per_failure_and_per_batch_through_an_outage(tmp_path, daemon_factory):
    receiver = JsonReceiver(refuse=3).start()  # down for the first three tries
    daemon, inbox, port = notify_daemon(
        daemon_factory, tmp_path, receiver, attempts=6, retry_seconds=0.2, events=["file_failed", "batch_summary"]
    )
    for name in ("a.mkv", "b.mkv"):
        (inbox / name).write_bytes(b"not a matroska file" * 100)
    daemon.wait_for("file_failed", count=2)
    batches = daemon.wait_for("batch_completed", where=lambda e: e["fail_count"] > 0)
    expected = 2 + len(batches)
    daemon.wait_for("integration_notified", count=expected, where=lambda e: e["target"] == "notify url 1 (json)")
    assert receiver.refused == 3
    messages = receiver.messages
    failures = [m for m in messages if m["title"].startswith("vpod: failed: ")]
    summaries = [m for m in messages if m["title"].startswith("vpod: batch: ")]
    assert sorted(m["title"] for m in failures) == ["vpod: failed: a.mkv", "vpod: failed: b.mkv"]
    assert all(m["type"] == "failure" and m["version"] == "1.0" for m in failures)
    assert len(summaries) == len(batches) == len(messages) - 2  # one per batch, nothing twice
    assert sum(int(re.search(r"(\d+) failed", m["message"]).group(1)) for m in summaries) == 2
    listed = "\n".join(m["message"] for m in summaries)
    assert f"- {inbox / 'a.mkv'}: " in listed and f"- {inbox / 'b.mkv'}: " in listed  # the failures, by name
    _, _, metrics = get(port, "/metrics")
    assert 'vpod_notifications_dropped_total{' not in metrics
    assert 'vpod_integration_calls_total{kind="apprise",outcome="notified"}' in metrics
    assert daemon.stop() == 0
    assert "secret-path" not in daemon.log_path.read_text()
    receiver.stop()


def test_a_target_that_stays_down_costs_bounded_tries_and_counted_drops(tmp_path, daemon_factory):
    receiver = JsonReceiver(refuse=10**9).start()
    daemon, inbox, port = notify_daemon(
        daemon_factory, tmp_path, receiver, attempts=2, retry_seconds=0.1, events=["file_failed"]
    )
    (inbox / "broken.mkv").write_bytes(b"not a matroska file" * 100)
    dropped = daemon.wait_for("integration_failed", dropped="undelivered")[0]
    assert dropped["target"] == "notify url 1 (json)" and dropped["attempts"] == 2
    assert receiver.refused == 2 and receiver.messages == []
    _, _, metrics = get(port, "/metrics")
    assert 'vpod_notifications_dropped_total{reason="undelivered"} 1.0' in metrics
    assert daemon.stop() == 0
    assert "secret-path" not in daemon.log_path.read_text()
    receiver.stop()


def test_vpod_notify_test_sends_one_message_and_names_a_failing_url(tmp_path, env):
    receiver = JsonReceiver().start()
    dead = free_port()
    config = write_config(tmp_path / "config.toml", {
        "database": {"path": str(tmp_path / "vpod.db")},
        "notify": {"urls": [f"json://127.0.0.1:{receiver.port}/hook"]},
    })
    out = run_vpod(["notify", "test", "--config", str(config)], env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "notify url 1 (json): sent"
    [message] = receiver.messages
    assert message["title"] == "vpod: test notification"
    write_config(config, {
        "database": {"path": str(tmp_path / "vpod.db")},
        "notify": {"urls": [f"json://127.0.0.1:{receiver.port}/hook", f"json://127.0.0.1:{dead}/token-abc"]},
    })
    out = run_vpod(["notify", "test", "--config", str(config)], env=env)
    assert out.returncode == 1
    assert "notify url 1 (json): sent" in out.stdout and "notify url 2 (json): failed" in out.stdout
    assert "token-abc" not in out.stdout + out.stderr
    receiver.stop()


def test_vpod_process_rescans_and_refreshes_what_it_renamed_before_it_exits(tmp_path, env, media_cache, stand_ins):
    """The Custom Script path (contrib/sonarr-radarr/vpod-import.sh runs vpod process on
    the file Sonarr imported): its container change is told before the command ends."""
    sonarr, _, jellyfin, _, _ = stand_ins
    tv = tmp_path / "tv"
    season = tv / SERIES / "Season 01"
    season.mkdir(parents=True)
    old = copy_media(media_cache("episode.mp4", [video(), audio("eng", default=True)]), season / "e.mp4")
    config = write_config(tmp_path / "config.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"},
        "policy": {"container": "mkv"},
        "arr": {"tv": {"kind": "sonarr", "url": sonarr.url, "api_key": KEY, "path_mappings": {"/tv": str(tv)}}},
        "media_servers": {"jf": {"kind": "jellyfin", "url": jellyfin.url, "token": JELLYFIN_TOKEN}},
    })
    out = run_vpod(["process", str(old), "--config", str(config)], env=env)
    assert out.returncode == 0, out.stderr
    assert (season / "e.mkv").exists() and not old.exists()
    assert [c.json() for c in sonarr.commands] == [{"name": "RescanSeries", "seriesId": 2}]
    [updated] = jellyfin.requests
    assert [u["Path"] for u in updated.json()["Updates"]] == [str(old), str(season / "e.mkv")]
