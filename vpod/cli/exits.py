"""The one table from the exceptions a command lets through to its exit status.

Every command runs under :class:`ExitOnError` (the ``vpod`` group's class): an exception
listed in :data:`EXIT_CODES` is printed on stderr as ``vpod: <prefix><message>`` and the
process exits with its :class:`~vpod.exitcodes.ExitCode`; anything else is a bug and
ends with its traceback. Statuses that are outcomes rather than errors (``vpod status``
finding no daemon, ``vpod doctor`` finding a problem, ``vpod process`` with failed
files) are returned by the commands themselves, as ``ExitCode`` members.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Union

import click

from vpod.errors import ConfigError, MediaError, StoreError, ToolMissing, UsageProblem, VpodError
from vpod.exitcodes import ExitCode

_Kind = Union[type[VpodError], str]
"""An exception type, or ``"module:Name"`` of one defined in a module that not every
command needs (it is imported by the commands that can raise it): ``vpod --version``
imports none of them."""

_ROWS: tuple[tuple[_Kind, ExitCode, str], ...] = (
    (ConfigError, ExitCode.USAGE, "config error: "),
    (UsageProblem, ExitCode.USAGE, ""),
    ("vpod.requirements:ToolsMissing", ExitCode.UNAVAILABLE, ""),
    (ToolMissing, ExitCode.UNAVAILABLE, ""),  # a MediaError: listed before it
    (StoreError, ExitCode.SOFTWARE, ""),  # StoreBusy too: a subclass
    ("vpod.http_listener:ListenError", ExitCode.OSERR, ""),  # only `vpod run` listens
    ("vpod.instance:AlreadyRunning", ExitCode.ALREADY_RUNNING, ""),
    (MediaError, ExitCode.FILES_FAILED, ""),  # vpod inspect / plan: the file is not readable media
)


def _resolve(kind: _Kind, *, load: bool) -> type[VpodError] | None:
    """The exception type of a row; a ``"module:Name"`` row is imported when ``load``,
    else looked up only if its module is already imported (``None`` if not: no exception
    of that type can exist before its module is imported)."""
    if not isinstance(kind, str):
        return kind
    module_name, _, name = kind.partition(":")
    module = importlib.import_module(module_name) if load else sys.modules.get(module_name)
    return None if module is None else getattr(module, name)


def __getattr__(name: str) -> Any:
    # EXIT_CODES is built on first use: it imports every module the table names.
    if name == "EXIT_CODES":
        return tuple((_resolve(kind, load=True), code, prefix) for kind, code, prefix in _ROWS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EXIT_CODES: tuple[tuple[type[VpodError], ExitCode, str], ...]
"""(exception type, exit status, message prefix), first match wins: a subclass comes
before its base. The statuses are the README's "Exit statuses". Built when first read
(every type imported); :func:`exit_code_for` imports none."""


def exit_code_for(error: BaseException) -> tuple[ExitCode, str] | None:
    """The exit status and message prefix for ``error``, or ``None`` when the table does
    not list it (a bug: let it raise)."""
    for kind, code, prefix in _ROWS:
        resolved = _resolve(kind, load=False)
        if resolved is not None and isinstance(error, resolved):
            return code, prefix
    return None


class ExitOnError(click.Group):
    """A click group whose commands exit through :data:`EXIT_CODES`, and with
    ``ExitCode.INTERRUPTED`` (``SIGNAL_BASE + SIGINT``, 130, the shells' convention, as
    ``vpod process``) on Ctrl-C instead of click's "Aborted!" and status 1 (which
    ``vpod inspect`` documents as "cannot be read as media")."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an exception in the table prints its message and exits with its
        status; a KeyboardInterrupt exits with ``ExitCode.INTERRUPTED`` (130)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo(err=True)  # after the terminal's ^C
            ctx.exit(ExitCode.INTERRUPTED)  # SIGNAL_BASE + SIGINT
        except VpodError as exc:
            found = exit_code_for(exc)
            if found is None:
                raise
            code, prefix = found
            click.echo(f"vpod: {prefix}{exc}", err=True)
            ctx.exit(code)
