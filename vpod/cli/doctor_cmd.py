"""``vpod doctor``: check tools, config, database, watch folders, inotify limits and encoders."""

from __future__ import annotations

import json
import os

import click

from vpod.cli.common import config_option
from vpod.config import load_config
from vpod.doctor import Finding, run_checks
from vpod.errors import ConfigError
from vpod.exitcodes import ExitCode
from vpod.media.tools import ToolRunner

_MARK = {"ok": "[ OK ]", "warn": "[WARN]", "fail": "[FAIL]"}


@click.command("doctor")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor_command(config_path: str | None, as_json: bool) -> None:
    """Check that vpod can run: tool versions, config, database, watch folders, inotify.

    Permissions are checked for the user running this command: check as the service
    user, as root (`runuser -u vpod -- vpod doctor --config /etc/vpod/config.toml`). Exit status: 0
    when nothing blocks vpod (warnings allowed), 1 otherwise.
    """
    findings: list[Finding] = []
    try:
        config = load_config(config_path)
        findings.append(Finding("config", "ok", str(config.source) if config.source else "built-in defaults (no file)"))
    except ConfigError as exc:
        config = None
        findings.append(Finding("config", "fail", str(exc)))
    findings.extend(run_checks(config, ToolRunner(30)))
    if os.geteuid() == 0:
        findings.append(Finding("user", "warn", "running as root: permission checks reflect root, not the service user"))
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{_MARK[f.level]} {f.check}: {f.detail}")
    failed = [f for f in findings if f.level == "fail"]
    if not as_json:
        click.echo(f"vpod doctor: {len(failed)} blocking problem(s)" if failed else "vpod doctor: no blocking problem")
    raise SystemExit(ExitCode.CHECK_FAILED if failed else ExitCode.OK)
