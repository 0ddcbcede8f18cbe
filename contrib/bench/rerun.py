"""Re-run: ``vpod process`` again over a library it already handled, nothing touched since.

The tree (a library: ``[watch] paths``): ``files`` unique copies of the tiny MKV after
vpod made it conform, in ``folders`` folders. A real first ``vpod process`` run handles
the tree while it holds only the first folder (its files are probed by the tools); the
other folders are added after it and recorded as that run records a file it finds
conforming (``done``, under the policy digest the real run recorded, with
the content fingerprint and the stat of the file on disk), through the Store API, so
the set-up does not take one tool run per file. Then each run is ``vpod process -R
TREE`` (the summary on stdout, as a nightly job runs it) from spawning it to its exit
(start-up included), with every media tool on ``PATH`` replaced by a wrapper that counts
its invocations before it execs the real one; then the same with ``--json`` (every
file's result, as one JSON document). Each report must count every file, none failed;
the goal is zero tool runs. Python keeps compiled bytecode (in the work folder, whatever
``PYTHONDONTWRITEBYTECODE`` says): an installed vpod has its ``.pyc`` files, and
compiling every module again at each start would add about 0.15 s of CPU that no user
pays.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from common import BenchFailure, MediaSource, Row, vpod_command, vpod_env, write_config

TOOLS = ("ffprobe", "ffmpeg", "mkvmerge", "mkvpropedit", "mkvextract")


def counting_path(folder: Path, log: Path) -> str:
    """A ``PATH`` whose media tools append a line to ``log`` and exec the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOOLS:
        real = shutil.which(name)
        if real is None:
            continue
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexec "{real}" "$@"\n')
        wrapper.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


SUMMARY = re.compile(r"^(?P<total>\d+) file\(s\) in .*?: (?P<success>\d+) succeeded \((?P<changed>\d+) changed"
                     r"(?:, (?P<unchanged>\d+) unchanged[^)]*)?\), (?P<failed>\d+) failed")


def run_process(
    config: Path, tree: Path, env: dict[str, str], *extra: str, as_json: bool = True
) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds from spawn to exit, CPU seconds of the child, its report: the JSON
    document, or the counts read from the summary's first line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(
        vpod_command("process", "--config", str(config), "-R", *(["--json"] if as_json else []), *extra, str(tree)),
        env=env, capture_output=True, text=True,
    )
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise BenchFailure(f"rerun: vpod process exited {done.returncode}: {done.stderr[-2000:]}")
    if as_json:
        report: dict[str, Any] = json.loads(done.stdout)
        return wall, cpu, report
    found = SUMMARY.match(done.stdout)
    if found is None:
        raise BenchFailure(f"rerun: unexpected summary: {done.stdout[:500]}")
    counts = {k: int(v or 0) for k, v in found.groupdict().items()}
    return wall, cpu, {"total_files": counts["total"], "fail_count": counts["failed"],
                       "success_count": counts["success"], "unchanged_count": counts["unchanged"]}


def seed(db: Path, tree: Path, first: Path, files: list[Path]) -> None:
    """Record ``files`` as the real run recorded the files of ``first`` it left conforming."""
    from vpod.config import DatabaseConfig
    from vpod.db.factory import open_store
    from vpod.db.store import EnqueueEntry, Outcome
    from vpod.fingerprint import StatKey, fingerprint_path
    from vpod.results import FileProcessingResult

    store = open_store(DatabaseConfig(path=db))
    try:
        sample = store.file_record(next(first.iterdir()))
        if sample is None or sample.state != "done" or sample.policy_digest is None:
            raise BenchFailure(f"rerun: the real first run left no done row in {first}: {sample}")
        store.register_owner("process", node="bench", version="bench", workers=1)
        keys: dict[bytes, tuple[str, StatKey]] = {}
        entries = []
        for path in files:
            fingerprint, _ = fingerprint_path(path)
            relpath = os.fsencode(path.relative_to(tree))
            keys[relpath] = (fingerprint, StatKey.of(os.stat(path)))
            entries.append(EnqueueEntry(tree, relpath, fingerprint, keys[relpath][1]))
        store.enqueue_many(entries)
        while (job := store.claim("bench-w0", "bench")) is not None:
            fingerprint, key = keys[job.relpath]
            result = FileProcessingResult(path=job.path, success=True, changes=0, final_path=job.path)
            store.finish(job, Outcome(result, fingerprint, key, None, (), sample.policy_digest, sample.policy_name,
                                      sample.policy_why), "bench-seed")
        store.end_owner()
    finally:
        store.close()


