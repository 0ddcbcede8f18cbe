"""Issue 16, the fresh-user tester's defects (T16 report), end to end: config errors never
echo a secret, `config check` reads notify URLs as Apprise will, a notification that
fails says why (Apprise's warning from its worker threads, masked), `vpod notify test`
names each URL once."""

from __future__ import annotations

import threading
import urllib.parse
from pathlib import Path

import pytest

from support.arr import ArrStandIn
from support.daemon import run_vpod, write_config
from support.media import audio, copy_media, video
from support.media_servers import JsonReceiver, MediaBrowserStandIn, PlexStandIn
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
    ({"arr": {"tv": {"kind": "sonarr", "url": "http://user:PORTPW/x", "api_key": "k0123"}}}, ["PORTPW"]),
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


def _junk_daemon(daemon_factory, tmp_path: Path, port: int, files: int, **notify: object):
    """A daemon notifying ``json://127.0.0.1:PORT/secret-path``, and ``files`` junk .mkv
    files dropped in its inbox (each fails for good)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watch = {"paths": [str(inbox)], "settle_seconds": 0.3}
    daemon = daemon_factory({"watch": watch, "processing": {"batch_window_seconds": 1.0},
                             "notify": {"urls": [f"json://127.0.0.1:{port}/secret-path"], **notify}})
    for n in range(files):
        (inbox / f"junk{n}.mkv").write_bytes(b"not a matroska file" * 100)
    return daemon


def test_the_daemon_says_why_a_notification_was_dropped(tmp_path, daemon_factory):
    daemon = _junk_daemon(daemon_factory, tmp_path, free_port(), 1, attempts=1, events=["file_failed"])
    dropped = daemon.wait_for("integration_failed", dropped="undelivered")[0]
    assert "connection error" in dropped["error"].lower(), dropped
    assert daemon.stop() == 0
    assert "secret-path" not in daemon.log_path.read_text()


class _HeldJellyfin(MediaBrowserStandIn):
    """Jellyfin whose first request waits until :attr:`release` is set: the daemon's
    integrations thread is busy meanwhile, so later calls queue behind it."""

    def __init__(self, token: str) -> None:
        super().__init__("jellyfin", token)
        self.release = threading.Event()

    def answer(self, request):
        if len(self.requests) == 1:
            self.release.wait(60)
        return super().answer(request)


def test_a_season_pack_makes_one_call_per_series_and_folder_not_one_per_file(
    tmp_path, daemon_factory, media_cache
):
    """Fix 11: renames queued while the same call waits join it (the Plex scan of the
    folder, Jellyfin's one request, Sonarr's one RescanSeries of the series); a server
    whose path_mappings hold none of the files is not called."""
    key, token, series = "0123456789abcdef0123456789abcdef", "jellyfin0123456789", "Show (2020)"
    sonarr = ArrStandIn("sonarr", [("Show", f"/tv/{series}", "English")], api_key=key).start()
    jellyfin = _HeldJellyfin(token).start()
    emby = MediaBrowserStandIn("emby", "emby0123456789").start()
    plex = PlexStandIn("plexToken-XYZ", [("2", "show", "TV", ["/data/tv"])]).start()
    try:
        library = tmp_path / "lib"
        tv, movies = library / "tv", library / "movies"
        season = tv / series / "Season 01"
        season.mkdir(parents=True)
        movies.mkdir()
        daemon = daemon_factory({
            "watch": {"paths": [str(library)], "settle_seconds": 0.3},
            "policy": {"container": "mkv"},
            "arr": {"tv": {"kind": "sonarr", "url": sonarr.url, "api_key": key, "path_mappings": {"/tv": str(tv)}}},
            "media_servers": {
                "jf": {"kind": "jellyfin", "url": jellyfin.url, "token": token, "timeout_seconds": 90.0,
                       "path_mappings": {"/media/tv": str(tv)}},
                "emby": {"kind": "emby", "url": emby.url, "token": "emby0123456789",
                         "path_mappings": {"/media/movies": str(movies)}},  # not the tv folder
                "plex": {"kind": "plex", "url": plex.url, "token": "plexToken-XYZ",
                         "path_mappings": {"/data/tv": str(tv)}},
            },
        })
        source = media_cache("episode.mp4", [video(), audio("eng", default=True)])
        files = [copy_media(source, season / f"Show S01E0{n}.mp4") for n in range(1, 6)]
        daemon.wait_for("file_processed", count=5)
        jellyfin.release.set()
        daemon.wait_for("integration_notified", target='plex "plex"')
        # All five renames reach Jellyfin: in one request (the outbox's hold) or two (the
        # first already under way when the others came).
        daemon.wait_for("integration_notified", target='jellyfin "jf"',
                        where=lambda e: sum(x.get("files", 1) for x in daemon.named(
                            "integration_notified", target='jellyfin "jf"')) >= 5)
        daemon.wait_for("integration_notified", target='sonarr "tv"',
                        where=lambda e: "coalesced" in e or e.get("files") == 5)
        skipped = daemon.wait_for("integration_skipped", target='emby "emby"')
        assert "path_mappings" in skipped[0]["why"]
        assert daemon.stop() == 0
        assert emby.requests == []  # outside its path_mappings: not sent
        refreshes = [r for r in plex.requests if "/refresh" in r.path]
        assert len(refreshes) == 1 and len(plex.requests) == 2  # one listing, one scan of the folder
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(refreshes[0].path).query) == {
            "path": [f"/data/tv/{series}/Season 01"]}
        updates = [u for r in jellyfin.requests for u in r.json()["Updates"]]
        assert len(jellyfin.requests) in (1, 2) and len(updates) == 10  # 5 renames: Deleted + Created each
        assert sorted(u["Path"] for u in updates if u["UpdateType"] == "Created") == sorted(
            f"/media/tv/{series}/Season 01/{f.with_suffix('.mkv').name}" for f in files)
        commands = [c.json() for c in sonarr.commands]
        assert 1 <= len(commands) <= 2 and all(c == {"name": "RescanSeries", "seriesId": 1} for c in commands)
        lines = daemon.named("integration_notified")
        plex_line = next(e for e in lines if e["target"] == 'plex "plex"')
        assert plex_line["coalesced"] == 4 and plex_line["files"] == 5
    finally:
        jellyfin.release.set()
        for stand_in in (sonarr, jellyfin, emby, plex):
            stand_in.stop()


def test_a_full_notify_queue_drops_a_file_failure_not_the_batch_summary(tmp_path, daemon_factory):
    """Fix 6: the target is down; one message is being retried, the queue (3) fills with
    per-file failures (the later ones dropped); each batch summary evicts the oldest of
    them, and arrives once the target is back: 8 failures, 1 being sent, 3 waiting: 4
    dropped, and one more per summary."""
    receiver = JsonReceiver(refuse=10**9).start()
    try:
        daemon = _junk_daemon(daemon_factory, tmp_path, receiver.port, 8, queue_size=3, attempts=20,
                              retry_seconds=1.0, max_retry_seconds=1.0, events=["file_failed", "batch_summary"])
        daemon.wait_for("file_failed", count=8)
        batches = daemon.wait_for("batch_completed", where=lambda e: e["fail_count"] > 0)
        while sum(b["fail_count"] for b in batches) < 8:  # under load the files may span two batches
            batches = daemon.wait_for("batch_completed", count=len(batches) + 1, where=lambda e: e["fail_count"] > 0)
        dropped = daemon.wait_for("integration_failed", dropped="queue_full", count=8 - 1 - 3 + len(batches))
        assert {e["action"] for e in dropped} == {"file_failed"}  # never a summary
        assert not daemon.named("integration_failed", action="batch_summary")
        receiver.refuse = 0  # the target is back
        daemon.wait_for("integration_notified", action="batch_summary", count=len(batches))
        summaries = [m for m in receiver.messages if m["title"].startswith("vpod: batch: ")]
        assert len(summaries) == len(batches)
        assert daemon.stop() == 0
    finally:
        receiver.stop()
