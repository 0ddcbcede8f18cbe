"""The original language from a (stand-in) Radarr, end to end (issue 13 item 2): the real
daemon and `vpod process` on a real Korean film, with the stand-in up, down, and back.

The film: Korean audio, an English dub (flagged default), an English commentary, English
SDH and full English subtitles. The policy puts "original" first: with Radarr's answer
(Korean) the Korean audio becomes the default; without it "original" matches nothing and
English wins, or the file waits for Radarr, as `when_unavailable` says.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from support.arr import ArrStandIn
from support.daemon import write_config
from support.media import T, audio, mkvmerge_tracks, subtitle, video

pytestmark = pytest.mark.integration

KEY = "0123456789abcdef0123456789abcdef"
KOREAN_FILM = [
    video(),
    audio("kor"),
    audio("eng", title="English", default=True),
    audio("eng", title="Commentary"),
    subtitle("eng", title="SDH"),
    subtitle("eng"),
]
POLICY = {"audio_languages": ["original", "eng"], "subtitle_languages": ["eng"], "default_subtitle": "preferred"}
FOLDER = "Parasite (2019)"


@pytest.fixture
def film(media_cache: Callable[[str, list[T]], Path]) -> Path:
    return media_cache("korean-film.mkv", KOREAN_FILM)


@pytest.fixture
def radarr():
    """A stand-in Radarr that knows the film, its folder under /movies (its Docker path)."""
    stand_in = ArrStandIn("radarr", [("Parasite", f"/movies/{FOLDER}", "Korean")], api_key=KEY).start()
    yield stand_in
    stand_in.stop()


def arr_section(stand_in: ArrStandIn, movies: Path, **keys: Any) -> dict[str, Any]:
    return {"radarr": {
        "kind": "radarr", "url": stand_in.url, "api_key": KEY, "timeout_seconds": 5.0,
        "path_mappings": {"/movies": str(movies)}, **keys,
    }}


def place(film: Path, movies: Path) -> Path:
    target = movies / FOLDER / "Parasite.mkv"
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(film, target))


def default_audio(path: Path) -> list[tuple[str, str | None]]:
    """(language, title) of every audio track flagged default."""
    return [(t["language"], t["title"]) for t in mkvmerge_tracks(path) if t["type"] == "audio" and t["default"]]


def vpod(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vpod", *args], env=env, capture_output=True, text=True, timeout=240)


def config_file(tmp_path: Path, arr: dict[str, Any] | None, policy: dict[str, Any] = POLICY) -> Path:
    sections: dict[str, Any] = {
        "database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"}, "policy": policy,
    }
    if arr:
        sections["arr"] = arr
    return write_config(tmp_path / "process.toml", sections)


def start_daemon(daemon_factory: Callable[..., Any], tmp_path: Path, stand_in: ArrStandIn, **arr_keys: Any) -> tuple[Any, Path]:
    """The real daemon watching ``tmp_path/lib``, whose ``movies`` folder is Radarr's /movies."""
    movies = tmp_path / "lib" / "movies"
    movies.mkdir(parents=True)
    daemon = daemon_factory({
        "watch": {"paths": [str(tmp_path / "lib")], "settle_seconds": 0.3}, "policy": POLICY,
        "arr": arr_section(stand_in, movies, **arr_keys),
    })
    return daemon, movies


