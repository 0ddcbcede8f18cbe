"""``vpod notify test``: send a test notification to every ``[notify]`` URL."""

from __future__ import annotations

import click

from vpod.cli.common import config_option, fail, load_or_exit
from vpod.exitcodes import ExitCode
from vpod.integrations.http_call import CallFailed
from vpod.integrations.notifications import AppriseTarget, test_message, url_label


@click.group("notify")
def notify_group() -> None:
    """Notifications ([notify] urls, Apprise)."""


@notify_group.command("test")
@config_option
def notify_test_command(config_path: str | None) -> None:
    """Send a test message to each [notify] URL, once, now, and say which got it.

    The daemon need not run. Exit status: 0 every URL took the message, 1 one did not
    (or no URL is configured).
    """
    config = load_or_exit(config_path)
    if not config.notify.urls:
        fail("vpod: no [notify] urls (nor urls_file) in the config: nothing to test", ExitCode.CHECK_FAILED)
    message = test_message(config.node.node_name)
    failed = 0
    for number, url in enumerate(config.notify.urls, 1):
        try:
            AppriseTarget(number, url).send(message)
        except (ValueError, CallFailed) as exc:
            failed += 1
            click.echo(f"{url_label(number, url)}: failed: {exc}")
            continue
        click.echo(f"{url_label(number, url)}: sent")
    if failed:
        fail(f"vpod: {failed} of {len(config.notify.urls)} notification URLs failed", ExitCode.CHECK_FAILED)
