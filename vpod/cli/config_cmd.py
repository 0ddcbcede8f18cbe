"""``vpod config check``: validate a config file and print the effective configuration."""

from __future__ import annotations

import json

import click

from vpod import config as config_module
from vpod.cli.common import config_option, load_or_exit


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the effective configuration as JSON.")
def check_command(config_path: str | None, as_json: bool) -> None:
    """Validate the config and print the effective values (exit 2 naming the key on error)."""
    config = load_or_exit(config_path)
    data = config.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    path, _ = config_module.config_path(config_path)
    origin = str(config.source) if config.source else f"{path} not found: built-in defaults"
    click.echo(f"# config OK ({origin})")
    click.echo(f"allow_root = {json.dumps(data['allow_root'])}")
    for section, values in data.items():
        if isinstance(values, dict):
            click.echo(f"\n[{section}]")
            for key, value in values.items():
                click.echo(f"{key} = {json.dumps(value)}")
