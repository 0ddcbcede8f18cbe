"""A click group that imports a command's module only when that command runs.

``vpod --version`` needs none of the commands; ``vpod process`` needs only its own.
Importing every command module up front cost each invocation the daemon, HTTP and
metrics stacks (``vpod run``), the media probes (``vpod inspect``) and more, about a
third of a second on a small machine (contrib/bench/startup.py reports the figure).
"""

from __future__ import annotations

import importlib
from typing import Any, Iterable

import click

from vpod.cli.deferred import import_structlog
from vpod.cli.exits import ExitOnError
from vpod.import_gc import imports_uncollected

DAEMON_STACKS = (
    "http.server",
    "prometheus_client",
    "watchdog",
    "psycopg",
    "psycopg_pool",
    "vpod.daemon",
    "vpod.http_listener",
    "vpod.http",  # the HTTP layer, and its stack: only a daemon with [http] listen
    "falcon",
    "waitress",
    "vpod.metrics",
    "vpod.watch.observers",
    "apprise",  # [notify] urls: only the daemon and `vpod notify test` send notifications
    "vpod.integrations.outbox",
    "vpod.integrations.notifications",
)
"""Packages and modules only ``vpod run`` needs (the HTTP listener, the metrics, the
folder watcher, the daemon) and PostgreSQL's driver, which only a PostgreSQL database
needs: ``vpod --version`` and ``vpod process`` on SQLite import none of them
(tests/integration/test_startup_imports.py; contrib/bench/startup.py counts them)."""


def daemon_stack_modules(modules: Iterable[str]) -> list[str]:
    """The names in ``modules`` that are, or are inside, one of :data:`DAEMON_STACKS`."""
    return [m for m in modules if any(m == s or m.startswith(s + ".") for s in DAEMON_STACKS)]


class LazyGroup(ExitOnError):
    """An :class:`~vpod.cli.exits.ExitOnError` group whose commands are named by where
    they live, ``{name: "module:attribute"}``, and imported at first use.

    ``vpod --help`` lists every command with its short help, so it imports them all;
    running one command imports only that one.

    Args:
        lazy_commands: command name → ``"package.module:attribute"`` of its
            :class:`click.Command`.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, sorted (click's order), without importing any."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called ``cmd_name``, importing its module the first time; ``None``
        for an unknown name (click then reports "No such command")."""
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
            # What the import makes (modules, classes, functions) lives until exit: no
            # collection while it is made, none of it looked at again after (import_gc).
            with imports_uncollected():
                import_structlog()  # before any command module imports it: without asyncio
                command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)
