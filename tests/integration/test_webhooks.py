"""Sonarr and Radarr webhooks to a running ``vpod run`` (issue 16 item 2).

Real HTTP requests carrying the recorded payloads (tests/fixtures/hooks/) go to the real
daemon. The libraries' policies put ``"original"`` first and no other source knows the
original language (no ``[arr]`` instance, no ``FlagOriginal``, no ``original_language``):
the default audio track the file ends with says whether the payload's language was used.
The settle time is long (60 s), so a file processed at all was queued by the webhook,
not by its filesystem events.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
from pathlib import Path
from typing import Any, Callable

import pytest

from support.daemon import run_vpod
from support.http import health, post
from support.media import T, audio, mkvmerge_tracks, video
from support.writers import written_elsewhere

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hooks"
KEY = "hook-key-0123456789"
USER, PASSWORD = "sonarr", "s3cret-pass"
ORIGINAL_FIRST = {"audio_languages": ["original", "eng"], "subtitle_languages": []}


def payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def send(port: int, kind: str, data: Any, headers: dict[str, str], query: str = "") -> tuple[int, dict[str, Any]]:
    status, _, body = post(port, f"/hooks/{kind}{query}", json.dumps(data).encode(),
                           {"Content-Type": "application/json", **headers})
    return status, json.loads(body)


def default_audio(path: Path) -> list[str]:
    return [t["language"] for t in mkvmerge_tracks(path) if t["type"] == "audio" and t["default"]]


@pytest.fixture
def libraries(tmp_path: Path) -> tuple[Path, Path]:
    tv, movies = tmp_path / "library" / "tv", tmp_path / "library" / "movies"
    tv.mkdir(parents=True)
    movies.mkdir(parents=True)
    return tv, movies


def sections(tv: Path, movies: Path, **hooks: Any) -> dict[str, Any]:
    return {
        "watch": {"libraries": {"tv": str(tv), "movies": str(movies)}, "settle_seconds": 60.0},
        "processing": {"workers": 1, "batch_window_seconds": 30},
        "http": {"listen": "127.0.0.1:0"},
        "policy": {"audio_languages": ["eng"]},
        "policies": {"anime": ORIGINAL_FIRST, "films": ORIGINAL_FIRST},
        "libraries": {"tv": {"policy": "anime"}, "movies": {"policy": "films"}},
        "hooks": {
            "username": USER, "password": PASSWORD, "api_key": KEY,
            "path_map": [{"remote": "/tv", "local": str(tv)}, {"remote": "/movies", "local": str(movies)}],
            **hooks,
        },
    }


def place(source: Path, library: Path, remote: str, root: str) -> Path:
    """Copy ``source`` where the *arr's ``remote`` path (under its ``root``) lies here."""
    target = library / remote[len(root):].lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(source, target))


@pytest.fixture
def eng_jpn(media_cache: Callable[[str, list[T]], Path]) -> Path:
    """English first and default, Japanese second: the webhook's "Japanese" makes jpn the default."""
    return media_cache("hook-eng-jpn.mkv", [video(), audio("eng", default=True), audio("jpn")])


@pytest.fixture
def eng_kor(media_cache: Callable[[str, list[T]], Path]) -> Path:
    return media_cache("hook-eng-kor.mkv", [video(), audio("eng", default=True), audio("kor")])


