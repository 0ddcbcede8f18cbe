"""Issue 15 item 4: ``vpod --version`` and ``vpod process`` start without the stacks only
``vpod run`` needs (HTTP listener, metrics, folder watcher, daemon) and without
PostgreSQL's driver on a SQLite database.

Each test runs the real command under ``python -X importtime`` (Python docs,
"Command line and environment", ``-X importtime``: every import is reported on
stderr, also those made while the command runs) and checks the module names, so a
new top-level import cannot silently bring a stack back. No time is measured here:
contrib/bench/startup.py reports the times.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.daemon import write_config
from support.media import default_audio_languages
from vpod.cli import COMMANDS, cli
from vpod.cli.deferred import DEFERRED
from vpod.cli.lazy import DAEMON_STACKS, daemon_stack_modules

pytestmark = pytest.mark.integration


def imported(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``python -X importtime -m vpod ARGS``; (the process, every module it imported)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "vpod", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    modules = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:") and "cumulative" not in line]
    assert modules, done.stderr  # -X importtime reported: the check below is not vacuous
    return done, modules


def sqlite_config(tmp_path: Path) -> Path:
    # An [http] listener configured, as a daemon's config shares it: checking the address
    # must not load the HTTP stack.
    return write_config(tmp_path / "config.toml", {
        "database": {"path": str(tmp_path / "vpod.db")}, "http": {"listen": "127.0.0.1:0"},
    })


def test_version_imports_no_command_and_no_daemon_stack(env):
    done, modules = imported(["--version"], env)
    assert done.returncode == 0 and "vpod, version" in done.stdout, done.stderr
    assert daemon_stack_modules(modules) == []
    # --version needs no command: neither the config, nor the logging, nor any command module.
    assert not [m for m in modules if m in ("vpod.config", "structlog", "logging") or m.startswith("vpod.cli.") and
                m.endswith("_cmd")], modules


def test_process_on_an_empty_folder_imports_no_daemon_stack(env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done, modules = imported(["process", str(empty), "--config", str(sqlite_config(tmp_path))], env)
    assert done.returncode == 0 and "nothing to do" in done.stdout, done.stderr
    assert daemon_stack_modules(modules) == [], f"vpod process imported {daemon_stack_modules(modules)}"
    assert "structlog" in modules and not set(DEFERRED) & set(modules)  # vpod.cli.deferred
    # No file: nothing of the database (vpod.process imports it in run_process, split_unchanged).
    assert "vpod.process" in modules and not [m for m in modules if m == "sqlite3" or m.startswith("vpod.db")]


def test_process_of_a_file_imports_no_daemon_stack_and_no_postgres_driver(env, tmp_path, jpn_eng_mkv: Path):
    folder = tmp_path / "films"
    folder.mkdir()
    film = Path(shutil.copy(jpn_eng_mkv, folder / "film.mkv"))
    done, modules = imported(["process", str(folder), "--config", str(sqlite_config(tmp_path))], env)
    assert done.returncode == 0, done.stderr
    assert default_audio_languages(film) == ["eng"]  # the whole pipeline ran
    assert "vpod.pipeline" in modules and "sqlite3" in modules
    assert daemon_stack_modules(modules) == [], f"vpod process imported {daemon_stack_modules(modules)}"
    assert {"psycopg", "psycopg_pool"} <= set(DAEMON_STACKS)
    # No [arr] instance configured: the arr client and its HTTP stack stay out too.
    assert not {"http.client", "vpod.original.client"} & set(modules)
    # structlog without asyncio (vpod.cli.deferred), nor what only asyncio brought.
    assert "structlog" in modules and not {*DEFERRED, "ssl"} & set(modules)
    # The language table is read from its file (vpod.policy.languages._table_text).
    assert "vpod.policy.languages" in modules and "importlib.resources" not in modules
    # The host name comes from uname(2) (vpod.hostname), not through the socket module.
    assert "vpod.hostname" in modules and not {"socket", "_socket"} & set(modules)


# Value classes on vpod process's path written as NamedTuples (or plain classes), not dataclasses: a frozen
# dataclass costs about 0.7 ms to build at every start (six generated methods, each
# compiled from source), a NamedTuple about 0.13 (contrib/bench/findings.md, round 3).
CHEAP_RECORDS = {
    "vpod.db.records": ["InProgress", "Library", "NodeRecord", "LibraryChange", "BatchRecord", "FailureRecord",
                        "SpaceWait", "QueueReport", "FileRecord", "Conforming"],
    "vpod.media.ebml": ["Element", "MatroskaLayout"],
    "vpod.media.matroska": ["TrackEntry", "MatroskaHeaders"],
    "vpod.writability": ["Mount", "WriteRefusal"],
    "vpod.media.flags": ["TrackFlag"],
    "vpod.policy.roles": ["Roles"],
    "vpod.cpu": ["WorkerCount"],
    "vpod.original.resolver": ["Resolution"],
    "vpod.watch.roots": ["Overlap"],
    "vpod.media.limits": ["ToolLimits"],
    "vpod.media.tools": ["ToolResult"],
    "vpod.events": ["Event", "FilesQueued", "FileStarted", "FileFinished", "BatchClosed", "ProcessingPaused",
                    "ProcessingResumed", "WatchRootLost", "WatchRootRestored"],
    "vpod.watch.ownership": ["Marker"],
    "vpod.policy.languages": ["_Table"],
    "vpod.policy.planner": ["LanguageList"],
    "vpod.media.attributes": ["SourceAttributes"],
    "vpod.pipeline": ["PipelineOutput", "PipelineOptions"],
    "vpod.policy.original": ["OriginalLanguage"],
    "vpod.policy.folder_file": ["FolderFile"],
    "vpod.policy.selection": ["Selection"],
    # Plain slotted classes (mutable state nothing compares).
    "vpod.batch": ["_Window"],
    "vpod.tempfiles": ["SweepResult"],
    "vpod.safety": ["LockedFile"],
    "vpod.diskspace": ["Claim"],
    "vpod.process": ["ProcessReport"],
    "vpod.results": ["FileProcessingResult", "BatchResult"],
    "vpod.targets": ["Target", "Targets"],
    "vpod.leases": ["Claim"],
    "vpod.watch.filters": ["PathFilter"],
    "vpod.policy.plan": ["SetFlag", "SetLanguage", "SetTitle", "RemoveTrack", "Reorder", "ChangeContainer", "Plan"],
}


def test_process_of_a_file_builds_its_records_without_dataclasses(env, tmp_path, jpn_eng_mkv: Path):
    # In the real command, after a real run: every module above was imported, and none of
    # those classes went through dataclasses (a regression would only show as time).
    folder = tmp_path / "films"
    folder.mkdir()
    shutil.copy(jpn_eng_mkv, folder / "film.mkv")
    script = (
        "import dataclasses, gc, importlib, json, sys\n"
        "from vpod.cli import main\n"
        f"sys.argv = ['vpod', 'process', {str(folder)!r}, '--config', {str(sqlite_config(tmp_path))!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"wanted = {CHEAP_RECORDS!r}\n"
        "missing = [m for m in wanted if m not in sys.modules]\n"
        "built = [f'{m}.{c}' for m, names in wanted.items() for c in names\n"
        "         if dataclasses.is_dataclass(getattr(importlib.import_module(m), c))]\n"
        "print(json.dumps({'code': code, 'missing': missing, 'built': built, 'gc_on': gc.isenabled()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] in (0, None), done.stderr
    assert found["missing"] == [], "no longer on vpod process's path: drop them from CHEAP_RECORDS"
    assert found["built"] == [], f"built as dataclasses again: {found['built']}"
    # Imports ran with the collector off (vpod.import_gc); it is on again afterwards.
    assert found["gc_on"] is True


def test_structlog_async_methods_still_work_without_asyncio_imported_at_start(env):
    # vpod.cli.deferred.import_structlog: structlog's asyncio is a stand-in that imports
    # the real module when used; an async log call still logs, and asyncio is the real one.
    script = (
        "import sys\n"
        "from vpod.cli.deferred import import_structlog\n"
        "import_structlog()\n"
        "import structlog\n"
        "assert 'structlog' in sys.modules and 'asyncio' not in sys.modules, sorted(sys.modules)\n"
        "import logging\n"
        "assert getattr(logging, 'logAsyncioTasks', True) is True  # Python 3.12+: switched back on\n"
        "structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(10),\n"
        "                    logger_factory=structlog.PrintLoggerFactory(sys.stdout), processors=[\n"
        "                    structlog.processors.JSONRenderer()])\n"
        "import asyncio\n"
        "assert type(asyncio).__name__ == 'module' and asyncio.run.__module__ == 'asyncio.runners'\n"
        "asyncio.run(structlog.get_logger().ainfo('native_async', n=1))\n"
        "async def stdlib_logger():\n"
        "    await structlog.stdlib.BoundLogger(structlog.PrintLogger(sys.stdout), [structlog.processors.JSONRenderer()],\n"
        "                                      {}).ainfo('stdlib_async')\n"
        "asyncio.run(stdlib_logger())\n"
        "assert structlog.stdlib.asyncio.get_running_loop is asyncio.get_running_loop\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"event": "native_async"' in done.stdout and '"event": "stdlib_async"' in done.stdout, done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_listed_and_loads(name: str):
    # The commands are imported when used (vpod.cli.lazy.LazyGroup): each is still listed and runs.
    runner = CliRunner()
    listing = runner.invoke(cli, ["--help"], prog_name="vpod")
    assert listing.exit_code == 0 and f"\n  {name} " in listing.output, listing.output
    own = runner.invoke(cli, [name, "--help"], prog_name="vpod")
    assert own.exit_code == 0 and f"Usage: vpod {name}" in own.output, own.output
