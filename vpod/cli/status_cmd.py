"""``vpod status``: the daemon's state, queue, work in progress, batches and failures."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vpod.cli.common import config_option
from vpod.config import DatabaseConfig, fallback_database_path, load_config
from vpod.control import open_existing_store
from vpod.errors import ConfigError, UsageProblem
from vpod.exitcodes import ExitCode
from vpod.status import format_status, read_status


@click.command("status")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--batches", default=5, show_default=True, type=click.IntRange(0, 1000), help="How many recent batches to show.")
@click.option("--failures", default=10, show_default=True, type=click.IntRange(0, 1000), help="How many recent failures to show.")
def status_command(paths: tuple[Path, ...], config_path: str | None, as_json: bool, batches: int, failures: int) -> None:
    """Show what the daemon is doing, read from its database (works while it runs).

    PATHS (optional): files to report on too: state, last reason, and the policy that
    judged each and why (a rule, a folder file, the library's policy, the default).

    State (running, paused, stopping or stopped) and pid, uptime, queue depth, files in
    progress with worker and elapsed time (and, from a remux or an encode, its percent;
    an encode's speed and fps; the time left while an estimate is known), counts by state, the last batches and the
    last failures with reasons, and watch folders not watched now. Exit status: 0 while a
    daemon runs, 3 when none does. A config file with an error only warns when the
    database it names can still be found (the daemon keeps running on its last good
    config); exit status 2 when not.
    """
    config_error: str | None = None
    node: str | None = None  # the host name, unless the config names this node
    config_file: str | None = None
    try:
        loaded = load_config(config_path)
        database, node = loaded.database, loaded.node.node_name
        config_file = str(loaded.source) if loaded.source else None
    except ConfigError as exc:
        # A typo must not hide a daemon that runs on its last good config: read the database
        # the file names, if that much of it can be read.
        fallback = fallback_database_path(config_path)
        if fallback is None:
            # Not even TOML, and no readable [database] path: the default database would be a guess.
            raise UsageProblem(
                f"config error: {exc}\nvpod: no [database] path can be read from that file,"
                " so which database (and daemon) to report is unknown; fix the file"
            ) from exc
        if not fallback.exists():
            raise
        config_error, database = str(exc), DatabaseConfig(path=fallback)
        click.echo(f"vpod: warning: config error: {exc}; reading the database it names, {fallback}", err=True)
    store = open_existing_store(database, node=node)  # StoreError: exit 70 (vpod.cli.exits)
    status = read_status(
        store, batches=batches, failures=failures, config_error=config_error, paths=paths, config_file=config_file
    )
    if as_json:
        click.echo(json.dumps(status.as_dict(), indent=2))
    else:
        click.echo(format_status(status))
    raise SystemExit(ExitCode.OK if status.running else ExitCode.NOT_RUNNING)
