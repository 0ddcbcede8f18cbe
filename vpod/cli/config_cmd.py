"""``vpod config check``: validate a config file and print the effective configuration."""

from __future__ import annotations

import json
from typing import Any

import click

from vpod import config as config_module
from vpod.cli.common import config_option, load_or_exit
from vpod.cpu import effective_workers
from vpod.policy.selection import table_name


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
        if section in ("policies", "libraries"):
            for name, table in values.items():  # [policies.NAME], [libraries.NAME]
                click.echo(f"\n{table_name(section, name)}")
                click.echo("\n".join(f"{key} = {_toml(value)}" for key, value in table.items()))
        elif isinstance(values, dict):
            click.echo(f"\n[{section}]")
            for key, value in values.items():
                if key == "workers_requested":
                    continue  # said in the note on workers
                note = notes.get((section, key))
                click.echo(f"{key} = {_toml(value)}" + (f"  # {note}" if note else ""))


def _toml(value: Any) -> str:
    """``value`` as TOML: lists and inline tables (a rule: ``{ match = "...", policy = "..." }``)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)
