#!/usr/bin/env python3
"""vpod's benchmark suite: one entry point, one table, BENCHMARKS.md rewritten.

Run it through ``contrib/dev.sh bench [options]``, which installs what it needs first.

    run.py                      every section at full size (8 to 12 minutes on 2 CPUs)
    run.py --only burst,scan    some sections (BENCHMARKS.md is left alone unless --output)
    run.py --smoke              every section at toy size, to check the suite itself works
    run.py --profile            also attach py-spy to the daemons of burst and scan
                                (collapsed stacks and a top list in .bench/profiles/)
    run.py --note TEXT          a remark for the header of BENCHMARKS.md

Exit status: 0 when every section ran and nothing was lost or wrong; 1 when a section
found a lost file, a wrong result or an error (a slow figure is never a failure);
2 for a bad command line.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import burst as burst_section  # noqa: E402
import idle as idle_section  # noqa: E402
import latency as latency_section  # noqa: E402
import nodes as nodes_section  # noqa: E402
import overhead as overhead_section  # noqa: E402
import page as page_section  # noqa: E402
import pool as pool_section  # noqa: E402
import remux as remux_section  # noqa: E402
import report  # noqa: E402
import rerun as rerun_section  # noqa: E402
import scaling as scaling_section  # noqa: E402
import scan as scan_section  # noqa: E402
import startup as startup_section  # noqa: E402
import transcode as transcode_section  # noqa: E402
import webapi as webapi_section  # noqa: E402
from common import REPO, BenchFailure, MediaSource, Row, make_template  # noqa: E402

SECTIONS = (
    "overhead", "remux", "scaling", "latency", "idle", "burst", "scan", "pool", "nodes", "startup", "rerun", "webapi",
    "page", "transcode",
)
DEFAULT_SETTLE_SECONDS = 5.0  # vpod's own default ([watch] settle_seconds)
MODULES = {
    "overhead": overhead_section,
    "remux": remux_section,
    "scaling": scaling_section,
    "latency": latency_section,
    "idle": idle_section,
    "burst": burst_section,
    "scan": scan_section,
    "pool": pool_section,
    "nodes": nodes_section,
    "startup": startup_section,
    "rerun": rerun_section,
    "webapi": webapi_section,
    "page": page_section,
    "transcode": transcode_section,
}


@dataclass(frozen=True)
class Sizes:
    """How big each section is: the issue's sizes, or toy sizes for ``--smoke``."""

    overhead_files: int = 20
    overhead_rounds: int = 5
    remux_files: int = 20
    remux_rounds: int = 3
    scaling_files: int = 40
    issue4_files: int = 20
    latency_files: int = 20
    idle_folders: int = 1000
    idle_seconds: float = 60.0
    page_seconds: float = 60.0
    burst_files: int = 10_000
    scan_files: int = 100_000
    scan_folders: int = 1000
    pool_per_thread: int = 500
    claim_files: int = 500
    node_files: int = 200
    rerun_files: int = 10_000
    rerun_folders: int = 100
    runs: int = 3
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    startup_runs: int = 30
    startup_file_runs: int = 10
    heavy_files: int = 8  # the scaling section's remux-heavy set
    heavy_megabytes: float = 40.0
    webapi_files: int = 100_000
    transcode_files: int = 4
    transcode_seconds: float = 8.0
    transcode_pairs: int = 9  # rounds of vpod's encodes against the same commands by hand


SMOKE = Sizes(
    overhead_files=3, overhead_rounds=1, remux_files=3, remux_rounds=1, scaling_files=4, issue4_files=4, latency_files=3, idle_folders=20, idle_seconds=2.0, page_seconds=2.0,
    burst_files=200, scan_files=1000, scan_folders=10, pool_per_thread=50, claim_files=50, node_files=12, rerun_files=200, rerun_folders=4, runs=1,
    settle_seconds=0.5, startup_runs=3, startup_file_runs=1, heavy_files=2, heavy_megabytes=4.0,
    webapi_files=1000, transcode_files=1, transcode_seconds=1.0, transcode_pairs=1,
)


