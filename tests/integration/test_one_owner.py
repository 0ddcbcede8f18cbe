"""One file, one owner (issue 11, item 7): watch roots that overlap are refused at config
load, and a second vpod (another database) does not fight over a library."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from support.daemon import run_vpod, write_config
from support.http import health
from support.media import default_audio_languages

pytestmark = pytest.mark.integration


@pytest.fixture
def bind_mount(tmp_path):
    """``mount --bind`` a folder elsewhere; skips where mounting is not allowed."""
    made = []

    def mount(source, target):
        target.mkdir(parents=True)
        out = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot bind-mount here (needs root and mount rights): {out.stderr.strip()}")
        made.append(target)
        return target

    yield mount
    for target in reversed(made):
        subprocess.run(["umount", str(target)], check=False)


def start_daemon(config, env):
    return subprocess.run(
        [sys.executable, "-m", "vpod", "run", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_a_folder_and_its_subfolder_are_refused(tmp_path, env):
    library = tmp_path / "library"
    (library / "incoming").mkdir(parents=True)
    config = write_config(
        tmp_path / "c.toml",
        {"watch": {"paths": [str(library), str(library / "incoming")]}, "database": {"path": str(tmp_path / "v.db")}},
    )
    checked = run_vpod(["config", "check", "--config", str(config)], env=env)
    assert checked.returncode == 2, checked.stdout
    assert f"{library / 'incoming'} is inside {library}" in checked.stderr and "[watch] paths" in checked.stderr
    run = start_daemon(config, env)
    assert run.returncode == 2 and f"{library / 'incoming'} is inside {library}" in run.stderr
    assert not (tmp_path / "v.db").exists()  # refused before anything started


def test_the_same_folder_through_a_bind_mount_is_refused(tmp_path, env, bind_mount):
    library = tmp_path / "library"
    library.mkdir()
    other_view = bind_mount(library, tmp_path / "mnt" / "library")
    config = write_config(
        tmp_path / "c.toml",
        {"watch": {"paths": [str(library), str(other_view)]}, "database": {"path": str(tmp_path / "v.db")}},
    )
    run = start_daemon(config, env)
    assert run.returncode == 2, run.stderr
    assert f"{other_view} is the same folder as {library}" in run.stderr


def sections(inbox, db, audio, **extra):
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": 0.3},
        "database": {"path": str(db)},
        "policy": {"audio_languages": [audio]},
        **extra,
    }


def test_a_second_vpod_with_another_database_leaves_the_library_alone(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    eng = daemon_factory(sections(inbox, tmp_path / "eng.db", "eng"), name="eng")
    jpn = daemon_factory(sections(inbox, tmp_path / "jpn.db", "jpn", http={"listen": "127.0.0.1:0"}), name="jpn")
    # Two files, one after the other: were the second daemon watching, it would have
    # taken the first up (and flipped its default audio back) by the time the first
    # daemon is done with the second.
    first = shutil.copyfile(jpn_eng_mkv, inbox / "first.mkv")
    eng.wait_for("file_processed", path=str(first), success=True)
    second = shutil.copyfile(jpn_eng_mkv, inbox / "second.mkv")
    eng.wait_for("file_processed", path=str(second), success=True)
    assert default_audio_languages(first) == ["eng"] and default_audio_languages(second) == ["eng"]
    assert not [e for e in jpn.events() if e.get("path") in (str(first), str(second))]
    assert len(eng.named("file_processed", path=str(first))) == 1  # no back and forth
    refused = jpn.named("library_claimed_elsewhere", root=str(inbox))
    assert len(refused) == 1 and str(tmp_path / "eng.db") in refused[0]["holder"]
    assert not jpn.named("watch_started", root=str(inbox))

    # Where the refusal shows: /health, vpod status, vpod doctor.
    code, body = health(jpn.wait_for("http_listening")[0]["port"])
    assert code == 200 and [h["root"] for h in body["claimed_elsewhere"]] == [str(inbox)]
    assert str(inbox) in body["unwatched_paths"]
    status = json.loads(run_vpod(["status", "--config", str(jpn.config), "--json"], env=env).stdout)
    assert [(h["root"], h["database"]) for h in status["claimed_elsewhere"]] == [(str(inbox), str(tmp_path / "eng.db"))]
    doctor = json.loads(run_vpod(["doctor", "--config", str(jpn.config), "--json"], env=env).stdout)
    library = next(f for f in doctor if f["check"] == f"library {inbox}")
    assert library["level"] == "fail" and str(tmp_path / "eng.db") in library["detail"]

    # vpod process: on the owner's database it works; on the other's, the file is skipped.
    mine = run_vpod(["process", "--config", str(eng.config), str(first), "--json"], env=env)
    assert mine.returncode == 0 and json.loads(mine.stdout)["results"][0]["skipped"] is False, mine.stderr
    theirs = run_vpod(["process", "--config", str(jpn.config), str(first), "--json"], env=env)
    result = json.loads(theirs.stdout)["results"][0]
    assert theirs.returncode == 0 and (result["skipped"], result["reason"]) == (True, "claimed_elsewhere"), theirs.stdout
    assert default_audio_languages(first) == ["eng"]

    # The owner stops: the other takes the library over, walks it and applies its policy.
    assert eng.stop() == 0
    jpn.wait_for("library_claimed", root=str(inbox), timeout=30)
    jpn.wait_for("watch_started", root=str(inbox))
    for path in (first, second):
        jpn.wait_for("file_processed", path=str(path), success=True)
        assert default_audio_languages(path) == ["jpn"]
    assert json.loads((inbox / ".vpod-library").read_text())["database"] == str(tmp_path / "jpn.db")
    assert jpn.stop() == 0