def conforming_source(work: Path, media: MediaSource, env: dict[str, str]) -> MediaSource:
    """Unique copies of the template after vpod made it conform (``vpod process`` on one copy)."""
    folder = work / "template-conforming"
    folder.mkdir()
    made = media.copies(folder, 1)[0]
    config = write_config(work / "template.toml", {"database": {"path": str(work / "template.db")}})
    subprocess.run(vpod_command("process", "--config", str(config), str(made)), env=env, check=True,
                   capture_output=True)
    data = made.read_bytes()
    number = data.find(b"vpodbench-")
    if number < 0:
        raise BenchFailure(f"rerun: {made}: the title marker is gone after processing")
    template = folder / "conforming.mkv"
    template.write_bytes(data[:number] + b"vpodbench-0000000000" + data[number + 20 :])
    return MediaSource(template)


def rerun(work: Path, media: MediaSource, *, files: int, folders: int, runs: int) -> list[Row]:
    """Rows: the re-run's wall time (goal ≤ 2 s), its tool runs (goal 0), its CPU, files unchanged."""
    env = vpod_env(work / "home")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # not in the checkout
    (work / "home").mkdir()
    conforming = conforming_source(work, media, env)
    tree = work / "tree"
    per_folder = files // folders
    files = per_folder * folders
    config = write_config(work / "vpod.toml", {
        "watch": {"paths": [str(tree)]}, "database": {"path": str(work / "vpod.db")}, "logging": {"format": "json"},
    })
    conforming.copies(tree / "d000", per_folder)
    first_wall, _, first = run_process(config, tree, env)
    if first["success_count"] != per_folder or first.get("unchanged_count", 0):
        raise BenchFailure(f"rerun: the first run handled {first['success_count']} of {per_folder} files")
    made = [conforming.copies(tree / f"d{f:03d}", per_folder) for f in range(1, folders)]
    seed(work / "vpod.db", tree, tree / "d000", [p for paths in made for p in paths])
    log = work / "tools.log"
    env["PATH"] = counting_path(work / "bin", log)
    walls, cpus, tools, unchanged, json_walls, json_cpus = [], [], [], [], [], []
    for _ in range(runs):
        for as_json, wall_list, cpu_list in ((False, walls, cpus), (True, json_walls, json_cpus)):
            log.unlink(missing_ok=True)
            wall, cpu, report = run_process(config, tree, env, as_json=as_json)
            if report["total_files"] != files or report["fail_count"]:
                raise BenchFailure(
                    f"rerun: {report['total_files']} files, {report['fail_count']} failed (expected {files}, 0)"
                )
            wall_list.append(wall)
            cpu_list.append(cpu)
            tools.append(len(log.read_text().splitlines()) if log.exists() else 0)
            unchanged.append(report.get("unchanged_count", 0))
    note = f"{files:,} files in {folders} folders; first run of {per_folder} files took {first_wall:.1f} s"
    return [
        Row("rerun", f"vpod process over {files:,} unchanged files: spawn → exit", walls, "s", goal="≤ 2",
            check=lambda v: v <= 2, note=note),
        Row("rerun", "CPU of that re-run (user + system)", cpus, "s"),
        Row("rerun", "the same with --json (every file's result on stdout)", json_walls, "s"),
        Row("rerun", "CPU of the --json re-run", json_cpus, "s"),
        Row("rerun", "tool runs during the re-runs (counted by PATH wrappers)", tools, "runs", goal="0",
            check=lambda v: v == 0, digits=0),
        Row("rerun", "files reported unchanged", unchanged, "files", digits=0),
    ]
