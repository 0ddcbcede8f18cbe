"""`vpod plan` on a file vpod kept as `not_smaller` (issue 18, keep_if_larger): the plan
reads the configured database and says that its video transcode will not run again (by
how much the earlier encode missed, what makes vpod try again) and that nothing else
would be applied; without a database, with one it cannot read, or under a changed
policy it plans as before. The outcome is made by the real `vpod process`."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from support.daemon import run_vpod, write_config
from support.privileges import NOBODY, world_dir  # noqa: F401  (a fixture)
from support.transcode_media import tiny_hevc
from test_not_smaller import POLICY, process

pytestmark = pytest.mark.integration


def plan(path: Path, config: Path, env: dict[str, str], *extra: str) -> Any:
    done = run_vpod(["plan", str(path), "--config", str(config), *extra], env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in extra else done


def dump(database: Path) -> list[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return list(conn.iterdump())


@pytest.fixture
def kept(tmp_path: Path, env: dict[str, str]) -> Path:
    """A low-bitrate HEVC file that `vpod process` kept as not_smaller (its AC-3 track added)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    source = tiny_hevc(lib / "Small.mkv")
    [result] = process(tmp_path, env, str(lib))["results"]
    assert (result["reason"], result["skipped"]) == ("not_smaller", True), result
    return source


def test_plan_says_the_video_transcode_of_a_file_kept_as_not_smaller_will_not_run(
    kept: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    config = tmp_path / "process.toml"  # the config vpod process ran with
    before = dump(tmp_path / "vpod.db")

    data = plan(kept, config, env, "--json")
    assert data["cost"] == "transcode"  # the whole plan: still the video transcode
    assert [(a["action"], a.get("not_run")) for a in data["actions"]] == [("transcode_video", "not_smaller")]
    assert data["would_apply"] == [] and data["would_apply_cost"] == "none"  # the cost the file really has
    assert data["skip"]["reason"] == "not_smaller"
    found = data["not_smaller"]
    assert found["saved_percent"] < 0  # the H.264 encode at CRF 10 was larger
    assert "% larger" in found["detail"] and found["policy"] == "default"
    assert any("policy" in line for line in found["try_again"])
    assert data["error"] is None

    text = plan(kept, config, env).stdout
    assert "transcode video to H264" in text and "(not run: an earlier encode was not smaller)" in text
    assert "vpod run would not encode its video again (not_smaller)" in text
    assert f"made the video {-found['saved_percent']:.1f} % larger" in text
    assert "vpod tries again when the policy that judges it changes" in text
    assert "vpod run would apply nothing else (cost class none)" in text

    assert dump(tmp_path / "vpod.db") == before  # only read: no row written, nothing queued

    # Under another policy (a new digest) the record no longer holds: the transcode is planned.
    changed = write_config(tmp_path / "changed.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "policy": {**POLICY, "min_saving_percent": 50},
    })  # fmt: skip
    again = plan(kept, changed, env, "--json")
    assert again["not_smaller"] is None and again["skip"] is None
    assert [a["action"] for a in again["would_apply"]] == ["transcode_video"]
    assert again["would_apply_cost"] == "transcode"

    # New content at that path (another file copied over it): planned as any file.
    kept.write_bytes(tiny_hevc(tmp_path / "Other.mkv", seconds=2.0).read_bytes())
    assert plan(kept, config, env, "--json")["not_smaller"] is None


def test_plan_without_a_database_creates_none_and_plans_the_transcode(tmp_path: Path, env: dict[str, str]) -> None:
    source = tiny_hevc(tmp_path / "Small.mkv")
    database = tmp_path / "db" / "vpod.db"
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(database)}, "policy": POLICY})
    done = run_vpod(["plan", str(source), "--config", str(config), "--json"], env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    data = json.loads(done.stdout)
    assert data["not_smaller"] is None and data["skip"] is None
    assert "transcode_video" in [a["action"] for a in data["would_apply"]] and data["would_apply_cost"] == "transcode"
    assert not database.exists() and not database.parent.exists()


def test_plan_with_a_database_it_cannot_read_says_so_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    source = tiny_hevc(tmp_path / "Small.mkv")
    database = tmp_path / "vpod.db"
    database.write_bytes(b"not a database, " * 512)
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(database)}, "policy": POLICY})
    done = run_vpod(["plan", str(source), "--config", str(config), "--json"], env=env)
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("vpod: warning: cannot read the database") and str(database) in line, line
    assert line.endswith("planned without what it recorded"), line
    data = json.loads(done.stdout)
    assert data["not_smaller"] is None and data["cost"] == "transcode"
    assert database.read_bytes() == b"not a database, " * 512


def test_plan_finds_a_not_smaller_outcome_on_postgresql(tmp_path: Path, env: dict[str, str], postgres: Any) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    source = tiny_hevc(lib / "Small.mkv")
    database = postgres.database(tmp_path)
    sections = {
        "database": {"path": str(tmp_path / "unused.db"), "url": database.url, "password_file": database.password_file},
        "policy": POLICY,
    }
    config = write_config(tmp_path / "pg.toml", sections)
    done = run_vpod(["process", "--config", str(config), "--json", str(lib)], env=env, timeout=240)
    assert done.returncode in (0, 1), done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert result["reason"] == "not_smaller", result
    data = plan(source, config, env, "--json")
    assert data["not_smaller"] is not None and data["not_smaller"]["saved_percent"] < 0
    assert data["would_apply"] == [] and data["skip"]["reason"] == "not_smaller"
    assert not (tmp_path / "unused.db").exists()


def test_plan_as_root_reads_a_database_the_daemons_user_owns(
    tmp_path: Path, env: dict[str, str], world_dir: Path  # noqa: F811
) -> None:
    """Root reads it with that user's effective ids (SQLite's side files stay that user's)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the database of another user")
    lib = tmp_path / "lib"
    lib.mkdir()
    source = tiny_hevc(lib / "Small.mkv")
    folder = world_dir / "state"
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(folder / "vpod.db")}, "policy": POLICY})
    done = run_vpod(["process", "--config", str(config), "--json", str(lib)], env=env, timeout=240)
    assert json.loads(done.stdout)["results"][0]["reason"] == "not_smaller", done.stderr
    for path in (folder, *folder.iterdir()):
        os.chown(path, NOBODY, NOBODY)
    data = plan(source, config, env, "--json")
    assert data["not_smaller"] is not None and data["would_apply"] == []
    assert {p.name: p.stat().st_uid for p in (folder, *folder.iterdir())} == {
        p.name: NOBODY for p in (folder, *folder.iterdir())
    }
