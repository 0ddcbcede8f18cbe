"""``vpod config check``: validate a config file and print the effective configuration."""

from __future__ import annotations

import json

import click

from vpod import config as config_module
from vpod.cli.common import config_option, load_or_exit
from vpod.cpu import effective_workers


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the effective configuration as JSON.")
def check_command(config_path: str | None, as_json: bool) -> None:
    """Validate the config and print the effective values (exit 2 naming the key on error).

    [processing] workers shows the count in force on this machine, and where it comes
    from (not set: half the CPUs available; or as set, or capped).
    """
    config = load_or_exit(config_path)
    data = config.as_dict()
    # The worker count in force, not the unset default: it depends on the machine.
    workers = effective_workers(config.processing.workers)
    data["processing"]["workers"] = workers.used
    data["processing"]["workers_requested"] = workers.requested
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    notes = {("processing", "workers"): workers.explanation()}
    path, _ = config_module.config_path(config_path)
    origin = str(config.source) if config.source else f"{path} not found: built-in defaults"
    click.echo(f"# config OK ({origin})")
    click.echo(f"allow_root = {json.dumps(data['allow_root'])}")
    for section, values in data.items():
        if isinstance(values, dict):
            click.echo(f"\n[{section}]")
            for key, value in values.items():
                if key == "workers_requested":
                    continue  # said in the note on workers
                note = notes.get((section, key))
                click.echo(f"{key} = {json.dumps(value)}" + (f"  # {note}" if note else ""))