def run_section(name: str, work: Path, media: MediaSource, sizes: Sizes, profiles: Path | None) -> list[Row]:
    folder = work / name
    folder.mkdir()
    try:
        if name == "overhead":
            return overhead_section.overhead(folder, media, files=sizes.overhead_files, rounds=sizes.overhead_rounds)
        if name == "remux":
            return remux_section.remux(folder, files=sizes.remux_files, rounds=sizes.remux_rounds)
        if name == "scaling":
            cpus = len(os.sched_getaffinity(0))
            return scaling_section.scaling(folder, media, cpus=cpus, files=sizes.scaling_files,
                                          issue4_files=sizes.issue4_files, runs=sizes.runs) + \
                scaling_section.remux_scaling(folder, cpus=cpus, files=sizes.heavy_files,
                                              megabytes=sizes.heavy_megabytes, runs=sizes.runs)
        if name == "latency":
            return latency_section.latency(folder, media, files=sizes.latency_files, runs=sizes.runs,
                                           settle_seconds=sizes.settle_seconds)
        if name == "idle":
            return idle_section.idle(folder, folders=sizes.idle_folders, seconds=sizes.idle_seconds, runs=sizes.runs)
        if name == "burst":
            return burst_section.burst(folder, media, files=sizes.burst_files, runs=sizes.runs,
                                       settle_seconds=sizes.settle_seconds, profiles=profiles)
        if name == "scan":
            return scan_section.scan(folder, media, files=sizes.scan_files, folders=sizes.scan_folders,
                                     runs=sizes.runs, settle_seconds=sizes.settle_seconds, profiles=profiles)
        if name == "pool":
            return pool_section.pool(folder, per_thread=sizes.pool_per_thread, runs=sizes.runs)
        if name == "nodes":
            return nodes_section.nodes(folder, media, claim_files=sizes.claim_files, node_files=sizes.node_files,
                                       runs=sizes.runs, settle_seconds=sizes.settle_seconds)
        if name == "startup":
            return startup_section.startup(folder, media, runs=sizes.startup_runs, file_runs=sizes.startup_file_runs)
        if name == "rerun":
            return rerun_section.rerun(folder, media, files=sizes.rerun_files, folders=sizes.rerun_folders,
                                       runs=sizes.runs)
        if name == "webapi":
            return webapi_section.webapi(folder, files=sizes.webapi_files, runs=sizes.runs)
        if name == "page":
            return page_section.page(folder, seconds=sizes.page_seconds, runs=sizes.runs)
        if name == "transcode":
            return transcode_section.transcode(folder, files=sizes.transcode_files, seconds=sizes.transcode_seconds,
                                               runs=sizes.runs, pairs=sizes.transcode_pairs,
                                               cpus=len(os.sched_getaffinity(0)))
        raise ValueError(name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def section_note(name: str) -> str:
    """The section module's docstring, as Markdown: how the figures were taken."""
    text = inspect.getdoc(MODULES[name]) or ""
    _, _, body = text.partition("\n\n")  # the first line repeats the section title
    return (body or text).replace("``", "`")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="contrib/dev.sh bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: check that the suite works, in about a minute")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; overhead makes 5 rounds)")
    parser.add_argument("--output", type=Path, help="where to write the Markdown table "
                        "(default: BENCHMARKS.md for a full run of every section, nowhere otherwise)")
    parser.add_argument("--profile", action="store_true", help="attach py-spy to the daemons of burst and scan")
    parser.add_argument("--workdir", type=Path, help="where the temporary trees go (default: the system temp folder)")
    parser.add_argument("--note", help="a remark for the header of the Markdown table (e.g. what else ran meanwhile)")
    args = parser.parse_args(argv)
    args.sections = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.output is None and not args.only and not args.smoke:
        args.output = REPO / "BENCHMARKS.md"
    return args


def _stop_on_signal(signum: int, _frame: object) -> None:
    # Unwind through every finally: daemons under test are stopped, trees removed.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.workdir is not None and not args.workdir.is_dir():
        print(f"vpod bench: --workdir {args.workdir}: no such folder (make it first)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)  # also when started in the background (SIGINT ignored)
    sizes = SMOKE if args.smoke else Sizes()
    if args.runs is not None:
        sizes = Sizes(**{**sizes.__dict__, "runs": args.runs, "overhead_rounds": max(args.runs, sizes.overhead_rounds)})
    profiles = REPO / ".bench" / "profiles" if args.profile else None
    info = report.machine_info()
    print("vpod benchmarks:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    load_before = report.load_average()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vpod-bench-", dir=args.workdir))
    rows: list[Row] = []
    failures: list[str] = []
    try:
        # Every section runs vpod from its bytecode, as an installed vpod does, even with
        # PYTHONDONTWRITEBYTECODE set (else each run compiles vpod's sources again).
        startup_section.compile_vpod()
        media = MediaSource(make_template(work / "template"))
        for name in args.sections:
            section_start = time.monotonic()
            print(f"\n-- {name} ...", flush=True)
            try:
                found = run_section(name, work, media, sizes, profiles)
            except BenchFailure as exc:
                failures.append(f"{name}: {exc}")
                found = [Row(name, "FAILED", skipped=f"FAILED: {exc}")]
            except Exception as exc:  # a bug in the suite: report it, go on with the other sections
                traceback.print_exc()
                failures.append(f"{name}: {exc!r}")
                found = [Row(name, "FAILED", skipped=f"FAILED: {exc!r}")]
            if args.smoke:
                for row in found:  # toy sizes say nothing about a goal set for the full sizes
                    row.check, row.goal = None, f"{row.goal} (not judged at smoke size)" if row.goal else ""
            rows += found
            report.print_table(found)
            print(f"   ({name}: {time.monotonic() - section_start:.0f} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print("\n\nAll results:")
    report.print_table(rows)
    print(f"\nsuite time: {elapsed / 60:.1f} min; load average before {load_before}, after {report.load_average()}")
    if args.output is not None:
        header = {
            "date": report.utc_now(),
            "command": "`" + shlex.join(["contrib/dev.sh", "bench", *argv]) + "`",
            "suite time": f"{elapsed / 60:.1f} min",
            "load average (1, 5, 15 min) before / after": f"{load_before} / {report.load_average()}",
        }
        if args.note:
            header["note"] = args.note
        findings = (Path(__file__).parent / "findings.md").read_text()
        notes = {name: section_note(name) for name in args.sections}
        report.write(args.output, report.markdown(rows, info=info, header=header, notes=notes, findings=findings))
        print(f"wrote {args.output}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
