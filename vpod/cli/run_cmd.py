"""``vpod run``: the watch-folder daemon in the foreground."""

from __future__ import annotations

import os
import sys

import click

from vpod.cli.common import config_option, load_or_exit, require_tools_or_exit, worker_count
from vpod.config import DEFAULT_HOME, load_config, with_overrides
from vpod.daemon import run_daemon
from vpod.errors import UsageProblem
from vpod.logs import configure_logging, resolve_format


@click.command("run")
@config_option
@click.option("--workers", "-w", type=int, callback=worker_count, help="Worker threads (overrides [processing] workers).")
@click.option("--dry-run", is_flag=True, help="Log what would change; never write a media file.")
@click.option("--allow-root", is_flag=True, help="Run even as root (same as allow_root = true in the config).")
def run_command(config_path: str | None, workers: int | None, dry_run: bool, allow_root: bool) -> None:
    """Watch the configured folders and process every new video file until SIGTERM/SIGINT.

    Stops on SIGTERM or SIGINT after files in progress finish (at most
    [processing] shutdown_timeout_seconds); what is left stays queued for the next start.
    SIGHUP reloads the config file; SIGUSR1 applies `vpod resume` / `vpod retry` requests.
    Under systemd (Type=notify) it reports READY, STATUS, RELOADING, STOPPING and WATCHDOG.
    """
    config = with_overrides(load_or_exit(config_path), workers=workers)
    if os.geteuid() == 0 and not (allow_root or config.allow_root):
        raise UsageProblem(
            "refusing to run as root: a daemon that rewrites media files should run as its own user "
            "(see systemd/vpod.service). Set allow_root = true in the config or pass --allow-root to override."
        )
    require_tools_or_exit()
    configure_logging(config.logging.level, config.logging.format, timestamps=config.logging.timestamps)
    default_inbox = DEFAULT_HOME.expanduser() / "inbox"
    if default_inbox in config.watch.paths:
        DEFAULT_HOME.expanduser().mkdir(mode=0o700, exist_ok=True)  # it holds the database too
    for path in config.watch.paths:
        if path == default_inbox:
            path.mkdir(parents=True, exist_ok=True)
    if resolve_format(config.logging.format, sys.stderr) == "console":
        folders = ", ".join(str(p) for p in config.watch.paths)
        click.echo(f"vpod: drop video files into {folders} (Ctrl-C stops)", err=True)
    # AlreadyRunning (75), StoreError (70), ListenError (71): vpod.cli.exits.
    code = run_daemon(
        config, dry_run=dry_run, load_config=lambda: with_overrides(load_config(config_path), workers=workers)
    )
    raise SystemExit(code)
