"""``vpod doctor``: checks an installation before it runs (or while it runs).

Each check yields a :class:`Finding` at level ``ok``, ``warn`` or ``fail``; ``fail``
marks a problem that keeps vpod from working (a missing or too old tool, a bad config,
a database it cannot write, an unreadable watch folder).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from vpod.config import VPOConfig
from vpod.cpu import workers_for
from vpod.db.diagnose import DatabaseFacts, Keepalive, diagnose
from vpod.db.secrets import hide_password
from vpod.db.store import LEASE_SECONDS, StoreError
from vpod.errors import ToolError
from vpod.lanes import lane_warning
from vpod.media.encoders import HARDWARE, SOFTWARE, drm_node_problem, encoder_names_in
from vpod.media.tools import ToolRunner
from vpod.media.transcode import AUDIO_ENCODERS
from vpod.writability import sandbox_refusal, why_not_writable
from vpod.watch.ownership import holds, read_marker

# The oldest releases in Debian's supported distributions (bullseye: FFmpeg 4.3,
# MKVToolNix 52). vpod relies on `ffprobe -of json -show_streams`, `mkvmerge -J` and
# `mkvpropedit --edit track:@N`, all older than these; older tools are untested.
MIN_VERSIONS: dict[str, tuple[int, ...]] = {
    "ffprobe": (4, 3),
    "ffmpeg": (4, 3),
    "mkvmerge": (52, 0),
    "mkvpropedit": (52, 0),
}
_VERSION_ARGS = {"ffprobe": "-version", "ffmpeg": "-version", "mkvmerge": "--version", "mkvpropedit": "--version"}
# "ffprobe version 5.1.9-0+deb12u1 ...", "ffmpeg version n6.1 ...", "mkvmerge v74.0.0 ('...') 64-bit"
_VERSION_RE = re.compile(r"^\S+ (?:version n?|v)(\d+(?:\.\d+)*)")
INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify")
SERVICE = "vpod.service"  # the unit contrib/install.sh installs


@dataclass(frozen=True)
class Finding:
    """One check's result: ``level`` is ``ok``, ``warn`` or ``fail``."""

    check: str
    level: str
    detail: str


def parse_version(output: str) -> tuple[int, ...] | None:
    """The version in a tool's ``-version``/``--version`` first line, e.g. ``(5, 1, 9)``."""
    match = _VERSION_RE.match(output.strip())
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def check_tools(runner: ToolRunner) -> Iterator[Finding]:
    """Each tool: present, and at least :data:`MIN_VERSIONS`."""
    for tool, minimum in MIN_VERSIONS.items():
        wanted = ".".join(map(str, minimum))
        try:
            out = runner.run([tool, _VERSION_ARGS[tool]], timeout_seconds=30).stdout
        except ToolError as exc:
            yield Finding(f"tool {tool}", "fail", str(exc))
            continue
        version = parse_version(out)
        shown = ".".join(map(str, version)) if version else out.strip().splitlines()[0][:60] if out.strip() else "?"
        if version is None:
            yield Finding(f"tool {tool}", "warn", f"cannot read its version ({shown!r}); vpod needs >= {wanted}")
        elif version < minimum:
            yield Finding(f"tool {tool}", "fail", f"{shown} is older than {wanted}, the oldest vpod supports")
        else:
            yield Finding(f"tool {tool}", "ok", f"{shown} (>= {wanted})")


def check_database(config: VPOConfig, *, node: str) -> Iterator[Finding]:
    """The database: SQLite can be written (or, when missing, created) by this user;
    PostgreSQL answers (the connection); then the schema version, and on PostgreSQL the
    TCP keepalives and a pooler that shares sessions (:func:`judge_database`). Facts are
    read by :func:`vpod.db.diagnose.diagnose` (``node``: this node's name), which
    migrates nothing."""
    yield from database_findings(config, node=node)[0]


