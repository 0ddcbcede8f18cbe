"""Start-up: ``vpod --version`` and ``vpod process`` from spawn to exit.

Each command runs many times as a new process (``python -m vpod``, as in the other
sections), the commands taking turns so that load on a shared machine falls on all of
them alike: ``python -c pass`` (the interpreter alone: the floor), ``vpod --version``,
and ``vpod process`` on an empty folder (configuration, tool check, logging, the
folder walk; no file, so no database). Then ``vpod process`` on one file that needs a
header edit: its wall time less the batch's own time (``--json``
``total_duration_seconds``) is the start-up and exit around a real batch, with the
database opened and the pipeline loaded (the overhead section's row of the same name
takes it over 20 files); and the same command once more, which finds the file unchanged
and runs no tool: its CPU time is that start-up and exit alone, the steadier figure. CPU time is user + system of the child (``wait4``), less
sensitive to load than wall time. Python's bytecode of vpod is compiled first, as an
installed vpod has it (``PYTHONDONTWRITEBYTECODE`` would otherwise make every run
compile vpod's sources again). The modules each command imports come from one more
run under ``python -X importtime``; a module of the daemon-only stacks
(``vpod.cli.lazy.DAEMON_STACKS``: HTTP, metrics, watchdog, PostgreSQL) must not be
among them.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from vpod.cli.lazy import DAEMON_STACKS, daemon_stack_modules

from common import REPO, BenchFailure, MediaSource, Row, check_normalized, vpod_command, vpod_env, write_config

GOAL_SECONDS = 0.15
"""Issue 15 item 4: ``vpod process`` start-up and exit."""


def compile_vpod() -> None:
    """Write the bytecode of vpod's modules (``__pycache__``, ignored by git), as ``pip
    install`` does; a no-op when it is up to date."""
    compileall.compile_dir(str(REPO / "vpod"), quiet=1)


def run_timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds user + system, the finished process) of one command.

    Raises:
        BenchFailure: the command failed.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchFailure(f"{' '.join(argv[2:])}: exit {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, done


def imported_modules(args: list[str], env: dict[str, str], cwd: Path) -> list[tuple[str, int]]:
    """``(module, cumulative import microseconds)`` of every module ``python -X importtime
    -m vpod ARGS`` imports, in the order the interpreter reports them (a module after the
    ones it imports)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *vpod_command(*args)[1:]], env=env, cwd=cwd,
                          capture_output=True, text=True)
    found = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line[len("import time:"):].split("|")
            found.append((name.strip(), int(cumulative)))
    if not found:
        raise BenchFailure(f"python -X importtime -m vpod {' '.join(args)} reported no import: {done.stderr[-2000:]}")
    return found


def heaviest(modules: list[tuple[str, int]], top: int = 8) -> str:
    """The top-level imports (a module no other one imported) with the largest
    cumulative times, as ``name ms, …``: where start-up goes."""
    roots = [(name, us) for name, us in modules if "." not in name or name.startswith("vpod.cli")]
    roots.sort(key=lambda item: -item[1])
    return ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in roots[:top])


def startup(work: Path, media: MediaSource, *, runs: int, file_runs: int) -> list[Row]:
    """The start-up rows; see the module docstring."""
    compile_vpod()
    home = work / "home"
    home.mkdir()
    empty = work / "empty"
    empty.mkdir()
    config = write_config(work / "startup.toml", {"database": {"path": str(work / "startup.db")}})
    env = vpod_env(home)
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "version": vpod_command("--version"),
        "empty": vpod_command("process", str(empty), "--config", str(config)),
    }
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm the page cache and the bytecode once
        run_timed(argv, env, work)
    for _ in range(runs):
        for name, argv in commands.items():
            seconds, cpu_seconds, _ = run_timed(argv, env, work)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    around_batch: list[float] = []
    again_cpu: list[float] = []
    for run in range(file_runs):
        folder = work / f"one-{run}"
        files = media.copies(folder, 1)
        argv = vpod_command("process", str(folder), "--json", "--config", str(config))
        seconds, _, done = run_timed(argv, env, work)
        report = json.loads(done.stdout)
        if report["success_count"] != 1:
            raise BenchFailure(f"vpod process on one file: {report}")
        check_normalized(files, "vpod process")
        around_batch.append(seconds - report["total_duration_seconds"])
        # The same command again: the file is unchanged since vpod left it conforming, so
        # no tool runs and the CPU time is vpod's own start-up and exit with the database
        # opened and the pipeline imported (the wall row above varies with the machine's load).
        _, cpu_seconds, done = run_timed(argv, env, work)
        report = json.loads(done.stdout)
        if report["unchanged_count"] != 1:
            raise BenchFailure(f"vpod process again on one unchanged file: {report}")
        again_cpu.append(cpu_seconds)
    modules = {
        "version": imported_modules(["--version"], env, work),
        "empty": imported_modules(["process", str(empty), "--config", str(config)], env, work),
        "file": imported_modules(["process", str(media.copies(work / "one-imports", 1)[0]), "--config", str(config)],
                                 env, work),
    }
    for name, found in modules.items():
        print(f"   {name}: {len(found)} modules; heaviest imports: {heaviest(found)}", flush=True)

    def ms(values: list[float]) -> list[float]:
        return [1000 * v for v in values]

    goal_ms = 1000 * GOAL_SECONDS
    note = f"{runs} runs, median"
    rows = [
        Row("startup", "python -c pass (the interpreter alone)", ms(wall["python"]), "ms", note=note, digits=0),
        Row("startup", "vpod --version: wall time", ms(wall["version"]), "ms", note=note, digits=0),
        Row("startup", "vpod --version: CPU time (user + system)", ms(cpu["version"]), "ms", digits=0),
        Row("startup", "vpod process EMPTY_FOLDER: wall time", ms(wall["empty"]), "ms", goal=f"≤ {goal_ms:.0f}",
            check=lambda v: v <= goal_ms, note=note, digits=0),
        Row("startup", "vpod process EMPTY_FOLDER: CPU time (user + system)", ms(cpu["empty"]), "ms", digits=0),
        Row("startup", "vpod process ONE_FILE: start-up and exit (wall − batch time)", ms(around_batch), "ms",
            goal=f"≤ {goal_ms:.0f}", check=lambda v: v <= goal_ms,
            note=f"{file_runs} runs; database opened, pipeline loaded", digits=0),
        Row("startup", "vpod process ONE_FILE again, unchanged (no tool runs): CPU time (user + system)",
            ms(again_cpu), "ms", note=f"{file_runs} runs; the same imports and database work, no tool", digits=0),
    ]
    labels = {"version": "vpod --version", "empty": "vpod process EMPTY_FOLDER", "file": "vpod process ONE_FILE"}
    for name, found in modules.items():
        names = [module for module, _ in found]
        rows.append(Row("startup", f"{labels[name]}: modules imported", [len(names)], "modules", digits=0,
                        note="python -X importtime"))
        stacks = daemon_stack_modules(names)
        rows.append(Row("startup", f"{labels[name]}: modules of the daemon-only stacks imported", [len(stacks)],
                        "modules", goal="0", check=lambda v: v == 0, digits=0,
                        note=", ".join(stacks[:5]) or f"none of {', '.join(DAEMON_STACKS)}"))
    if os.environ.get("VPOD_BENCH_STARTUP_DEBUG"):
        print(json.dumps({k: [m for m, _ in v] for k, v in modules.items()}, indent=1))
    return rows