def plan_json(path: Path, config: Path, env: dict[str, str]) -> dict[str, Any]:
    out = vpod(["plan", str(path), "--config", str(config), "--json"], env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_daemon_makes_the_korean_audio_default_as_radarr_says(tmp_path, env, daemon_factory, film, radarr):
    daemon, movies = start_daemon(daemon_factory, tmp_path, radarr)
    path = place(film, movies)
    daemon.wait_for("file_processed", path=str(path))
    assert default_audio(path) == [("kor", None)]
    tracks = mkvmerge_tracks(path)
    assert [t["original"] for t in tracks if t["type"] == "audio"] == [True, False, False]  # mark_original
    assert not any(t["default"] for t in tracks if t["title"] == "Commentary")
    logged = daemon.named("original_language", path=str(path))
    assert logged and logged[0]["description"] == "original language: kor (from radarr: Parasite)"
    assert daemon.named("arr_list_fetched", instance="radarr", items=1)
    assert KEY not in daemon.log_path.read_text()
    # A second pass plans nothing: vpod plan asks the same Radarr.
    plan = plan_json(path, daemon.config, env)
    assert plan["actions"] == [], plan
    assert plan["original_language"]["code"] == "kor" and plan["original_language"]["source"] == "radarr"


def test_vpod_process_and_plan_use_the_same_answer(tmp_path, env, film, radarr):
    movies = tmp_path / "movies"
    path = place(film, movies)
    config = config_file(tmp_path, arr_section(radarr, movies))
    text = vpod(["plan", str(path), "--config", str(config)], env)
    assert text.returncode == 0 and "original language: kor (from radarr: Parasite)" in text.stdout, text.stdout
    planned = plan_json(path, config, env)
    assert planned["original_language"] == {
        "code": "kor", "source": "radarr", "detail": "Parasite",
        "description": "original language: kor (from radarr: Parasite)", "waiting": [], "notes": [],
    }
    assert any(a.get("why", "").startswith("audio_languages[0]=original→kor") for a in planned["actions"]), planned
    out = vpod(["process", str(path), "--config", str(config), "--json"], env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["success_count"] == 1
    assert default_audio(path) == [("kor", None)]
    again = json.loads(vpod(["process", str(path), "--config", str(config), "--json"], env).stdout)
    assert again["results"][0]["changes"] == 0 and plan_json(path, config, env)["actions"] == []


def test_without_any_source_original_matches_nothing_and_plan_says_so(tmp_path, env, film):
    path = place(film, tmp_path / "movies")
    config = config_file(tmp_path, None)
    text = vpod(["plan", str(path), "--config", str(config)], env)
    assert "original language unknown: no source answered" in text.stdout, text.stdout
    assert plan_json(path, config, env)["original_language"]["code"] is None
    out = vpod(["process", str(path), "--config", str(config), "--json"], env)
    assert out.returncode == 0, out.stderr
    assert default_audio(path) == [("eng", "English")]


def test_radarr_down_with_fallback_judges_by_the_next_sources(tmp_path, env, film, radarr):
    movies = tmp_path / "movies"
    path = place(film, movies)
    radarr.stop()
    config = config_file(tmp_path, arr_section(radarr, movies, when_unavailable="fallback"))
    planned = plan_json(path, config, env)
    assert planned["original_language"]["code"] is None and planned["error"] is None
    assert "radarr" in planned["original_language"]["notes"][0]
    out = vpod(["process", str(path), "--config", str(config), "--json"], env)
    assert out.returncode == 0, out.stderr
    assert default_audio(path) == [("eng", "English")]  # "original" matched nothing: English
    assert KEY not in out.stdout + out.stderr


def test_radarr_down_with_retry_vpod_process_reports_it_then_judges_with_korean(tmp_path, env, film, radarr):
    movies = tmp_path / "movies"
    path = place(film, movies)
    radarr.stop()
    config = config_file(tmp_path, arr_section(radarr, movies))
    before = sha(path)
    text = vpod(["plan", str(path), "--config", str(config)], env)
    assert "vpod run would wait and try it again later (original_language_unavailable)" in text.stdout, text.stdout
    out = vpod(["process", str(path), "--config", str(config), "--json"], env)
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)["results"][0]
    assert result["reason"] == "original_language_unavailable" and "Parasite.mkv" in result["error"]
    assert "run vpod process again once it answers" in result["error"] and "tried again later" not in result["error"]
    assert sha(path) == before  # nothing changed
    assert KEY not in out.stdout + out.stderr
    radarr.start()  # back, on the same port
    out = vpod(["process", str(path), "--config", str(config), "--json"], env)
    assert out.returncode == 0, out.stderr
    assert default_audio(path) == [("kor", None)]


def test_a_policy_without_original_in_a_list_neither_waits_nor_prints_an_unknown_original(tmp_path, env, film, radarr):
    movies = tmp_path / "movies"
    path = place(film, movies)
    radarr.stop()  # when_unavailable = "retry"; mark_original (default true) alone must not wait
    policy = {"audio_languages": ["eng"], "subtitle_languages": ["eng"]}
    down = config_file(tmp_path, arr_section(radarr, movies), policy)
    planned = plan_json(path, down, env)
    assert planned["error"] is None and planned["original_language"]["waiting"] == []
    assert "radarr" in planned["original_language"]["notes"][0]  # said, not waited for
    out = vpod(["process", str(path), "--config", str(down), "--json"], env)
    assert out.returncode == 0, out.stderr
    quiet = config_file(tmp_path, None, policy)  # no source at all: nothing to say
    text = vpod(["plan", str(path), "--config", str(quiet)], env)
    assert text.returncode == 0 and "original language" not in text.stdout, text.stdout
    assert plan_json(path, quiet, env)["original_language"] is None


def test_radarr_down_with_retry_the_daemon_waits_then_judges_with_korean(tmp_path, daemon_factory, film, radarr):
    radarr.stop()
    daemon, movies = start_daemon(daemon_factory, tmp_path, radarr)
    path = place(film, movies)
    retry = daemon.wait_for("file_retry", path=str(path), reason="original_language_unavailable")[0]
    assert retry["retry_in_seconds"] == 5.0 and "radarr" in retry["error"]
    assert daemon.named("arr_unavailable", instance="radarr")
    assert default_audio(path) == [("eng", "English")]  # untouched while it waits
    radarr.start()
    daemon.wait_for("file_processed", path=str(path), timeout=90)
    assert default_audio(path) == [("kor", None)]
    assert KEY not in daemon.log_path.read_text()


def test_radarr_down_with_fallback_the_daemon_judges_by_english(tmp_path, daemon_factory, film, radarr):
    radarr.stop()
    daemon, movies = start_daemon(daemon_factory, tmp_path, radarr, when_unavailable="fallback")
    path = place(film, movies)
    daemon.wait_for("file_processed", path=str(path))
    assert default_audio(path) == [("eng", "English")]
    assert not daemon.named("file_retry")
