"""The ``vpod`` command line (click). Commands only parse and delegate.

Each command lives in its own module and is registered here by name (:data:`COMMANDS`),
imported only when it runs: ``vpod --version`` and ``vpod process`` start without the
daemon, HTTP and metrics stacks.
"""

from __future__ import annotations

from vpod.import_gc import imports_uncollected

with imports_uncollected():  # click and what it loads live until exit (vpod.import_gc)
    import click

    from vpod import __version__
    from vpod.cli.lazy import LazyGroup

COMMANDS = {
    "run": "vpod.cli.run_cmd:run_command",
    "config": "vpod.cli.config_cmd:config_group",
    "process": "vpod.cli.process_cmd:process_command",
    "inspect": "vpod.cli.inspect_cmd:inspect_command",
    "plan": "vpod.cli.plan_cmd:plan_command",
    "status": "vpod.cli.status_cmd:status_command",
    "resume": "vpod.cli.resume_cmd:resume_command",
    "retry": "vpod.cli.retry_cmd:retry_command",
    "doctor": "vpod.cli.doctor_cmd:doctor_command",
    "notify": "vpod.cli.notify_cmd:notify_group",
}
"""Each command and where it lives: imported only when it runs (:class:`LazyGroup`)."""


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="vpod")
def cli() -> None:
    """vpod: watch folders and normalize video files by a track policy.

    Drop files into a watched folder; vpod waits until each is completely written, then
    sets default audio/subtitle tracks, removes, reorders and tags tracks, and remuxes
    into MKV as the policy says, with ffprobe, mkvpropedit and mkvmerge.
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vpod")