def database_findings(config: VPOConfig, *, node: str) -> tuple[list[Finding], DatabaseFacts | None]:
    """:func:`check_database`'s findings and the facts they came from (``None`` when the
    database was not opened: missing, unreachable, or a SQLite file of another user that
    root must not open)."""
    findings: list[Finding] = []
    database = config.database
    path = database.path
    if not database.url and not path.exists():
        folder = next((p for p in path.parents if p.exists()), Path("/"))
        if os.access(folder, os.W_OK | os.X_OK):
            findings.append(Finding("database", "ok", f"{path} does not exist yet; it will be created in {folder}"))
        else:
            findings.append(Finding("database", "fail", f"{path} does not exist and {folder} is not writable by this user"))
        return findings, None
    if not database.url and os.geteuid() == 0 and (owner := path.stat().st_uid) != 0:
        # Opening it as root could leave root-owned SQLite side files the daemon cannot use.
        findings.append(Finding(
            "database", "ok", f"{path} exists (owner uid {owner}); check it as that user: runuser -u vpod -- vpod doctor"
        ))
        return findings, None
    try:
        facts = diagnose(database, node=node)
    except StoreError as exc:
        message = hide_password(str(exc))
        if "unsupported startup parameter" in message:  # PgBouncer's refusal of libpq's `options`
            message += (
                " (a PgBouncer between this node and PostgreSQL refuses the server settings vpod sends when it"
                " connects: connect vpod to PostgreSQL directly)"
            )
        findings.append(Finding("database", "fail", message))
        return findings, None
    if facts.unwritable:
        findings.append(Finding("database", "fail", facts.unwritable))
    elif facts.backend == "sqlite":
        findings.append(Finding("database", "ok", f"{path} is writable"))
    else:
        findings.append(Finding("database", "ok", f"{facts.location}: connected ({facts.server}, over {facts.transport})"))
    findings.extend(judge_database(facts))
    return findings, facts


SERVER_KEEPALIVE_MAX_SECONDS = 600
"""Longest time the server may take to find a vanished node's connection dead before
doctor warns (seconds): until then it keeps that node's session and its catch-up scan
lock (other nodes skip that library's catch-up scans meanwhile)."""


def judge_database(facts: DatabaseFacts, *, lease_seconds: float = LEASE_SECONDS) -> Iterator[Finding]:
    """Findings from a database's facts.

    - schema: none yet or this vpod's (ok); older (it is upgraded at the next start; on
      a database several nodes share, a warning: every node must then run this
      version); newer than this vpod understands (fail: this node refuses to claim).
    - keepalives, TCP to PostgreSQL only: this node's socket must find a vanished server
      within ``lease_seconds`` (else warn), and the server should find a vanished node
      within :data:`SERVER_KEEPALIVE_MAX_SECONDS`.
    - pooler: a pooler that shares server sessions between clients (PgBouncer
      ``pool_mode = transaction`` or ``statement``) breaks session advisory locks,
      ``LISTEN``/``NOTIFY`` and session settings: fail.
    """
    supported, found = facts.schema_supported, facts.schema_found
    if found is None:
        yield Finding("schema", "ok", f"no vpod schema yet: the first vpod to start creates version {supported}")
    elif found > supported:
        yield Finding(
            "schema", "fail",
            f"version {found} is newer than this vpod understands ({supported}): it refuses to claim work "
            "from this database; upgrade vpod on this node",
        )
    elif found < supported:
        shared = facts.backend != "sqlite"
        yield Finding(
            "schema", "warn" if shared else "ok",
            f"version {found}, older than this vpod's ({supported}): it is upgraded when this vpod starts"
            + ("; then upgrade vpod on every node (an older vpod refuses a newer schema)" if shared else ""),
        )
    else:
        yield Finding("schema", "ok", f"version {found}, this vpod's")
    if facts.transport == "unix":
        yield Finding("keepalive", "ok", "Unix socket: a local server, no TCP keepalives needed")
    client, server = facts.client_keepalive, facts.server_keepalive
    if client is not None:
        if not client.enabled:
            yield Finding(
                "keepalive", "warn",
                "TCP keepalives are off on this node's connections: an idle connection to a server that vanished "
                "(a cable, a firewall dropping the state) is never noticed; remove keepalives=0 from the URL",
            )
        elif client.dead_after_seconds > lease_seconds:
            yield Finding(
                "keepalive", "warn",
                f"this node finds a vanished server after {_keepalive_text(client)}, longer than a lease "
                f"({lease_seconds:g} s): set keepalives_idle, keepalives_interval and keepalives_count lower in the URL",
            )
        else:
            yield Finding("keepalive", "ok", f"this node finds a vanished server after {_keepalive_text(client)}")
    if server is not None:
        if server.dead_after_seconds > SERVER_KEEPALIVE_MAX_SECONDS:
            yield Finding(
                "keepalive server", "warn",
                f"the server finds a vanished node after {_keepalive_text(server)}: until then that node's catch-up "
                "scan lock stays held; set tcp_keepalives_idle = 60, tcp_keepalives_interval = 10, "
                "tcp_keepalives_count = 6 in postgresql.conf",
            )
        else:
            yield Finding("keepalive server", "ok", f"the server finds a vanished node after {_keepalive_text(server)}")
    if facts.pooler is not None:
        if facts.pooler.shares_sessions:
            yield Finding(
                "pooler", "fail",
                f"a pooler shares server sessions between connections (PgBouncer pool_mode = transaction or "
                f"statement): {facts.pooler.evidence}. vpod's scan locks, LISTEN/NOTIFY and session settings need a "
                "session of their own: connect to PostgreSQL directly, or to a pool in pool_mode = session",
            )
        else:
            yield Finding("pooler", "ok", f"no pooler sharing sessions: {facts.pooler.evidence}")


