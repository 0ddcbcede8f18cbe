"""The one table from the exceptions a command lets through to its exit status.

Every command runs under :class:`ExitOnError` (the ``vpod`` group's class): an exception
listed in :data:`EXIT_CODES` is printed on stderr as ``vpod: <prefix><message>`` and the
process exits with its :class:`~vpod.exitcodes.ExitCode`; anything else is a bug and
ends with its traceback. Statuses that are outcomes rather than errors (``vpod status``
finding no daemon, ``vpod doctor`` finding a problem, ``vpod process`` with failed
files) are returned by the commands themselves, as ``ExitCode`` members.
"""

from __future__ import annotations

from typing import Any

import click

from vpod.db.store import StoreError
from vpod.errors import ConfigError, MediaError, ToolMissing, UsageProblem, VpodError
from vpod.exitcodes import ExitCode
from vpod.http_listener import ListenError
from vpod.instance import AlreadyRunning
from vpod.requirements import ToolsMissing

EXIT_CODES: tuple[tuple[type[VpodError], ExitCode, str], ...] = (
    (ConfigError, ExitCode.USAGE, "config error: "),
    (UsageProblem, ExitCode.USAGE, ""),
    (ToolsMissing, ExitCode.UNAVAILABLE, ""),
    (ToolMissing, ExitCode.UNAVAILABLE, ""),  # a MediaError: listed before it
    (StoreError, ExitCode.SOFTWARE, ""),  # StoreBusy too: a subclass
    (ListenError, ExitCode.OSERR, ""),
    (AlreadyRunning, ExitCode.ALREADY_RUNNING, ""),
    (MediaError, ExitCode.FILES_FAILED, ""),  # vpod inspect / plan: the file is not readable media
)
"""(exception type, exit status, message prefix), first match wins: a subclass comes
before its base. The statuses are the README's "Exit statuses"."""


def exit_code_for(error: BaseException) -> tuple[ExitCode, str] | None:
    """The exit status and message prefix for ``error``, or ``None`` when the table does
    not list it (a bug: let it raise)."""
    for kind, code, prefix in EXIT_CODES:
        if isinstance(error, kind):
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