@pytest.mark.parametrize("fixture, kind, root, auth, language", [
    ("sonarr-v4-download.json", "sonarr", "/tv", "basic", "jpn"),
    ("sonarr-v4-upgrade.json", "sonarr", "/tv", "api_key", "jpn"),
    ("radarr-v5-download.json", "radarr", "/movies", "api_key", "kor"),
    ("radarr-v5-upgrade.json", "radarr", "/movies", "basic", "kor"),
])
def test_a_download_is_processed_once_under_its_librarys_policy_and_the_payloads_language(
    tmp_path, daemon_factory, libraries, eng_jpn, eng_kor, fixture, kind, root, auth, language,
):
    tv, movies = libraries
    daemon = daemon_factory(sections(tv, movies))
    port = daemon.wait_for("http_listening")[0]["port"]
    data = payload(fixture)
    remote = data["episodeFile" if kind == "sonarr" else "movieFile"]["path"]
    film = place(eng_jpn if kind == "sonarr" else eng_kor, tv if kind == "sonarr" else movies, remote, root)
    headers = basic() if auth == "basic" else {"X-Api-Key": KEY}

    status, body = send(port, kind, data, headers)
    assert (status, body["accepted"]) == (202, str(film))
    hook = daemon.wait_for("hook_download", path=str(film))[0]
    assert hook["original_language"] == language and hook["upgrade"] == data["isUpgrade"]
    assert hook["item_id"] == (data["series"] if kind == "sonarr" else data["movie"])["id"]
    done = daemon.wait_for("file_processed", path=str(film), timeout=40)[0]  # well inside the 60 s settle time
    assert done["policy"] == ("anime" if kind == "sonarr" else "films")
    assert default_audio(film) == [language]

    # The same call again (the *arr retries, or the watcher saw the import too): not queued again.
    assert send(port, kind, data, headers)[0] == 202
    daemon.wait_for("file_not_queued", path=str(film), outcome="unchanged")
    assert len(daemon.named("file_processed", path=str(film))) == 1
    assert len(daemon.named("file_queued", path=str(film))) == 1
    assert daemon.stop() == 0


def test_without_the_payloads_language_the_other_sources_judge(tmp_path, daemon_factory, libraries, eng_jpn):
    # Sonarr v3 sends no originalLanguage: "original" matches nothing here, English stays.
    tv, movies = libraries
    daemon = daemon_factory(sections(tv, movies))
    port = daemon.wait_for("http_listening")[0]["port"]
    data = payload("sonarr-v3-download.json")
    film = place(eng_jpn, tv, data["episodeFile"]["path"], "/tv")
    assert send(port, "sonarr", data, {"X-Api-Key": KEY})[0] == 202
    assert daemon.wait_for("hook_download", path=str(film))[0]["original_language"] is None
    daemon.wait_for("file_processed", path=str(film), timeout=40)
    assert default_audio(film) == ["eng"]
    assert daemon.stop() == 0


def test_radarr_v3_without_the_files_path_is_read_from_folder_and_relative_path(
    tmp_path, daemon_factory, libraries, eng_kor,
):
    tv, movies = libraries
    daemon = daemon_factory(sections(tv, movies))
    port = daemon.wait_for("http_listening")[0]["port"]
    data = payload("radarr-v3-download.json")
    remote = data["movie"]["folderPath"] + "/" + data["movieFile"]["relativePath"]
    film = place(eng_kor, movies, remote, "/movies")
    status, body = send(port, "radarr", data, basic())
    assert (status, body["accepted"]) == (202, str(film))
    daemon.wait_for("file_processed", path=str(film), timeout=40)
    assert daemon.stop() == 0


@pytest.mark.parametrize("fixture, kind, event", [
    ("sonarr-test.json", "sonarr", "hook_test"),
    ("radarr-test.json", "radarr", "hook_test"),
    ("sonarr-series-add.json", "sonarr", "hook_ignored"),
])
def test_test_and_other_events_are_acknowledged(tmp_path, daemon_factory, libraries, fixture, kind, event):
    tv, movies = libraries
    daemon = daemon_factory(sections(tv, movies))
    port = daemon.wait_for("http_listening")[0]["port"]
    status, body = send(port, kind, payload(fixture), basic())
    assert status == 200 and body["ok"] is True
    daemon.wait_for(event, kind=kind)
    assert health(port)[0] == 200
    assert daemon.stop() == 0