def _keepalive_text(keepalive: Keepalive) -> str:
    return (
        f"about {keepalive.dead_after_seconds} s (first probe after {keepalive.idle_seconds} s idle, "
        f"{keepalive.count} probes {keepalive.interval_seconds} s apart)"
    )


def check_watch_paths(config: VPOConfig) -> Iterator[Finding]:
    """Each watch root exists, is a readable folder, and (warning) is writable: not on a
    read-only mount, not immutable, writable by this user (:mod:`vpod.writability`)."""
    for root in config.watch.paths:
        name = f"watch {root}"
        if not root.exists():
            yield Finding(name, "warn", "does not exist; vpod starts watching when it appears")
        elif not root.is_dir():
            yield Finding(name, "fail", "is not a folder")
        elif not os.access(root, os.R_OK | os.X_OK):
            yield Finding(name, "fail", "is not readable by this user")
        elif (refusal := why_not_writable(root, f"the folder {root}", suggest=root)) is not None:
            # The same words as the reason a file there fails with (vpod.writability).
            yield Finding(name, "warn", refusal.sentence())
        else:
            yield Finding(name, "ok", "readable and writable")


def _systemd_paths(value: str) -> list[Path]:
    """Paths of a ``systemctl show`` list property; ``-`` (may be missing) and ``+``
    (relative to RootDirectory=) prefixes dropped (systemd.exec(5), ReadWritePaths=)."""
    return [Path(item.lstrip("-+")) for item in value.split() if item.lstrip("-+").startswith("/")]


def check_service_sandbox(config: VPOConfig, runner: ToolRunner, unit: str = SERVICE) -> Iterator[Finding]:
    """Under the systemd unit, ``ProtectSystem=strict`` makes every path outside the unit's
    ``ReadWritePaths=`` (and its ``StateDirectory=`` under /var/lib) read-only for vpod,
    which a check run outside the unit cannot see: ask systemd (``systemctl show``)
    and name each watch folder outside them. Nothing when the unit is not installed or
    systemd is not running."""
    try:
        out = runner.run(
            ["systemctl", "show", unit, "--property=LoadState,ProtectSystem,ReadWritePaths,StateDirectory"],
            timeout_seconds=30,
        ).stdout
    except ToolError:
        return
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if props.get("LoadState") != "loaded" or props.get("ProtectSystem") != "strict":
        return
    writable = _systemd_paths(props.get("ReadWritePaths", ""))
    writable += [Path("/var/lib") / name for name in props.get("StateDirectory", "").split()]
    outside = [root for root in config.watch.paths if not any(root == w or w in root.parents for w in writable)]
    for root in outside:
        yield Finding(f"sandbox {root}", "warn", sandbox_refusal(f"the folder {root}", unit, root).sentence())
    if not outside:
        yield Finding("sandbox", "ok", f"{unit}: every watch folder is in its ReadWritePaths= or StateDirectory=")
