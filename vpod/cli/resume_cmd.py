"""``vpod resume``: lift the pause that a failure causes under ``on_error = "fail"``."""

from __future__ import annotations

import click

from vpod.cli.common import config_option, fail, load_or_exit
from vpod.control import open_existing_store, request_resume, wait_for_state, wake_daemon
from vpod.exitcodes import ExitCode


@click.command("resume")
@config_option
@click.option("--wait", "wait_seconds", default=10.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the daemon to confirm.")
def resume_command(config_path: str | None, wait_seconds: float) -> None:
    """Let a paused daemon start queued files again.

    Writes the request into the database, then sends SIGUSR1 to the daemon's recorded pid
    and waits for it to say it resumed. Exit status: 0 resumed (or nothing was paused),
    1 not confirmed in time, 3 no daemon running.
    """
    config = load_or_exit(config_path)
    store = open_existing_store(config.database, node=config.node.node_name)  # StoreError: exit 70 (vpod.cli.exits)
    record = request_resume(store)
    if not record.running:
        fail("vpod: no daemon is running for this database; nothing is paused", ExitCode.NOT_RUNNING)
    if record.state != "paused":
        click.echo(f"vpod: the daemon (pid {record.pid}) is {record.state}, not paused: nothing to do")
        return
    problem = wake_daemon(record)
    if problem:
        fail(f"vpod: {problem}", ExitCode.CHECK_FAILED)
    after = wait_for_state(store, "paused", wait_seconds)
    if after.state == "paused":
        fail(f"vpod: resume requested, but the daemon (pid {record.pid}) has not confirmed within {wait_seconds:g} s",
             ExitCode.CHECK_FAILED)
    click.echo(f"vpod: resumed (pid {record.pid}); it was paused after {record.paused_path} failed")
