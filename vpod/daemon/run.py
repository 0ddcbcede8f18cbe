"""``vpod run``'s entry point: the daemon in the foreground until a stop signal."""

from __future__ import annotations

from typing import Callable

from vpod.exitcodes import ExitCode
from vpod.config import VPOConfig
from vpod.daemon.lifecycle import Daemon
from vpod.notify import SystemdNotifier, forget_environ


def run_daemon(
    config: VPOConfig,
    *,
    dry_run: bool = False,
    load_config: Callable[[], VPOConfig] | None = None,
) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT; returns the exit status.

    Speaks sd_notify when systemd passed ``NOTIFY_SOCKET`` (the variables are then removed
    from the environment, so the tools vpod runs do not inherit them).

    Raises:
        StoreError: the database cannot be opened.
        ListenError: ``[http] listen`` cannot be bound.
    """
    notifier = SystemdNotifier.from_environ()
    forget_environ()
    daemon = Daemon(config, dry_run=dry_run, notifier=notifier, load_config=load_config)
    daemon.install_signal_handlers()
    try:
        daemon.startup()
    except BaseException:
        notifier.status("failed to start")
        raise
    try:
        daemon.main_loop()
    finally:
        daemon.shutdown()
    return ExitCode.SOFTWARE if daemon.crashed.is_set() else ExitCode.OK
