"""``vpod process PATHS…``: normalize existing files once, in parallel, and report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from vpod.cli.common import config_option, load_or_exit, require_tools_or_exit, worker_count
from vpod.config import with_overrides
from vpod.cpu import CPU_COUNT_ENV, workers_for
from vpod.logs import configure_logging
from vpod.outcomes import Reason, Status
from vpod.process import ProcessReport, run_process
from vpod.progress import StatusLine
from vpod.results import FileProcessingResult, display_path, one_line, utf8_text
from vpod.targets import collect_targets
from vpod.watch.filters import PathFilter

_LEVELS = ("debug", "info", "warning", "error")


@click.command("process")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-R", "--recursive", is_flag=True, help="Search folders recursively (default: only the files directly in them).")
@click.option(
    "--workers", "-w", type=int, callback=worker_count, metavar="N",
    help="Files processed at once (overrides [processing] workers; default: half the CPUs available, "
    "plus max_transcodes when a policy encodes; capped there plus max_transcodes; "
    f"${CPU_COUNT_ENV} overrides the detected count). A remux starts only when the file's size "
    "+ 5 % + 64 MiB is free beside it.",
)
@click.option("--on-error", type=click.Choice(["skip", "fail"]), help='Overrides [policy] on_error: "skip" goes on '
              'after a failure, "fail" stops at the first one (files in progress complete).')
@click.option("--dry-run", is_flag=True, help="Report what would change; never write a media file.")
@click.option("--force", is_flag=True, help="Look at every file again, also those whose size, mtime, inode, device "
              "and ctime prove them unchanged since vpod left them conforming under the policy now in force "
              "(by default those are counted as unchanged and no tool runs for them).")
@click.option("--json", "as_json", is_flag=True, help="Print the BatchResult as one JSON document on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Log every file at the [logging] level (default: warnings and errors only).")
@config_option
def process_command(
    paths: tuple[Path, ...],
    recursive: bool,
    workers: int | None,
    on_error: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
    verbose: bool,
    config_path: str | None,
) -> None:
    """Normalize existing video files by the track policy, in parallel, then report.

    PATHS are files and folders; files are chosen by [watch] extensions and ignore.
    Each file is processed once, through the same pipeline as `vpod run`. A file that a
    running daemon is working on is waited for, never modified twice at once. A file
    vpod left conforming under the policy now in force, untouched since (its size,
    mtime, inode, device and ctime as recorded), is counted as unchanged without
    running any tool; --force looks at it again.

    Disk space: a remux starts only when the file's size + 5 % + 64 MiB is free on its
    filesystem (less what other remuxes in progress will still write); otherwise the
    file fails as insufficient_space and is left as it was.

    Progress goes to stderr (one line, updated in place on a terminal); the summary, or
    with --json one JSON document, goes to stdout. Exit status: 0 all files fine or
    nothing to do, 1 a file failed, 2 usage or config error, 3 stopped early at a failure
    (on_error = "fail"), 69 a tool is missing, 70 database error, 128+N stopped by signal N.
    """
    config = with_overrides(load_or_exit(config_path), workers=workers, on_error=on_error)
    require_tools_or_exit()
    line = StatusLine(sys.stderr)
    configure_logging(
        _log_level(config.logging.level, verbose), config.logging.format, stream=line,
        timestamps=config.logging.timestamps,
    )
    chosen = workers_for(config)
    if chosen.capped:
        line.write(f"vpod: warning: using {chosen.used} worker(s) instead of the {chosen.explanation()}\n")
    targets = collect_targets(
        paths, PathFilter.from_config(config.watch), recursive=recursive, watch_roots=config.watch.paths
    )
    report = run_process(  # StoreError: exit 70 (vpod.cli.exits)
        config, targets, workers=chosen.used, workers_requested=chosen.requested, dry_run=dry_run, line=line,
        force=force,
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(summary_text(report))
    sys.exit(report.exit_code())


def _log_level(configured: str, verbose: bool) -> str:
    """A batch in a terminal shows progress and problems, not a line per file."""
    if verbose:
        return configured
    return max(configured, "warning", key=_LEVELS.index)


def summary_text(report: ProcessReport) -> str:
    """The human summary: counts, total time, each failed or skipped file with its reason.
    "changed" counts every file written, a skipped one whose header part or rest of the
    plan was applied (its result's ``changes``) too."""
    batch = report.batch
    if batch.total_files == 0:
        lines = ["vpod process: nothing to do (no video files found)."]
    else:
        planned = [r for r in batch.results if r.reason == Reason.DRY_RUN]
        skipped = [r for r in batch.results if r.status is Status.SKIPPED and r.reason != Reason.DRY_RUN]
        # A skip that still applied part of the plan (the header part of a hard-linked
        # file, the rest of a plan whose video transcode was declined) changed its file.
        in_part = 0 if report.dry_run else sum(1 for r in skipped if r.changes)
        changed = sum(1 for r in batch.results if r.status is Status.DONE and r.changes) + in_part
        head = "Dry run, nothing written: " if report.dry_run else ""
        unchanged = f", {batch.unchanged_count} unchanged since vpod left them conforming" if batch.unchanged_count else ""
        partly = f", {in_part} of them skipped but changed in part" if in_part else ""
        counts = [f"{batch.success_count} succeeded ({changed} changed{partly}{unchanged})"]
        if report.dry_run:
            counts.append(f"{len(planned)} would change")
        counts += [f"{batch.fail_count} failed", f"{len(skipped)} skipped"]
        if report.not_started:
            counts.append(f"{report.not_started} not started")
        lines = [
            f"{head}{batch.total_files} file(s) in {batch.total_duration_seconds:.1f} s with {report.workers} "
            f"worker(s): {', '.join(counts)}. Batch {batch.batch_id}."
        ]
        lines += _section("Would change:", [f"{one_line(display_path(r.path))}: {'; '.join(r.actions)}" for r in planned])
        lines += _section("Failed:", [_problem(r) for r in batch.results if r.status is Status.FAILED])
        lines += _section("Skipped:", [_problem(r) for r in skipped])
    lines += _section("Not processed (named, but filtered out):", [f"{p}: {why}" for p, why in report.ignored])
    lines += _section("Folders that could not be read:", [f"{p}: {err}" for p, err in report.unreadable])
    lines += _section("Removed temp files left by an interrupted vpod:", report.temp_files_removed)
    if report.stop_message:
        lines.append(f"Stopped early: {one_line(report.stop_message)}")
    return "\n".join(lines)


def _section(title: str, items: list[str]) -> list[str]:
    # Tools' messages span lines; indent them under their file.
    return [title, *("  " + item.replace("\n", "\n      ") for item in items)] if items else []


def _problem(result: FileProcessingResult) -> str:
    path = display_path(result.path)
    # Tool messages may span lines, a file name must not: a newline in it is shown as \n.
    error = (utf8_text(result.error) or "(no message)").replace(path, one_line(path))
    text = error if error.startswith(one_line(path)) else f"{one_line(path)}: {error}"
    return f"{text} [{result.reason}]"