def check_libraries(config: VPOConfig, *, database_id: str | None = None) -> Iterator[Finding]:
    """Each watch root's library marker (:mod:`vpod.watch.ownership`): a folder a vpod
    with another database holds is left alone by this one (``fail``). A marker of this
    database (``database_id``, :attr:`vpod.db.diagnose.DatabaseFacts.database_id`) is
    this vpod's, whichever node of it wrote it: nodes of one database share a root, so
    a running node there is information (``ok``), as the daemon judges it. Without
    ``database_id`` (the database was not opened: as root doctor must not leave
    root-owned SQLite files) its own marker is recognized by the database path and host
    it names."""
    host, now = socket.gethostname(), time.time()
    for root in config.watch.paths:
        found = read_marker(root)
        if found is None:
            continue
        marker, locked = found
        name = f"library {root}"
        running = "its daemon runs" if locked else "no daemon runs now"
        if marker is not None and database_id and marker.database_id == database_id:
            if locked or (marker.host != host and not marker.released and not marker.stale(now)):
                yield Finding(
                    name, "ok",
                    f"this database's library, held now by its node at pid {marker.pid} on {marker.host}: "
                    "nodes of one database share the folder",
                )
            else:
                yield Finding(name, "ok", f"this database's library ({running})")
        elif marker is not None and marker.host == host and marker.database == str(config.database.path):
            yield Finding(name, "ok", f"this database's library ({running})")
        elif holds(marker, locked, database_id=database_id or "", host=host, now=now):
            who = marker.describe(now) if marker else "a running vpod (its marker is unreadable)"
            yield Finding(
                name, "fail",
                f"held by {who}: this vpod leaves the folder alone while that one runs "
                f"(two vpods with different databases would rewrite each other's files)",
            )
        else:
            who = marker.describe(now) if marker else "an unreadable marker"
            yield Finding(name, "ok", f"marked by {who}, which has ended; vpod takes it over")


def count_folders(roots: tuple[Path, ...], *, recursive: bool) -> int:
    """Folders an inotify observer would watch: each root, plus its subfolders when recursive
    (symlinked folders are not followed, as the watcher does not follow them)."""
    total = 0
    for root in roots:
        if not root.is_dir():
            continue
        if not recursive:
            total += 1
            continue
        for _dirpath, _dirnames, _files in os.walk(root):
            total += 1
    return total


def check_inotify(config: VPOConfig, sysctl: Path = INOTIFY_SYSCTL) -> Finding:
    """inotify limits (inotify(7), "/proc interfaces") against the folders to watch: one
    watch per folder, one inotify instance per root; and the queue length
    ``max_queued_events``, shown (events beyond it are lost; vpod then walks the roots
    again, ``watch_events_lost``)."""
    if config.watch.observer == "polling":
        return Finding("inotify", "ok", "not used (observer = polling)")
    try:
        watches = int((sysctl / "max_user_watches").read_text())
        instances = int((sysctl / "max_user_instances").read_text())
    except (OSError, ValueError):
        return Finding("inotify", "warn", f"cannot read {sysctl}: limits unknown")
    try:
        queued: object = int((sysctl / "max_queued_events").read_text())
    except (OSError, ValueError):
        queued = "unknown"
    folders = count_folders(config.watch.paths, recursive=config.watch.recursive)
    roots = len(config.watch.paths)
    detail = (
        f"{folders} folders to watch, fs.inotify.max_user_watches = {watches}; {roots} roots, max_user_instances = {instances}; "
        f"fs.inotify.max_queued_events = {queued} (events beyond it are lost and the roots walked again)"
    )
    if folders > watches or roots > instances:
        return Finding(
            "inotify",
            "warn",
            detail + ": too low, vpod falls back to polling; raise it, e.g. "
            "`sysctl fs.inotify.max_user_watches=524288` (and in /etc/sysctl.d/)",
        )
    if folders > watches * 0.8:
        return Finding("inotify", "warn", detail + ": close to the limit (other programs of this user share it)")
    return Finding("inotify", "ok", detail)


