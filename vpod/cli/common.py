"""Pieces shared by the commands: the --config option and turning errors into exit codes."""

from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn

import click

from vpod import exitcodes
from vpod.config import VPOConfig, load_config
from vpod.cpu import MAX_WORKERS, available_cpus
from vpod.errors import ConfigError
from vpod.requirements import missing_tools, missing_tools_message

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    metavar="PATH",
    help="Config file (default: $VPOD_CONFIG, else ~/.vpo/config.toml; missing default file = built-in defaults).",
)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    click.echo(message, err=True)
    sys.exit(code)


def load_or_exit(config_path: str | None) -> VPOConfig:
    """Load the config; on error print the file, key and reason and exit 2."""
    try:
        available_cpus()  # a bad VPOD_CPU_COUNT is a usage error, not silently ignored
    except ValueError as exc:
        fail(f"vpod: {exc}", exitcodes.USAGE)
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(f"vpod: config error: {exc}", exitcodes.USAGE)


def require_tools_or_exit(tools: tuple[str, ...] | None = None) -> None:
    """Exit 69 (EX_UNAVAILABLE) naming each missing tool and its package."""
    missing = missing_tools(tools) if tools else missing_tools()
    if missing:
        fail(missing_tools_message(missing), exitcodes.UNAVAILABLE)


def positive_int(_ctx: Any, param: click.Parameter, value: int | None) -> int | None:
    """click callback: reject 0 and negative numbers as a usage error (exit 2)."""
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}", param=param)
    return value


def worker_count(ctx: Any, param: click.Parameter, value: int | None) -> int | None:
    """click callback: a worker count from 1 to :data:`vpod.cpu.MAX_WORKERS` (else exit 2)."""
    if value is not None and value > MAX_WORKERS:
        raise click.BadParameter(f"must be at most {MAX_WORKERS}, got {value}", param=param)
    return positive_int(ctx, param, value)


Callback = Callable[..., Any]
