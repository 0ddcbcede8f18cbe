"""A library with three folders under three policies: a rule by path glob, a folder
file, the library's own policy (issue 13, item 1). The real daemon, `vpod process`,
`vpod plan` and `vpod status` all judge each file by its folder's policy and say why."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from support.daemon import run_vpod, write_config
from support.media import audio, copy_media, mkvmerge_tracks, video
from vpod.tomlschema import tomllib

pytestmark = pytest.mark.integration

TRACKS = [video(), audio("eng", default=True), audio("jpn"), audio("ger"), audio("fre")]
FOLDERS = {"Anime": ("anime", "jpn"), "Kids": ("kids", "ger"), "Drama": ("tv", "fre")}
RULE = '[libraries.shows] rules[0]: "Anime/**" matches "Anime/Show/e1.mkv"'


def sections(shows: Path, db: Path, rule_policy: str = "anime") -> dict[str, Any]:
    """Library "shows": Anime/** by a rule, Kids by its folder file, the rest by the library's policy."""
    keep_order = {"track_order": [], "default_subtitle": "none"}
    return {
        "watch": {"libraries": {"shows": str(shows)}, "settle_seconds": 0.3},
        "database": {"path": str(db)},
        "policy": {"audio_languages": ["eng"], **keep_order},
        "policies": {
            "anime": {"audio_languages": ["jpn"], **keep_order},
            "kids": {"audio_languages": ["ger"], **keep_order},
            "tv": {"audio_languages": ["fre"], **keep_order},
        },
        "libraries": {
            "shows": {"policy": "tv", "rules": [{"match": "Anime/**", "policy": rule_policy}], "folder_files": True},
        },
    }


def make_library(shows: Path, source: Path) -> dict[str, Path]:
    """One file per folder (Anime's one folder deeper), and Kids's folder file."""
    files = {
        "Anime": copy_media(source, shows / "Anime" / "Show" / "e1.mkv"),
        "Kids": copy_media(source, shows / "Kids" / "e1.mkv"),
        "Drama": copy_media(source, shows / "Drama" / "e1.mkv"),
    }
    (shows / "Kids" / ".vpod.toml").write_text('policy = "kids"  # this folder is for children\n')
    return files


def default_audio(path: Path) -> list[str]:
    return [t["language"] for t in mkvmerge_tracks(path) if t["type"] == "audio" and t["default"]]


def expected_why(folder: str, shows: Path) -> str:
    return {
        "Anime": RULE,
        "Kids": f'folder file {shows}/Kids/.vpod.toml: policy = "kids"',
        "Drama": '[libraries.shows] policy = "tv"',
    }[folder]


def test_plan_names_the_policy_and_the_rule(tmp_path, env, media_cache):
    shows = tmp_path / "shows"
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    config = write_config(tmp_path / "c.toml", sections(shows, tmp_path / "db"))
    for folder, (name, language) in FOLDERS.items():
        data = json.loads(run_vpod(["plan", str(files[folder]), "--config", str(config), "--json"], env=env).stdout)
        assert data["policy"] == {"name": name, "why": expected_why(folder, shows)}
        assert any(a["action"] == "set_flag" and a["value"] for a in data["actions"])
        human = run_vpod(["plan", str(files[folder]), "--config", str(config)], env=env).stdout
        assert f"policy: {name} ({expected_why(folder, shows)})" in human
    # Outside every library: the default policy, and plan says so.
    outside = copy_media(files["Drama"], tmp_path / "elsewhere" / "x.mkv")
    data = json.loads(run_vpod(["plan", str(outside), "--config", str(config), "--json"], env=env).stdout)
    assert data["policy"] == {"name": "default", "why": "outside every library: the default policy [policy]"}


def test_plan_and_inspect_judge_a_path_with_dotdot_or_a_symlink_as_process_does(tmp_path, env, media_cache):
    """A FILE named through ``..`` from another folder, or through a symlink outside the
    library: plan chooses the folder file's policy, as `vpod process` does, and prints the
    normalised path (T18C finding 3: it said "outside every library")."""
    shows = tmp_path / "shows"
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    config = write_config(tmp_path / "c.toml", sections(shows, tmp_path / "db"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = elsewhere / "link.mkv"
    link.symlink_to(files["Kids"])
    kids = {"name": "kids", "why": expected_why("Kids", shows)}
    for given in ("../shows/Kids/e1.mkv", "../shows/Drama/../Kids/./e1.mkv", "link.mkv"):
        data = json.loads(run_vpod(["plan", given, "--config", str(config), "--json"], env=env, cwd=elsewhere).stdout)
        assert (data["path"], data["policy"]) == (str(files["Kids"]), kids), given
        human = run_vpod(["plan", given, "--config", str(config)], env=env, cwd=elsewhere).stdout
        assert f"policy: kids ({kids['why']})" in human and "/../" not in human, human
        shown = json.loads(run_vpod(["inspect", given, "--config", str(config), "--json"], env=env, cwd=elsewhere).stdout)
        assert shown["path"] == str(files["Kids"]), given
    out = run_vpod(["process", "../shows/Kids/e1.mkv", "--config", str(config), "--json"], env=env, cwd=elsewhere)
    assert default_audio(files["Kids"]) == ["ger"], out.stdout + out.stderr


def test_plan_and_inspect_judge_a_file_under_a_symlinked_library_folder_as_process_does(tmp_path, env, media_cache):
    """A FILE named through a symlink to the library folder: plan and inspect name it
    through the library and choose its policy, as `vpod process` does (T18D finding
    N2: plan said "outside every library")."""
    shows = tmp_path / "shows"
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    config = write_config(tmp_path / "c.toml", sections(shows, tmp_path / "db"))
    (tmp_path / "showslink").symlink_to(shows)
    cases = {
        "showslink/Drama/e1.mkv": ("Drama", "tv"),
        "showslink/Kids/e1.mkv": ("Kids", "kids"),
    }
    for given, (folder, name) in cases.items():
        data = json.loads(run_vpod(["plan", given, "--config", str(config), "--json"], env=env, cwd=tmp_path).stdout)
        assert (data["path"], data["policy"]) == (str(files[folder]), {"name": name, "why": expected_why(folder, shows)}), given
        shown = json.loads(run_vpod(["inspect", given, "--config", str(config), "--json"], env=env, cwd=tmp_path).stdout)
        assert shown["path"] == str(files[folder]), given
    out = run_vpod(["process", "showslink/Drama/e1.mkv", "--config", str(config), "--json"], env=env, cwd=tmp_path)
    [result] = json.loads(out.stdout)["results"]
    assert (result["path"], result["policy"]) == (str(files["Drama"]), "tv"), out.stdout + out.stderr
    assert default_audio(files["Drama"]) == ["fre"]


def test_process_judges_each_folder_by_its_policy(tmp_path, env, media_cache):
    shows = tmp_path / "shows"
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    config = write_config(tmp_path / "c.toml", sections(shows, tmp_path / "db"))
    result = run_vpod(["process", str(shows), "-R", "--config", str(config), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    by_path = {r["path"]: r for r in json.loads(result.stdout)["results"]}
    for folder, (name, language) in FOLDERS.items():
        entry = by_path[str(files[folder])]
        assert entry["success"] and (entry["policy"], entry["policy_why"]) == (name, expected_why(folder, shows))
        assert default_audio(files[folder]) == [language], folder
    status = run_vpod(["status", str(files["Kids"]), "--config", str(config), "--json"], env=env)
    [record] = json.loads(status.stdout)["files"]
    assert (record["state"], record["policy"], record["policy_why"]) == ("done", "kids", expected_why("Kids", shows))


def test_daemon_judges_each_folder_by_its_policy_and_a_reload_moves_a_folder(tmp_path, daemon_factory, env, media_cache):
    shows = tmp_path / "shows"
    shows.mkdir()
    db = tmp_path / "vpod.db"
    daemon = daemon_factory(sections(shows, db))
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    # A fourth folder whose folder file is bad: that file fails, the daemon goes on.
    broken = copy_media(files["Drama"], shows / "Broken" / "e1.mkv")
    (shows / "Broken" / ".vpod.toml").write_text('audio_languages = ["klingon-ish"]\n')
    for folder, (name, language) in FOLDERS.items():
        event = daemon.wait_for("file_processed", path=str(files[folder]))[0]
        assert (event["policy"], event["policy_why"]) == (name, expected_why(folder, shows))
    failed = daemon.wait_for("file_failed", path=str(broken))[0]
    assert failed["reason"] == "bad_folder_policy"
    assert f"{shows}/Broken/.vpod.toml: audio_languages: 'klingon-ish'" in failed["error"]
    for folder, (name, language) in FOLDERS.items():
        assert default_audio(files[folder]) == [language], folder
    assert default_audio(broken) == ["eng"]  # untouched
    status = run_vpod(["status", str(files["Anime"]), "--config", str(daemon.config)], env=env).stdout
    assert f"policy: anime ({RULE})" in status

    # The rule now sends Anime to "kids": the reload says so, like any policy change,
    # and the next file there is judged by kids.
    write_config(daemon.config, {**sections(shows, db, rule_policy="kids"), "logging": {"format": "json", "level": "debug"}})
    daemon.signal(signal.SIGHUP)
    assert daemon.wait_for("config_reloaded")[0]["changed"] == ["[libraries.shows] rules"]
    second = copy_media(files["Drama"], shows / "Anime" / "Show" / "e2.mkv")  # fre is its default now
    event = daemon.wait_for("file_processed", path=str(second))[0]
    assert event["policy"] == "kids" and default_audio(second) == ["ger"]
    assert daemon.stop() == 0


def test_config_check_prints_the_policies_and_choices_as_toml(tmp_path, env):
    shows = tmp_path / "shows"
    shows.mkdir()
    config = write_config(tmp_path / "c.toml", sections(shows, tmp_path / "db"))
    result = run_vpod(["config", "check", "--config", str(config)], env=env)
    assert result.returncode == 0, result.stderr
    data = tomllib.loads(result.stdout)  # the whole output reads back as TOML
    assert data["policies"]["anime"]["audio_languages"] == ["jpn"]
    assert data["libraries"]["shows"] == {
        "policy": "tv", "rules": [{"match": "Anime/**", "policy": "anime"}], "folder_files": True,
    }


BACKWARDS = '[libraries.shows] rules[0] match'


@pytest.mark.parametrize("glob", ["Kids/[z-a]*", "[!a-Z]*/**", "[b-a-c]*/**", "[é-a]*/**"])
def test_a_backwards_range_in_a_rule_is_a_config_error_naming_the_key(tmp_path, env, media_cache, glob):
    """Issue 13 finding H: once a traceback and exit 1 from every command."""
    shows = tmp_path / "shows"
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    data = sections(shows, tmp_path / "db")
    data["libraries"]["shows"]["rules"] = [{"match": glob, "policy": "anime"}]
    config = write_config(tmp_path / "c.toml", data)
    for args in (["config", "check"], ["plan", str(files["Drama"])]):
        result = run_vpod([*args, "--config", str(config)], env=env)
        assert result.returncode == 2, result.stderr
        assert f"{config}: {BACKWARDS}: {glob!r}: the range " in result.stderr
        assert "is backwards" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"libraries": {"shows": {"rules": [{"match": "Kids/[z-a]*", "policy": "anime"}]}}}, BACKWARDS),
        # A value the loader does not foresee (a NUL in a path): whatever it raises, the
        # reload fails and the daemon goes on.
        ({"policies": {"anime": {"policy_file": "x\x00.toml"}}}, None),
    ],
)
def test_a_reload_with_a_bad_rule_keeps_the_old_config_and_the_daemon(tmp_path, daemon_factory, media_cache, bad, key):
    shows = tmp_path / "shows"
    shows.mkdir()
    db = tmp_path / "vpod.db"
    daemon = daemon_factory(sections(shows, db))
    write_config(daemon.config, {**sections(shows, db), **bad, "logging": {"format": "json", "level": "debug"}})
    daemon.signal(signal.SIGHUP)
    failed = daemon.wait_for("config_reload_failed")[0]
    assert failed["config"] == str(daemon.config) and failed["error"]
    if key is not None:
        assert failed["key"] == key and "backwards" in failed["error"]
    assert not daemon.named("config_reloaded") and not daemon.named("daemon_stopped")
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    event = daemon.wait_for("file_processed", path=str(files["Anime"]))[0]
    assert (event["policy"], event["policy_why"]) == ("anime", RULE)  # the old rules still rule
    assert default_audio(files["Anime"]) == ["jpn"]
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_plan_reads_a_folder_file_with_a_bom_and_names_one_it_ignores(tmp_path, env, media_cache):
    """Issue 13 findings I and J, through the real `vpod plan`."""
    shows = tmp_path / "shows"
    files = make_library(shows, media_cache("four-audio.mkv", TRACKS))
    (shows / "Kids" / ".vpod.toml").write_bytes('\ufeffpolicy = "kids"\n'.encode())
    config = write_config(tmp_path / "c.toml", sections(shows, tmp_path / "db"))
    data = json.loads(run_vpod(["plan", str(files["Kids"]), "--config", str(config), "--json"], env=env).stdout)
    assert data["policy"] == {"name": "kids", "why": expected_why("Kids", shows)}
    off = sections(shows, tmp_path / "db")
    off["libraries"]["shows"]["folder_files"] = False
    write_config(config, off)
    human = run_vpod(["plan", str(files["Kids"]), "--config", str(config)], env=env).stdout
    assert 'policy: tv ([libraries.shows] policy = "tv")' in human
    assert f"  note: {shows}/Kids/.vpod.toml is ignored: [libraries.shows] folder_files = false\n" in human
