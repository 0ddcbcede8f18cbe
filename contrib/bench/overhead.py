"""Overhead: vpod's per-file cost against the bare tool commands it runs.

For a header-only change to an MKV, vpod runs ``mkvmerge -J`` (probe), ``mkvpropedit``
(edit) and ``mkvmerge -J`` (verify). The floors are those commands, and the same with
``ffprobe`` as the reader, run as a plain shell loop over fresh copies of the same
files. vpod probes Matroska with ``mkvmerge -J`` because its floor is the lower one.
Each round runs every contestant once, back to back (the daemon right after the
mkvmerge floor it is judged against), so the ratios compare figures taken under the
same load.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from vpod.media.edit import mkvpropedit_args
from vpod.media.probe import probe
from vpod.media.tools import ToolRunner
from vpod.policy.planner import plan
from vpod.policy.policy import Policy

from common import (
    BenchFailure,
    Daemon,
    MediaSource,
    Row,
    check_normalized,
    parse_ts,
    timed,
    vpod_command,
    vpod_env,
    write_config,
)

FLOOR_SCRIPTS = {
    # $1: the mkvpropedit edit arguments as one string of words; then the files.
    "mkvmerge": 'edit=$1; shift; for f in "$@"; do mkvmerge -J "$f" >/dev/null; '
    'mkvpropedit "$f" $edit >/dev/null; mkvmerge -J "$f" >/dev/null; done',
    "ffprobe": 'edit=$1; shift; for f in "$@"; do ffprobe -v error -of json -show_format -show_streams "$f" >/dev/null; '
    'mkvpropedit "$f" $edit >/dev/null; ffprobe -v error -of json -show_format -show_streams "$f" >/dev/null; done',
}


def edit_arguments(template: Path) -> str:
    """The mkvpropedit arguments vpod itself would use on ``template`` (default policy).

    Taken from vpod's own planner and argument builder, so the floor makes exactly
    vpod's change. Words contain no spaces (``--edit track:@2 --set flag-default=1``).
    """
    media = probe(template, ToolRunner(60))
    args = mkvpropedit_args(media, plan(Policy(), media))[1:]  # without the file name
    if not args or any(" " in a for a in args):
        raise BenchFailure(f"unexpected mkvpropedit arguments for the template: {args}")
    return " ".join(args)


def run_floor(kind: str, edit: str, files: list[Path]) -> float:
    """Seconds for the shell loop of bare commands over ``files``."""
    seconds, _ = timed(lambda: subprocess.run(["bash", "-c", FLOOR_SCRIPTS[kind], "floor", edit, *map(str, files)],
                                              check=True))
    check_normalized(files, f"{kind} floor")
    return seconds


def run_process(
    work: Path, folder: Path, files: list[Path], workers: int = 1, cpu_count: int | None = None,
    config: Path | None = None, path_first: Path | None = None,
) -> tuple[float, dict]:
    """(wall seconds including start-up, the ``--json`` report) of ``vpod process FOLDER``,
    under ``config`` (default: ``work / "process.toml"``, the default policy), with
    ``path_first`` (a folder of tool wrappers) first on its ``PATH``.

    Raises:
        BenchFailure: a file was not processed, or the worker count is not ``workers``.
    """
    if config is None:
        config = work / "process.toml"
        if not config.exists():
            write_config(config, {"database": {"path": str(work / "process.db")}})
    (work / "home").mkdir(exist_ok=True)
    env = vpod_env(work / "home", cpu_count)
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    start = time.monotonic()
    done = subprocess.run(
        vpod_command("process", str(folder), "--workers", str(workers), "--json", "--config", str(config)),
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - start
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise BenchFailure(f"vpod process printed no JSON (exit {done.returncode}): {done.stderr[-2000:]}") from None
    if done.returncode != 0 or report["success_count"] != len(files) or report["workers"] != workers:
        raise BenchFailure(
            f"vpod process: exit {done.returncode}, {report['success_count']}/{len(files)} succeeded, "
            f"{report['workers']} workers (asked {workers}): {done.stderr[-2000:]}"
        )
    if any(r["changes"] == 0 for r in report["results"]):
        raise BenchFailure("vpod process: a file needed no change; the copies were not fresh")
    check_normalized(files, "vpod process")
    return wall, report


def run_daemon_round(daemon: Daemon, folder: Path, media: MediaSource, count: int) -> tuple[float, float]:
    """Drop ``count`` fresh copies into ``folder`` (under the daemon's root); returns
    (seconds from the first ``file_queued`` to the last ``file_processed`` of them,
    mean in-pipeline ``duration_seconds``)."""
    folder.mkdir()
    time.sleep(0.3)  # let the folder's own events pass
    files = media.copies(folder, count)
    prefix = str(folder) + "/"

    def mine(name: str) -> list[dict]:
        return [e for e in daemon.events(name) if str(e.get("path", "")).startswith(prefix)]

    daemon.wait(
        lambda: len(mine("file_processed")) + len(mine("file_failed")) >= count,
        timeout=60 + count * 5,
        what=f"{count} files processed in {folder}",
    )
    if mine("file_failed"):
        raise BenchFailure(f"daemon: {mine('file_failed')[0]}")
    queued = [e["timestamp"] for e in mine("file_queued")]
    processed = mine("file_processed")
    if len(queued) != count or len(processed) != count:
        raise BenchFailure(f"daemon: {len(queued)} queued and {len(processed)} processed of {count} in {folder}")
    first = min(parse_ts(t) for t in queued)
    last = max(parse_ts(e["timestamp"]) for e in processed)
    check_normalized(files, "daemon")
    return last - first, sum(e["duration_seconds"] for e in processed) / count


def overhead(work: Path, media: MediaSource, *, files: int, rounds: int) -> list[Row]:
    """The overhead rows; see the module docstring."""
    edit = edit_arguments(media.template)
    daemon_root = work / "watched"
    daemon_root.mkdir(parents=True)
    daemon = Daemon(work / "daemon", [daemon_root], watch={"settle_seconds": 0.5})
    daemon.start().wait_started()
    floor = {"mkvmerge": [], "ffprobe": []}
    process_wall, process_batch, process_startup = [], [], []
    daemon_span, daemon_pipeline = [], []
    try:
        for round_no in range(rounds):
            # The daemon right after the floor it is judged against: the same load for both.
            batch = media.copies(work / f"floor-mkvmerge-{round_no}", files)
            floor["mkvmerge"].append(run_floor("mkvmerge", edit, batch))
            span, pipeline = run_daemon_round(daemon, daemon_root / f"round-{round_no}", media, files)
            daemon_span.append(span)
            daemon_pipeline.append(pipeline)
            batch = media.copies(work / f"floor-ffprobe-{round_no}", files)
            floor["ffprobe"].append(run_floor("ffprobe", edit, batch))
            folder = work / f"process-{round_no}"
            wall, report = run_process(work, folder, media.copies(folder, files))
            process_wall.append(wall)
            process_batch.append(report["total_duration_seconds"])
            process_startup.append(wall - report["total_duration_seconds"])
    finally:
        daemon.stop()

    def per_file_ms(values: list[float]) -> list[float]:
        return [1000 * v / files for v in values]

    def ratio(values: list[float], base: list[float]) -> list[float]:
        return [v / b for v, b in zip(values, base)]

    note_floor = f"{files} files, shell loop, per file"
    rows = [
        Row("overhead", "floor: mkvmerge -J + mkvpropedit + mkvmerge -J", per_file_ms(floor["mkvmerge"]), "ms",
            note=note_floor + "; vpod's own sequence"),
        Row("overhead", "floor: ffprobe + mkvpropedit + ffprobe", per_file_ms(floor["ffprobe"]), "ms", note=note_floor),
        Row(
            "overhead", "daemon (workers 1): first queued → last done, per file", per_file_ms(daemon_span), "ms",
            note=f"{files} files dropped at once; settle time not included",
        ),
        Row("overhead", "daemon: in-pipeline time per file (file_processed.duration_seconds)",
            [1000 * v for v in daemon_pipeline], "ms"),
        Row(
            "overhead", "daemon ÷ mkvmerge floor", ratio(daemon_span, floor["mkvmerge"]), "×", goal="≤ 1.10",
            check=lambda v: v <= 1.10, note="paired per round",
        ),
        Row("overhead", "daemon ÷ ffprobe floor", ratio(daemon_span, floor["ffprobe"]), "×", note="paired per round"),
        Row(
            "overhead", "vpod process --workers 1: wall time per file, start-up included", per_file_ms(process_wall),
            "ms", note=f"{files} files",
        ),
        Row("overhead", "vpod process: start-up and exit (wall − batch time)", process_startup, "s"),
        Row("overhead", "vpod process ÷ mkvmerge floor (start-up included)", ratio(process_wall, floor["mkvmerge"]),
            "×"),
        Row("overhead", "vpod process ÷ mkvmerge floor (batch time only)", ratio(process_batch, floor["mkvmerge"]),
            "×"),
        Row("overhead", "vpod process ÷ ffprobe floor (start-up included)", ratio(process_wall, floor["ffprobe"]), "×"),
    ]
    return rows
