"""Pieces shared by the commands: the --config option, loading the config, checking the tools.

Errors become exit statuses in one place: :mod:`vpod.cli.exits`.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn

import click

from vpod.config import VPOConfig, load_config
from vpod.cpu import MAX_WORKERS, available_cpus
from vpod.errors import UsageProblem
from vpod.exitcodes import ExitCode
from vpod.requirements import ToolsMissing, missing_tools

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    metavar="PATH",
    help="Config file (default: $VPOD_CONFIG, else ~/.vpo/config.toml; missing default file = built-in defaults).",
)


def fail(message: str, code: ExitCode) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``: for statuses that are a
    command's outcome, not an error (errors: :data:`vpod.cli.exits.EXIT_CODES`)."""
    click.echo(message, err=True)
    sys.exit(code)


def load_or_exit(config_path: str | None) -> VPOConfig:
    """Load the config.

    Raises:
        ConfigError: the file, key and reason (exit 2).
        UsageProblem: ``$VPOD_CPU_COUNT`` is not a positive integer (exit 2).
    """
    try:
        available_cpus()  # a bad VPOD_CPU_COUNT is a usage error, not silently ignored
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    return load_config(config_path)


def require_tools_or_exit(tools: tuple[str, ...] | None = None) -> None:
    """Check that ``tools`` (default: all vpod needs) are on ``PATH``.

    Raises:
        ToolsMissing: naming each missing tool and its package (exit 69, EX_UNAVAILABLE).
    """
    missing = missing_tools(tools) if tools else missing_tools()
    if missing:
        raise ToolsMissing(missing)


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
