"""Issue 12 item 5: one table maps the exceptions a command lets through to its exit
status (vpod.cli.exits.EXIT_CODES); every status is an ExitCode member and is in the
README's "Exit statuses" table. Each row is exercised through the real ``vpod`` command."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from vpod.cli.exits import EXIT_CODES
from vpod.errors import ConfigError, MediaError, ToolMissing, UsageProblem
from vpod.exitcodes import ExitCode
from vpod.http_listener import ListenError
from vpod.instance import AlreadyRunning
from vpod.db.store import StoreError
from vpod.requirements import ToolsMissing

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

NOT_RUN_HERE = {
    AlreadyRunning: "tests/integration/test_daemon_run.py::test_second_daemon_on_the_same_database_is_refused",
    ToolMissing: "the commands check every tool first (ToolsMissing); one vanishing during a probe is this row",
}


def _readme_statuses() -> set[int]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Exit statuses\n", 1)[1].split("\n## ", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}


def test_every_exit_code_is_documented_and_the_table_has_no_shadowed_row():
    assert _readme_statuses() == {int(code) for code in ExitCode}
    kinds = [kind for kind, _, _ in EXIT_CODES]
    for at, kind in enumerate(kinds):
        shadowing = [earlier for earlier in kinds[:at] if issubclass(kind, earlier)]
        assert not shadowing, f"{kind.__name__} is caught by the earlier row {shadowing[0].__name__}"


def _config(tmp_path: Path, **sections) -> Path:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    base = {"watch": {"paths": [str(tmp_path / "inbox")]}, "database": {"path": str(tmp_path / "vpod.db")}}
    return write_config(tmp_path / "config.toml", {**base, **sections})


def _config_error(tmp_path: Path, env: dict[str, str]):
    bad = tmp_path / "bad.toml"
    bad.write_text('[processing]\nworkers = "many"\n')
    return run_vpod(["status", "--config", str(bad)], env=env), "vpod: config error: "


def _usage_problem(tmp_path: Path, env: dict[str, str]):
    return run_vpod(["config", "check"], env={**env, "VPOD_CPU_COUNT": "lots"}), "vpod: VPOD_CPU_COUNT"


def _tools_missing(tmp_path: Path, env: dict[str, str]):
    (tmp_path / "empty-bin").mkdir()
    film = tmp_path / "film.mkv"
    film.write_bytes(b"\x1a\x45\xdf\xa3")
    out = run_vpod(["inspect", str(film)], env={**env, "PATH": str(tmp_path / "empty-bin")})
    return out, "vpod: required tool(s) not found on PATH: mkvmerge, ffprobe"


def _database_error(tmp_path: Path, env: dict[str, str]):
    config = _config(tmp_path)
    return run_vpod(["retry", "--all-failed", "--config", str(config)], env=env), "vpod: no database at"


def _listen_error(tmp_path: Path, env: dict[str, str]):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = _config(tmp_path, http={"listen": f"127.0.0.1:{taken.getsockname()[1]}"})
        return run_vpod(["run", "--config", str(config)], env=env, timeout=60), "vpod: "


def _media_error(tmp_path: Path, env: dict[str, str]):
    text = tmp_path / "notes.mkv"
    text.write_text("not a video\n")
    return run_vpod(["inspect", str(text)], env=env), f"vpod: {text}"


CASES = {
    ConfigError: _config_error,
    UsageProblem: _usage_problem,
    ToolsMissing: _tools_missing,
    StoreError: _database_error,
    ListenError: _listen_error,
    MediaError: _media_error,
}


def test_every_row_of_the_table_is_exercised():
    assert set(CASES) | set(NOT_RUN_HERE) == {kind for kind, _, _ in EXIT_CODES}


@pytest.mark.parametrize("kind", list(CASES), ids=lambda kind: kind.__name__)
def test_a_command_exits_with_the_status_of_its_error(kind, tmp_path, env):
    status = next(code for k, code, _ in EXIT_CODES if k is kind)
    out, message = CASES[kind](tmp_path, env)
    assert out.returncode == status, out.stderr
    assert out.stderr.startswith(message) or f"\n{message}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