def test_a_file_still_open_for_writing_is_not_queued_until_closed(
    tmp_path, daemon_factory, libraries, eng_jpn, media_cache,
):
    tv, movies = libraries
    daemon = daemon_factory(sections(tv, movies))
    port = daemon.wait_for("http_listening")[0]["port"]
    held_data = payload("sonarr-v4-download.json")
    other = media_cache("hook-eng-jpn-fre.mkv", [video(), audio("eng", default=True), audio("jpn"), audio("fre")])
    held = place(other, tv, held_data["episodeFile"]["path"], "/tv")  # not the same content as the other file
    free_data = payload("sonarr-v3-download.json")
    free = place(eng_jpn, tv, free_data["episodeFile"]["path"], "/tv")
    with written_elsewhere(held):
        assert send(port, "sonarr", held_data, basic())[0] == 202  # accepted: the stabilizer decides when
        assert send(port, "sonarr", free_data, basic())[0] == 202
        daemon.wait_for("file_processed", path=str(free), timeout=40)
        # Handed to the stabilizer first, and still not queued: its writer holds it.
        assert not daemon.named("file_queued", path=str(held))
    assert send(port, "sonarr", held_data, basic())[0] == 202  # closed now: queued at once
    daemon.wait_for("file_processed", path=str(held), timeout=40)
    assert default_audio(held) == ["jpn"]
    assert daemon.stop() == 0


def test_new_credentials_apply_on_reload_and_are_never_shown(tmp_path, daemon_factory, libraries, env):
    tv, movies = libraries
    key_file = tmp_path / "hook.key"
    key_file.write_text("first-key\n")
    config = sections(tv, movies)
    del config["hooks"]["api_key"]
    config["hooks"]["api_key_file"] = str(key_file)
    daemon = daemon_factory(config)
    port = daemon.wait_for("http_listening")[0]["port"]
    test_event = payload("sonarr-test.json")
    assert send(port, "sonarr", test_event, {"X-Api-Key": "first-key"})[0] == 200

    key_file.write_text("second-key\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config_reloaded")
    assert send(port, "sonarr", test_event, {"X-Api-Key": "first-key"})[0] == 401
    assert send(port, "sonarr", test_event, {"X-Api-Key": "second-key"})[0] == 200
    shown = run_vpod(["config", "check", "--config", str(daemon.config)], env=env)
    assert shown.returncode == 0 and f"api_key_file = \"{key_file}\"" in shown.stdout
    assert PASSWORD not in shown.stdout and "(hidden)" in shown.stdout
    log = daemon.log_path.read_text()
    assert "first-key" not in log and "second-key" not in log and PASSWORD not in log
    assert daemon.stop() == 0


def test_sonarrs_import_complete_queues_every_file_of_the_pack(tmp_path, daemon_factory, libraries, eng_jpn):
    """Sonarr v4's "On Import Complete" trigger sends the whole season pack in one call
    (``WebhookImportCompletePayload``: a list ``episodeFiles``, event type ``Download``); a
    fresh-user test saw it refused with 400. Each file is judged alone: one outside the
    libraries is listed as refused, the others are processed."""
    tv, movies = libraries
    daemon = daemon_factory(sections(tv, movies))
    port = daemon.wait_for("http_listening")[0]["port"]
    data = payload("sonarr-v4-import-complete.json")
    films = [place(eng_jpn, tv, f["path"], "/tv") for f in data["episodeFiles"]]
    data["episodeFiles"].append({"id": 1, "path": "/elsewhere/not-a-library/x.mkv"})

    status, body = send(port, "sonarr", data, basic())
    assert status == 202 and body["accepted"] == [str(f) for f in films]
    assert [r["reason"] for r in body["refused"]] == ["outside_libraries"]
    for film in films:
        assert daemon.wait_for("hook_download", path=str(film))[0]["original_language"] == "jpn"
        daemon.wait_for("file_processed", path=str(film), timeout=40)
        assert default_audio(film) == ["jpn"]
    assert daemon.stop() == 0
