"""systemd/vpod.service: the keys issue 6 asks for, and systemd-analyze's exposure <= 2.0."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from vpod.config import ProcessingConfig, load_config

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "vpod.service"
EXAMPLE = Path(__file__).resolve().parents[2] / "contrib" / "config.example.toml"
MAX_EXPOSURE = 2.0


def unit_keys(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → values (keys may repeat in unit files)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


def seconds(value: str) -> float:
    units = {"s": 1, "min": 60, "ms": 0.001}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def test_unit_has_the_service_contract():
    service = unit_keys(UNIT)["Service"]
    assert service["Type"] == ["notify"]
    assert service["User"] == ["vpod"]
    assert service["Restart"] == ["on-failure"]
    assert service["StateDirectory"] == ["vpod"]
    assert service["ConfigurationDirectory"] == ["vpod"]
    assert "-HUP" in service["ExecReload"][0] and "$MAINPID" in service["ExecReload"][0]
    assert "--config /etc/vpod/config.toml" in service["ExecStart"][0]
    assert seconds(service["WatchdogSec"][0]) > 0
    stop_timeout = seconds(service["TimeoutStopSec"][0])
    # 5 s: the grace shutdown() gives threads after killing the tools
    assert stop_timeout > ProcessingConfig().shutdown_timeout_seconds + 5
    assert stop_timeout > load_config(EXAMPLE).processing.shutdown_timeout_seconds + 5
    assert "AF_UNIX" in service["RestrictAddressFamilies"][0]  # sd_notify needs it


def test_stop_signals_vpod_alone_so_its_tools_finish_their_file():
    """KillMode=mixed: SIGTERM to the main process only; the default (control-group) sends it
    to the running mkvmerge/ffmpeg too, which ended remuxes with status -15 instead of
    letting vpod drain (issue 11, item 10). The real `systemctl stop` during a remux:
    contrib/systemd-e2e.sh."""
    service = unit_keys(UNIT)["Service"]
    assert service["KillMode"] == ["mixed"]
    assert service.get("SendSIGKILL", ["yes"]) == ["yes"]  # what is left at the end is still killed


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_security_exposure_at_most_2():
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    last = result.stdout.strip().splitlines()[-1]
    # "→ Overall exposure level for vpod.service: 1.1 OK 🙂"
    exposure = float(last.split(":")[1].split()[0])
    assert exposure <= MAX_EXPOSURE, result.stdout
    # --threshold uses a 0-100 scale and exits non-zero above it
    threshold = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    assert threshold.returncode == 0, threshold.stdout[-2000:]
    details = json.loads(
        subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--json=short", str(UNIT)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    )
    assert any(d["name"].startswith("CapabilityBoundingSet") and d["set"] for d in details)


def test_outgoing_calls_are_not_filtered():
    """Issue 16 (fix 1): IPAddressDeny=any + IPAddressAllow=localhost filter packets both
    ways (systemd.resource-control(5)), so notifications and a remote *arr, media server or
    PostgreSQL were blocked under the shipped unit. Incoming calls are limited by
    [http] listen (localhost by default) instead; the README says why."""
    service = unit_keys(UNIT)["Service"]
    assert "IPAddressDeny" not in service and "IPAddressAllow" not in service
    readme = (UNIT.parents[1] / "README.md").read_text()
    assert "IPAddressAllow=localhost" not in readme