def check_transcode_lane(config: VPOConfig) -> Finding:
    """A worker free for header edits and remuxes while encodes run: ``max_transcodes``
    below the workers in force when a policy of the config encodes (warning otherwise:
    header edits would wait behind encodes; :func:`vpod.lanes.lane_warning`). The workers
    in force: :func:`vpod.cpu.workers_for` (not set: half the CPUs, plus
    ``max_transcodes`` when a policy encodes)."""
    workers = workers_for(config)
    max_transcodes = config.processing.max_transcodes
    wide = lane_warning(workers.used, max_transcodes, workers.encoding)
    if wide is not None:
        return Finding("transcode lane", "warn", wide)
    if workers.used <= max_transcodes:  # one worker, and no policy of the config encodes
        return Finding(
            "transcode lane", "ok",
            "one worker, and no policy of the config encodes; a folder .vpod.toml that does (it cannot be known up "
            "front) would make header edits wait for its encodes: then set workers = 2 (and max_transcodes = 1)",
        )
    how = " (workers not set: half the CPUs plus max_transcodes, as a policy encodes)" if (
        workers.requested is None and workers.encoding
    ) else ""
    return Finding(
        "transcode lane", "ok",
        f"at most {max_transcodes} of {workers.used} workers encode at once{how}; the others take header edits and remuxes",
    )


FOLDER_POLICIES_NOTE = (
    "folder policy files (.vpod.toml) cannot be known up front: the encoders they name are not checked"
)


def needed_encoders(config: VPOConfig) -> dict[str, list[str]]:
    """The ffmpeg encoders the configured policies (``[policy]``, named ``"default"``, and
    every ``[policies.NAME]``) encode with → the names of the policies needing each, in
    the order first met. A video codec needs its software encoder (:data:`SOFTWARE`: the
    fallback of a hardware one) and, for ``encoder = "vaapi"`` / ``"nvenc"`` / ``"qsv"``,
    that hardware encoder (:data:`HARDWARE`); ``audio_compat`` and ``audio_convert`` the
    audio encoder of their codec (:data:`vpod.media.transcode.AUDIO_ENCODERS`)."""
    needed: dict[str, list[str]] = {}
    for name, policy in (("default", config.policy), *config.policies):
        names: list[str] = []
        video = policy.video_codec
        if video.codec in SOFTWARE:
            names.append(SOFTWARE[video.codec])
            if video.encoder in HARDWARE:
                names.append(HARDWARE[video.encoder][video.codec])
        names += [AUDIO_ENCODERS[entry.codec] for entry in policy.audio_compat if entry.codec in AUDIO_ENCODERS]
        if policy.audio_convert.active and policy.audio_convert.to in AUDIO_ENCODERS:
            names.append(AUDIO_ENCODERS[policy.audio_convert.to])
        for encoder in names:
            users = needed.setdefault(encoder, [])
            if name not in users:
                users.append(name)
    return needed


def _uses_vaapi(config: VPOConfig) -> list[str]:
    """The policies whose ``video_codec`` asks for ``encoder = "vaapi"``."""
    return [
        name for name, policy in (("default", config.policy), *config.policies)
        if policy.video_codec.codec in SOFTWARE and policy.video_codec.encoder == "vaapi"
    ]  # fmt: skip


def _not_drm(device: str) -> str:
    """:func:`vpod.media.encoders.drm_node_problem`, with a device that vanished or cannot
    be looked at said as such."""
    try:
        return drm_node_problem(device)
    except OSError as exc:
        return f"[processing] vaapi_device {device} cannot be looked at ({exc.strerror or exc})"


