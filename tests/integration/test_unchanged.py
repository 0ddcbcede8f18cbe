"""Unchanged means untouched (issue 15, item 2): `vpod process` run again runs no tool for
files vpod left conforming and nobody touched since, and a file rewritten in place with
other bytes of the same size and its mtime set back (`touch -r`) is still processed again,
by `vpod process` and by the daemon's restart scan: ctime gives it away."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.daemon import write_config
from support.media import default_audio_languages
from support.tools import logging_tool, path_with

pytestmark = pytest.mark.integration

TOOLS = ("ffprobe", "ffmpeg", "mkvmerge", "mkvpropedit", "mkvextract")
SETTLE = 0.3


def counting_tools(folder: Path, log: Path) -> str:
    """A PATH on which every media tool vpod may run appends its command line to ``log``."""
    for name in TOOLS:
        if shutil.which(name):
            logging_tool(folder, name, log)
    return path_with(folder)


def tool_runs(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def process(tmp_path: Path, env: dict[str, str], *args: str, path: str | None = None) -> dict[str, Any]:
    config = write_config(tmp_path / "process.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"},
    })
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", *args],
        env={**env, **({"PATH": path} if path else {})}, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def undone_same_size(processed: Path, tmp_path: Path) -> bytes:
    """Other bytes of ``processed``'s size that do not conform: a copy with its audio
    default flags flipped back by ``mkvpropedit`` (a value changed, no element added)."""
    copy = tmp_path / "undone.mkv"
    shutil.copyfile(processed, copy)
    subprocess.run(
        ["mkvpropedit", str(copy), "--edit", "track:a1", "--set", "flag-default=0",
         "--edit", "track:a2", "--set", "flag-default=1"], check=True, capture_output=True,
    )
    assert default_audio_languages(copy) == ["jpn"]
    return copy.read_bytes()


def rewrite_in_place_and_set_mtime_back(target: Path, content: bytes, tmp_path: Path) -> None:
    """Write ``content`` (the same size) over ``target``'s bytes, same inode, then set its
    mtime back with ``touch -r``: only ctime still says it changed."""
    before = target.stat()
    assert len(content) == before.st_size, "the test needs other bytes of the same size"
    assert content != target.read_bytes()
    reference = tmp_path / "reference"
    reference.touch()
    os.utime(reference, ns=(before.st_atime_ns, before.st_mtime_ns))
    with open(target, "r+b") as handle:
        handle.write(content)
    subprocess.run(["touch", "-r", str(reference), str(target)], check=True)
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino, after.st_dev) == (
        before.st_size, before.st_mtime_ns, before.st_ino, before.st_dev
    )
    assert after.st_ctime_ns != before.st_ctime_ns


def test_process_again_runs_no_tool_for_untouched_files_and_catches_touch_r(tmp_path, env, jpn_eng_mkv):
    lib = tmp_path / "lib"
    lib.mkdir()
    files = [Path(shutil.copyfile(jpn_eng_mkv, lib / f"{i}.mkv")) for i in range(3)]
    first = process(tmp_path, env, str(lib))
    assert [r["changes"] for r in first["results"]] == [2, 2, 2]
    undone = undone_same_size(files[0], tmp_path)

    log = tmp_path / "tools.log"
    path = counting_tools(tmp_path / "bin", log)
    again = process(tmp_path, env, str(lib), path=path)
    assert tool_runs(log) == []
    assert (again["total_files"], again["unchanged_count"], again["success_count"], again["not_started"]) == (3, 3, 3, 0)
    assert all(r["unchanged"] and r["success"] and r["changes"] == 0 for r in again["results"])

    rewrite_in_place_and_set_mtime_back(files[0], undone, tmp_path)
    third = process(tmp_path, env, str(lib), path=path)
    assert [(r["path"], r["changes"]) for r in third["results"] if not r["unchanged"]] == [(str(files[0]), 2)]
    assert third["unchanged_count"] == 2
    assert tool_runs(log) and all(str(files[0]) in line for line in tool_runs(log))  # only its tools ran
    assert default_audio_languages(files[0]) == ["eng"]

    log.unlink()
    forced = process(tmp_path, env, str(lib), "--force", path=path)
    assert forced["unchanged_count"] == 0
    assert sorted(r["path"] for r in forced["results"] if not r["unchanged"]) == sorted(map(str, files))
    assert {line.split()[-1] for line in tool_runs(log)} >= set(map(str, files))  # each file probed again


def test_process_again_under_another_policy_looks_again(tmp_path, env, jpn_eng_mkv):
    """Conforming under the policy that judged it is not conforming under another."""
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copyfile(jpn_eng_mkv, lib / "a.mkv")
    process(tmp_path, env, str(lib))
    config = write_config(tmp_path / "other.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"},
        "policy": {"audio_languages": ["jpn", "eng"]},
    })
    done = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), "--json", str(lib)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["unchanged_count"] == 0 and [r["changes"] > 0 for r in report["results"]] == [True]


def test_daemon_restart_scan_processes_a_file_rewritten_with_its_mtime_set_back(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}}
    target, untouched = inbox / "movie.mkv", inbox / "other.mkv"
    daemon = daemon_factory(config, name="first")
    shutil.copyfile(jpn_eng_mkv, target)
    shutil.copyfile(jpn_eng_mkv, untouched)
    daemon.wait_for("file_processed", path=str(target))
    daemon.wait_for("file_processed", path=str(untouched))
    assert daemon.stop() == 0

    rewrite_in_place_and_set_mtime_back(target, undone_same_size(target, tmp_path), tmp_path)
    again = daemon_factory(config, name="second")
    again.wait_for("file_processed", path=str(target))
    again.wait_for("scan_completed")
    assert default_audio_languages(target) == ["eng"]
    assert again.stop() == 0
    assert again.named("file_processed", path=str(untouched)) == []
    assert again.named("file_not_queued", path=str(untouched)) == []  # skipped by its stat, not read
