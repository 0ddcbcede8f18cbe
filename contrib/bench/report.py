"""The results table: printed to stdout and written as ``BENCHMARKS.md``."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from common import REPO, Row, median

SECTION_TITLES = {
    "overhead": "1. Overhead against the bare tool commands",
    "remux": "1b. Remux: CPU per remuxed file against the bare tool commands",
    "scaling": "2. Scaling with workers (vpod process)",
    "latency": "3. Latency: writer closes a file → processing",
    "idle": "4. Idle cost",
    "burst": "5. Burst and memory",
    "scan": "6. Catch-up scan",
    "pool": "7. Database pool",
    "nodes": "8. Several nodes on one library (PostgreSQL)",
    "startup": "9. Start-up: vpod --version and vpod process",
    "rerun": "10. Re-run over unchanged files (vpod process)",
    "webapi": "11. Web API: /api/status with 100,000 files",
    "page": "12. Web page: the idle daemon with its page open in a browser",
    "transcode": "13. Transcode: the encoder through vpod against the same ffmpeg command by hand",
}


def _first_line(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except OSError:
        return "not found"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    """The checkout's short commit, with ", with local changes" when tracked files differ;
    "unknown: ..." when git is not installed or the tree is not a git checkout (a source
    tarball): the benchmark runs the same either way."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return "unknown: not a git checkout"
        dirty = subprocess.run(
            # The table being rewritten is not a change to what is measured.
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"],
            capture_output=True, text=True, timeout=30,
        ).stdout.strip()
    except FileNotFoundError:
        return "unknown: git is not installed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown: git failed ({exc})"
    return head.stdout.strip() + (", with local changes" if dirty else "")


def machine_info() -> dict[str, str]:
    """What the figures depend on: CPUs, Python, tools, kernel, commit."""
    from vpod import __version__

    import watchdog.version

    commit = _commit()
    return {
        "CPUs": f"{len(os.sched_getaffinity(0))} available to this process ({os.cpu_count()} online): {_cpu_model()}",
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "Python": sys.version.split()[0],
        "vpod": f"{__version__} (commit {commit})",
        "ffprobe": _first_line(["ffprobe", "-version"]),
        "mkvmerge": _first_line(["mkvmerge", "--version"]),
        "mkvpropedit": _first_line(["mkvpropedit", "--version"]),
        "SQLite": sqlite3.sqlite_version,
        "watchdog": watchdog.version.VERSION_STRING,
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def cells(row: Row) -> list[str]:
    """Median, min, max, goal, verdict of a row as text."""
    if row.skipped or not row.values:
        return ["—", "—", "—", row.goal or "", row.skipped or "no figures"]
    met = row.met()
    verdict = "" if met is None else ("met" if met else "**missed**")
    return [
        _fmt(median(row.values), row.digits),
        _fmt(min(row.values), row.digits),
        _fmt(max(row.values), row.digits),
        row.goal,
        verdict,
    ]


def print_table(rows: list[Row]) -> None:
    """A plain-text table on stdout."""
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            print(f"\n== {SECTION_TITLES.get(section, section)}")
            print(f"{'':66} {'median':>10} {'min':>10} {'max':>10}  unit     goal")
        med, lo, hi, goal, verdict = cells(row)
        print(f"{row.name[:66]:66} {med:>10} {lo:>10} {hi:>10}  {row.unit:8} {goal} {verdict}".rstrip())
    sys.stdout.flush()


def markdown(rows: list[Row], *, info: dict[str, str], header: dict[str, str], notes: dict[str, str],
             findings: str) -> str:
    """``BENCHMARKS.md``: the machine, then one table per section, then the findings."""
    out = [
        "# vpod benchmarks",
        "",
        "Generated by `contrib/dev.sh bench` (`contrib/bench/run.py`); do not edit by hand: the",
        "findings at the end come from `contrib/bench/findings.md`. Each figure is the median of",
        "several runs, with the smallest and largest; a goal is judged on the median.",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {k} | {v} |" for k, v in {**header, **info}.items()]
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            out += ["", f"## {SECTION_TITLES.get(section, section)}", ""]
            if notes.get(section):
                out += [notes[section], ""]
            out += ["| figure | median | min | max | unit | goal | |", "|---|--:|--:|--:|---|---|---|"]
        med, lo, hi, goal, verdict = cells(row)
        name = row.name + (f" ({row.note})" if row.note else "")
        out.append(f"| {name} | {med} | {lo} | {hi} | {row.unit} | {goal} | {verdict} |")
    out += ["", findings.strip(), ""]
    return "\n".join(out)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write(path: Path, text: str) -> None:
    path.write_text(text)