def check_encoders(config: VPOConfig, runner: ToolRunner) -> Iterator[Finding]:
    """Finding ``encoders``: whether this ffmpeg has every encoder the configured policies
    need (:func:`needed_encoders`), from one ``ffmpeg -hide_banner -encoders`` run (none
    when no policy encodes). A missing software or audio encoder: warn (the files that
    need it fail); a missing hardware one: warn (software encodes instead). Then, when a
    policy asks for ``encoder = "vaapi"``, finding ``vaapi device``: whether ``[processing]
    vaapi_device`` exists, is a DRM render node (a character device of major 226,
    :func:`vpod.media.encoders.drm_node_problem`) and this user can read and write it (ok/warn; under the unit
    ``PrivateDevices=yes`` hides it: README "Encoders under the unit")."""
    needed = needed_encoders(config)
    if not needed:
        yield Finding("encoders", "ok", f"no configured policy encodes; {FOLDER_POLICIES_NOTE}")
    else:
        try:
            have = encoder_names_in(runner.run(["ffmpeg", "-hide_banner", "-encoders"], timeout_seconds=30).stdout)
        except ToolError as exc:
            have = None
            yield Finding("encoders", "warn", f"cannot list ffmpeg's encoders ({exc}); the policies need "
                          f"{', '.join(needed)}; {FOLDER_POLICIES_NOTE}")
        if have is not None:
            hardware = {n for names in HARDWARE.values() for n in names.values()}
            wanted = "; ".join(f"{encoder} ({', '.join(users)})" for encoder, users in needed.items())
            missing = [e for e in needed if e not in have and e not in hardware]
            missing_hw = [e for e in needed if e not in have and e in hardware]
            if missing or missing_hw:
                parts = []
                ffmpeg = f"this ffmpeg ({shutil.which('ffmpeg') or 'ffmpeg'})"
                if missing:
                    parts.append(
                        f"{ffmpeg} lacks {', '.join(missing)}: the files whose plans need them fail; install an "
                        "ffmpeg built with them (Debian's and Ubuntu's `ffmpeg` package has them all: "
                        "apt install ffmpeg)"
                    )
                if missing_hw:
                    parts.append(f"{ffmpeg} lacks {', '.join(missing_hw)}: the software encoder runs instead")
                yield Finding("encoders", "warn", f"{'; '.join(parts)}. Needed: {wanted}; {FOLDER_POLICIES_NOTE}")
            else:
                yield Finding("encoders", "ok", f"ffmpeg has every encoder the policies need: {wanted}; {FOLDER_POLICIES_NOTE}")
    vaapi = _uses_vaapi(config)
    if vaapi:
        device = config.processing.vaapi_device
        users = ", ".join(vaapi)
        if not os.path.exists(device):
            yield Finding(
                "vaapi device", "warn",
                f"[processing] vaapi_device {device} does not exist (policies asking for encoder = \"vaapi\": {users}): "
                "vpod encodes in software instead (encoder_fallback); under the systemd unit PrivateDevices=yes hides "
                "it: see README \"Encoders under the unit\"",
            )
        elif _not_drm(device):
            yield Finding(
                "vaapi device", "warn",
                f"{_not_drm(device)} (policies asking for encoder = \"vaapi\": {users}): vpod encodes in "
                "software instead (encoder_fallback); set [processing] vaapi_device to the render node",
            )
        elif not os.access(device, os.R_OK | os.W_OK):
            yield Finding(
                "vaapi device", "warn",
                f"[processing] vaapi_device {device} is not readable and writable by this user (policies: {users}): "
                "add the user to its group (render or video; under the unit SupplementaryGroups=render video, "
                "README \"Encoders under the unit\"); until then vpod encodes in software",
            )
        else:
            rdev = os.stat(device).st_rdev  # a character device: _not_drm said so
            yield Finding(
                "vaapi device", "ok",
                f"{device} is a DRM render node ({os.major(rdev)}:{os.minor(rdev)}), readable and writable (policies: {users})",
            )


def run_checks(config: VPOConfig | None, runner: ToolRunner) -> list[Finding]:
    """Every check; with ``config`` ``None`` (it did not load) only the tools are checked."""
    findings = list(check_tools(runner))
    if config is not None:
        database, facts = database_findings(config, node=config.node.node_name)
        findings.extend(database)
        findings.extend(check_watch_paths(config))
        findings.extend(check_libraries(config, database_id=facts.database_id if facts else None))
        findings.append(check_inotify(config))
        findings.append(check_transcode_lane(config))
        findings.extend(check_encoders(config, runner))
        findings.extend(check_service_sandbox(config, runner))
    return findings
