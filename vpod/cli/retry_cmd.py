"""``vpod retry``: queue failed files again."""

from __future__ import annotations

from pathlib import Path

import click

from vpod.cli.common import config_option, fail, load_or_exit
from vpod.control import DaemonRecord, open_existing_store, requeue_files, wake_daemon
from vpod.db.records import RetryOutcome
from vpod.exitcodes import ExitCode


@click.command("retry")
@config_option
@click.option("--all-failed", is_flag=True, help="Requeue every failed file.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def retry_command(config_path: str | None, all_failed: bool, paths: tuple[Path, ...]) -> None:
    """Queue failed (or skipped) files again, with fresh attempts.

    Give the files' paths, or --all-failed. The files are requeued in the database; a
    running daemon is woken with SIGUSR1 and starts them (after `vpod resume` if it is
    paused); otherwise they run at its next start. Exit status: 0 all requeued, 1 some
    path was unknown or not failed.
    """
    if not paths and not all_failed:
        raise click.UsageError("give PATH... or --all-failed")
    config = load_or_exit(config_path)
    code = ExitCode.OK
    store = open_existing_store(config.database, node=config.node.node_name)  # StoreError: exit 70 (vpod.cli.exits)
    done = requeue_files(store, paths, all_failed=all_failed)
    requeued = done.requeued
    for path, outcome in done.refused:
        code = ExitCode.CHECK_FAILED
        why = "vpod has no record of it" if outcome is RetryOutcome.UNKNOWN else "not failed (queued, in progress or done)"
        click.echo(f"vpod: {path}: {why}", err=True)
    record = DaemonRecord.from_info(store.daemon_info())
    click.echo(f"vpod: {requeued} file(s) queued again")
    if requeued and record.running:
        problem = wake_daemon(record)
        if problem:
            fail(f"vpod: {problem}; the files wait in the queue", ExitCode.CHECK_FAILED)
        if record.state == "paused":
            click.echo("vpod: the daemon is paused: run `vpod resume` to process them")
    elif requeued:
        click.echo("vpod: no daemon is running: they are processed at its next start")
    raise SystemExit(code)
