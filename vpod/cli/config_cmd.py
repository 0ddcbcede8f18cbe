"""``vpod config check``: validate a config file and print the effective configuration."""

from __future__ import annotations

import json
from typing import Any

import click

from vpod import config as config_module
from vpod.cli.common import config_option, load_or_exit
from vpod.cpu import workers_for
from vpod.lanes import lane_warning
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
    from (not set: half the CPUs available, plus max_transcodes when a policy encodes;
    or as set, or capped). A transcode lane that leaves no worker free for header edits
    while a policy encodes (or max_transcodes not below two workers or more) is warned
    about on stderr, naming the fix.
    """
    config = load_or_exit(config_path)
    _check_notify_urls(config)
    data = config.as_dict()
    # The worker count in force, not the unset default: it depends on the machine.
    workers = workers_for(config)
    data["processing"]["workers"] = workers.used
    data["processing"]["workers_requested"] = workers.requested
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    notes = {("processing", "workers"): workers.explanation()}
    wide = lane_warning(workers.used, config.processing.max_transcodes, workers.encoding)
    if wide is not None:
        notes[("processing", "max_transcodes")] = "warning: " + wide
        click.echo(f"warning: [processing] {wide}", err=True)
    path, _ = config_module.config_path(config_path)
    origin = str(config.source) if config.source else f"{path} not found: built-in defaults"
    click.echo(f"# config OK ({origin})")
    click.echo(f"allow_root = {json.dumps(data['allow_root'])}")
    for section, values in data.items():
        if section in ("arr", "media_servers"):
            secret = "api_key" if section == "arr" else "token"
            for instance in values["instances" if section == "arr" else "servers"]:  # [arr.NAME], [media_servers.NAME]
                click.echo(f"\n{table_name(section, instance['name'])}")
                click.echo("\n".join(_instance_lines(instance, secret)))
        elif section == "hooks":
            click.echo("\n[hooks]")
            click.echo("\n".join(_hooks_lines(values)))
        elif section in ("policies", "libraries"):
            for name, table in values.items():  # [policies.NAME], [libraries.NAME]
                click.echo(f"\n{table_name(section, name)}")
                click.echo("\n".join(f"{key} = {_toml(value)}" for key, value in table.items()))
        elif isinstance(values, dict):
            click.echo(f"\n[{section}]")
            for key, value in values.items():
                if key == "workers_requested" or value is None:
                    continue  # said in the note on workers; a path not set (TOML has no null)
                note = notes.get((section, key))
                click.echo(f"{key} = {_toml(value)}" + (f"  # {note}" if note else ""))


def _check_notify_urls(config: config_module.VPOConfig) -> None:
    """Each ``[notify]`` URL read by Apprise, as the daemon will (a scheme Apprise knows
    no service for, a malformed URL of a known one). Apprise is imported only here, and
    only when URLs are set: about 0.3 s and 20 MB once (docs/architecture.md).

    Raises:
        ConfigError: naming the URL's number and scheme, never the URL (exit 2).
    """
    if not config.notify.urls:
        return
    from vpod.errors import ConfigError
    from vpod.integrations.notifications import url_label, url_problem

    for number, url in enumerate(config.notify.urls, 1):
        problem = url_problem(number, url)
        if problem:
            raise ConfigError(config.source, "[notify] urls", f"{url_label(number, url)}: {problem}")


def _instance_lines(instance: dict[str, Any], secret: str) -> list[str]:
    """One ``[arr.NAME]`` or ``[media_servers.NAME]`` table's keys as TOML that reads
    back: unset keys left out, the ``secret`` key (``api_key``, ``token``) shown as
    ``"(hidden)"`` unless it came from its ``*_file``, ``path_mappings`` as the
    ``{ "remote" = "/local" }`` table it is written as."""
    lines = []
    for key, value in instance.items():
        if key == "name" or value is None or (key == secret and instance.get(f"{secret}_file") is not None):
            continue
        if key == "path_mappings":
            lines.append(f"{key} = {_toml({json.dumps(remote): local for remote, local in value})}")
        else:
            lines.append(f"{key} = {_toml(value)}")
    return lines


def _hooks_lines(hooks: dict[str, Any]) -> list[str]:
    """``[hooks]`` as TOML that reads back: unset keys left out, a secret read from its
    ``*_file`` left out (the file is named), ``path_map`` as an array of tables."""
    return [
        f"{key} = {_toml(value)}"
        for key, value in hooks.items()
        if value is not None and not (key in ("password", "api_key") and hooks.get(f"{key}_file") is not None)
    ]


def _toml(value: Any) -> str:
    """``value`` as TOML: lists and inline tables (a rule: ``{ match = "...", policy = "..." }``)."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)
