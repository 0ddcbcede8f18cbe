"""The ``vpod`` command line (click). Commands only parse and delegate.

Each command lives in its own module and is registered here.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from vpod import __version__
from vpod.cli.config_cmd import config_group
from vpod.cli.inspect_cmd import inspect_command
from vpod.cli.plan_cmd import plan_command
from vpod.cli.process_cmd import process_command
from vpod.cli.doctor_cmd import doctor_command
from vpod.cli.resume_cmd import resume_command
from vpod.cli.retry_cmd import retry_command
from vpod.cli.run_cmd import run_command
from vpod.cli.status_cmd import status_command


class InterruptExits(click.Group):
    """A click group whose commands exit 130 (128 + SIGINT, the shells' convention and the
    README's "Exit codes") on Ctrl-C, as ``vpod process`` does, instead of click's
    "Aborted!" and status 1 (which ``vpod inspect`` documents as "cannot be read as media").
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a KeyboardInterrupt ends it with status 128 + SIGINT."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo(file=sys.stderr)  # after the terminal's ^C
            ctx.exit(128 + signal.SIGINT)


@click.group(cls=InterruptExits, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vpod")
def cli() -> None:
    """vpod: watch folders and normalize video files by a track policy.

    Drop files into a watched folder; vpod waits until each is completely written, then
    sets default audio/subtitle tracks, removes, reorders and tags tracks, and remuxes
    into MKV as the policy says, with ffprobe, mkvpropedit and mkvmerge.
    """


cli.add_command(run_command)
cli.add_command(config_group)
cli.add_command(process_command)
cli.add_command(inspect_command)
cli.add_command(plan_command)
cli.add_command(status_command)
cli.add_command(resume_command)
cli.add_command(retry_command)
cli.add_command(doctor_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vpod")
