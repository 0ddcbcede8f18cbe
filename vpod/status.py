"""``vpod status``: what the daemon is doing, read from its database while it runs."""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpod.control import DaemonRecord
from vpod.db.records import CLOCK_SKEW_WARN_SECONDS, FileRecord, InProgress, Library, NodeRecord, QueueReport
from vpod.db.store import Store
from vpod.library_paths import LibraryPaths, store_library_paths
from vpod.outcomes import Reason, Unwatched
from vpod.results import as_lines, one_line
from vpod.watch.unwatched import REASONS


@dataclass(frozen=True)
class StatusReport:
    """The daemon's record plus the queue report, taken at ``taken_at`` (epoch seconds).

    ``config_error`` is set when the config file could not be loaded and the database was
    found by a lenient read of it (:func:`vpod.config.fallback_database_path`).
    ``gone``: paths among ``queue.last_failures`` whose file no longer exists (deleted
    or moved away since it failed; see :func:`is_gone`).
    """

    daemon: DaemonRecord
    queue: QueueReport
    database: str
    taken_at: float
    config_error: str | None = None
    gone: frozenset[str] = field(default=frozenset())
    claimed_elsewhere: tuple[dict[str, Any], ...] = ()  # roots another vpod holds (while running)
    libraries: tuple[Library, ...] = ()  # every library the database knows, by name
    files: tuple[tuple[str, FileRecord | None], ...] = ()
    """The files asked about (``vpod status PATH``): each path with its record (``None``:
    the database knows no file there)."""
    nodes: tuple[NodeRecord, ...] = ()
    """Every daemon node the database has seen recently (:meth:`Store.nodes`)."""
    config_file: str | None = None
    """The config file this command read (``vpod status --config``), shown when this
    node's daemon record names none (no daemon of this node has run)."""
    transcodes: dict[str, Any] = field(default_factory=dict)
    """The daemon's transcode lane (:mod:`vpod.daemon.transcodes`): ``running``,
    ``deferred``, and ``encodes`` (path → ``speed``, ``fps``); empty when none runs or waits."""

    def encode_of(self, path: str) -> dict[str, Any]:
        """``{"speed": ..., "fps": ...}`` of the running encode of ``path`` (empty: none)."""
        if not self.daemon.running:
            return {}
        encode = (self.transcodes.get("encodes") or {}).get(path)
        return encode if isinstance(encode, dict) else {}

    @property
    def running(self) -> bool:
        """A daemon runs: the one the ``daemon`` record names (checked on this host), or
        any node whose heartbeat is fresh (a node on another host cannot be checked by
        its pid)."""
        return self.daemon.running or any(n.alive for n in self.nodes)

    def library_of(self, path: str) -> str | None:
        """The name of the library whose folder is ``path``, if any."""
        return next((lib.name for lib in self.libraries if lib.path == path), None)

    @property
    def uptime_seconds(self) -> float | None:
        """Seconds since the daemon started, while it runs."""
        if not self.daemon.running or self.daemon.started_at is None:
            return None
        return max(0.0, self.taken_at - self.daemon.started_at)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``vpod status --json``); times in epoch seconds."""
        d = self.daemon
        return {
            "state": d.state,
            "running": self.running,
            "pid": d.pid if d.running else None,
            "uptime_seconds": _round(self.uptime_seconds),
            "started_at": d.started_at,
            "stopped_at": d.stopped_at,
            "unclean_stop": d.unclean_stop,
            "version": d.version,
            "config": d.config,
            "config_file": self.config_file,
            "config_error": self.config_error,
            "database": self.database,
            "watch_paths": list(d.watch_paths),
            "libraries": [{**lib._asdict(), "watched": lib.path in d.watch_paths} for lib in self.libraries],
            "unwatched_paths": list(d.unwatched_paths) if d.running else None,
            "unwatched": _unwatched(self) if d.running else None,
            "workers": d.workers if d.running else None,
            "paused": (
                {"path": d.paused_path, "error": d.paused_error, "since": d.paused_at} if d.state == "paused" else None
            ),
            "queue_depth": self.queue.queue_depth,
            "in_progress": [
                {
                    **f._asdict(),
                    "elapsed_seconds": _round(self.taken_at - f.started_at if f.started_at else None),
                    "progress_percent": None if f.progress_percent is None else round(f.progress_percent, 1),
                    # A dead owner's progress stopped: no time left is promised for it.
                    "eta_seconds": None if f.eta_seconds is None or f.owner_alive is False else round(f.eta_seconds),
                    # An encode's speed (media seconds per second) and frames per second, else null.
                    "speed": self.encode_of(f.path).get("speed"),
                    "fps": self.encode_of(f.path).get("fps"),
                }
                for f in self.queue.in_progress
            ],
            "counts": self.queue.counts,
            "last_batches": [b._asdict() for b in self.queue.last_batches],
            "last_failures": [{**f._asdict(), "gone": f.path in self.gone} for f in self.queue.last_failures],
            "waiting_for_space": [
                {**w._asdict(), "retry_in_seconds": round(max(0.0, w.retry_at - self.taken_at), 1)}
                for w in self.queue.waiting_for_space
            ],
            "claimed_elsewhere": list(self.claimed_elsewhere) if d.running else [],
            "transcodes": {
                "running": self.transcodes.get("running", 0) if d.running else 0,
                "deferred": self.transcodes.get("deferred", 0) if d.running else 0,
                "outside_hours": self.transcodes.get("outside_hours", 0) if d.running else 0,
                "next_window": self.transcodes.get("next_window") if d.running else None,
            },
            "nodes": [_node_dict(n) for n in self.nodes],
            **({"files": [_file_dict(path, record) for path, record in self.files]} if self.files else {}),
        }


def _node_dict(node: NodeRecord) -> dict[str, Any]:
    """One node, JSON-friendly; ``clock_skewed``: its clock is off from the database
    clock by more than :data:`~vpod.db.records.CLOCK_SKEW_WARN_SECONDS`."""
    return {
        **node._asdict(), "doing": list(node.doing),
        "heartbeat_age_seconds": round(node.heartbeat_age_seconds, 1),
        "clock_offset_seconds": _round(node.clock_offset_seconds),
        "clock_skewed": node.clock_skewed,
    }


def _file_dict(path: str, record: FileRecord | None) -> dict[str, Any]:
    """One file asked about, JSON-friendly: its state, last reason and error, and the
    policy that judged it with why (``known`` false: the database has no such file)."""
    if record is None:
        return {"path": path, "known": False}
    return {
        "path": record.path, "known": True, "state": record.state, "reason": record.reason, "error": record.error,
        "policy": record.policy_name, "policy_why": record.policy_why,
    }


def read_status(
    store: Store, *, batches: int = 5, failures: int = 10, config_error: str | None = None,
    paths: tuple[Path, ...] = (), config_file: str | None = None,
) -> StatusReport:
    """Take a :class:`StatusReport` from ``store``; ``paths``: files to report on too
    (their records, :meth:`Store.file_record`).

    Raises:
        StoreError / StoreBusy: the database cannot be read.
    """
    info = store.daemon_info()
    record = DaemonRecord.from_info(info)
    report = store.queue_report(batches=batches, failures=failures)
    gone = frozenset(f.path for f in report.last_failures if is_gone(f.path))
    # A path through another name of a library folder (a bind mount, a symlink, a mount
    # holding the library's marker) is looked up as that library's file.
    libraries = store_library_paths(store) if paths else None
    files = tuple((str(path), store.file_record(_in_library(libraries, path))) for path in paths)
    return StatusReport(
        record, report, store.location, time.time(), config_error, gone, _claimed_elsewhere(info),
        tuple(store.libraries()), files, tuple(store.nodes()), config_file, _transcodes(info),
    )


def _transcodes(info: dict[str, str]) -> dict[str, Any]:
    """The daemon's transcode lane (``transcodes``, JSON, :mod:`vpod.daemon.transcodes`)."""
    try:
        value = json.loads(info.get("transcodes") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_gone(shown: str) -> bool:
    """True when the file a failure names no longer exists: ``lstat`` says ENOENT (or
    ENOTDIR: a folder on its path became a file). ``shown`` is the path as the database
    reports it (:func:`vpod.results.display_path`); a name holding ``\\x`` escapes may
    stand for undecodable bytes, and a file vpod may not look at could still exist:
    neither counts as gone, so a failure is only hidden when it surely is."""
    if "\\x" in shown:
        return False
    try:
        os.lstat(shown)
    except OSError as exc:
        return exc.errno in (errno.ENOENT, errno.ENOTDIR)
    return False


def _claimed_elsewhere(info: dict[str, str]) -> tuple[dict[str, Any], ...]:
    """The roots the daemon leaves to another vpod (``claimed_elsewhere``, JSON, written by
    the daemon; see :mod:`vpod.watch.ownership`)."""
    try:
        held = json.loads(info.get("claimed_elsewhere") or "[]")
    except ValueError:
        return ()
    return tuple(h for h in held if isinstance(h, dict)) if isinstance(held, list) else ()


def _unwatched(status: StatusReport) -> list[dict[str, str]]:
    """The daemon's unwatched folders with their reasons; for a record of an older daemon
    (paths only), a folder another vpod holds is told apart from a missing one."""
    if status.daemon.unwatched:
        return list(status.daemon.unwatched)
    held = {str(h.get("root")) for h in status.claimed_elsewhere}
    return [
        {"path": p, "reason": (Unwatched.CLAIMED_ELSEWHERE if p in held else Unwatched.MISSING).value}
        for p in status.daemon.unwatched_paths
    ]


def _unwatched_lines(status: StatusReport) -> list[str]:
    """One heading per reason a folder is not watched (:data:`REASONS`), then its folders.
    Folders another vpod holds are told below with their holder."""
    lines = []
    by_reason: dict[str, list[dict[str, str]]] = {}
    for entry in _unwatched(status):
        by_reason.setdefault(entry.get("reason", Unwatched.MISSING.value), []).append(entry)
    for reason, entries in by_reason.items():
        if reason == Unwatched.CLAIMED_ELSEWHERE:
            continue  # the claimed_elsewhere lines name the holder
        lines.append(f"not watched ({REASONS.get(reason, reason)}):")
        for entry in entries:
            detail = f": {one_line(entry['detail'])}" if entry.get("detail") else ""
            lines.append(f"  {one_line(entry['path'])}{detail}")
    return lines


def format_status(status: StatusReport) -> str:
    """Human-readable lines for a terminal."""
    d, q = status.daemon, status.queue
    lines = []
    if d.running:
        lines.append(f"vpod: {d.state} (pid {d.pid}), up {_duration(status.uptime_seconds)}, version {d.version or '?'}")
    elif status.running:  # no daemon here; nodes elsewhere run on this database
        alive = [n.node for n in status.nodes if n.alive]
        lines.append(f"vpod: running on {len(alive)} node(s): {', '.join(one_line(n) for n in alive)}")
    else:
        how = " (it did not stop cleanly: crashed or killed)" if d.unclean_stop else ""
        lines.append(f"vpod: stopped{how}")
    config = d.config or (f"{status.config_file} (read by this command)" if status.config_file else "built-in defaults")
    lines.append(f"config: {config}   database: {status.database}")
    named = [(status.library_of(p), p) for p in d.watch_paths]
    if any(name for name, _ in named):
        lines.append("libraries: " + ", ".join(f"{one_line(n or '?')} ({one_line(p)})" for n, p in named))
    if status.config_error:
        lines.append(f"config error: {one_line(status.config_error)}")
        if d.running:
            lines.append("  the daemon keeps the configuration it last loaded; fix the file, then reload (SIGHUP)")
        else:
            lines.append("  `vpod run` refuses this file until it is fixed")
    if d.running:
        lines += _unwatched_lines(status)
    if d.state == "paused":
        lines.append(f"paused after a failure of {one_line(d.paused_path)}: {as_lines(d.paused_error, '    ')}")
        lines.append("  run `vpod resume` to go on")
    for held in status.claimed_elsewhere if d.running else ():
        lines.append(
            f"not watched: {one_line(str(held.get('root')))} is the library of the vpod of database "
            f"{one_line(str(held.get('database')))} (pid {held.get('pid')} on {one_line(str(held.get('host')))})"
        )
    lines += _node_lines(status)
    workers = f", {d.workers} workers" if d.running and d.workers is not None else ""
    lanes = status.transcodes if d.running else {}
    encoding = f" ({_lane_text(lanes)})" if lanes.get("running") or lanes.get("deferred") else ""
    lines.append(f"queue: {q.queue_depth} queued, {len(q.in_progress)} in progress{workers}{encoding}")
    if d.running and d.workers and int(lanes.get("running") or 0) >= d.workers and q.queue_depth:
        lines.append(
            "  every worker is encoding: queued header edits and remuxes wait for an encode to end; "
            "`vpod doctor` (transcode lane) says how to keep a worker free for them"
        )
    for f in q.in_progress:
        elapsed = _duration(status.taken_at - f.started_at) if f.started_at else "?"
        # A row can outlive its owner (kill -9): say so instead of showing it as running.
        # No owner record: a row of a daemon from before schema 6, alive only while one runs.
        gone = f.owner_alive is False or (f.owner_alive is None and not d.running)
        note = "  (its owner ended; taken up again by the daemon or the next run)" if gone else ""
        progress = _progress(f, live=not gone, encode=status.encode_of(f.path))
        lines.append(f"  {f.worker or '?':<10} {elapsed:>9}  {progress}{one_line(f.path)}{note}")
    for w in q.waiting_for_space:  # queued, but not before there is room: say why it does not start
        lines.append(f"  waiting for space: {one_line(w.path)}, retry in {_duration(max(0.0, w.retry_at - status.taken_at))}")
        lines.append(f"      {as_lines(w.error, ' ' * 6)}")
    lines.append("files: " + ", ".join(f"{n} {state}" for state, n in q.counts.items()))
    if q.last_batches:
        lines.append("last batches:")
        for b in q.last_batches:
            early = "  stopped early" if b.stopped_early else ""
            node = f"  on {one_line(b.node)}" if b.node and len(status.nodes) > 1 else ""
            lines.append(
                f"  {_clock(b.started_at)}  {b.batch_id}  {b.total_files} files: {b.success_count} ok, "
                f"{b.fail_count} failed, {b.skipped_count} skipped, {b.total_duration_seconds:.1f} s{early}{node}"
            )
    if q.last_failures:
        lines.append("last failures:")
        for failure in q.last_failures:
            if failure.path in status.gone:
                continue  # deleted or moved away since: nothing left to fix there
            judged = f"  (policy {one_line(failure.policy)})" if failure.policy else ""
            lines.append(f"  {_clock(failure.failed_at)}  {one_line(failure.path)}{judged}")
            lines.append(f"      {failure.reason or Reason.ERROR}: {as_lines(failure.error, ' ' * 8)}")
        not_shown = sum(1 for failure in q.last_failures if failure.path in status.gone)
        if not_shown:
            lines.append(f"  ({not_shown} more of files that no longer exist: not shown; --json marks them \"gone\")")
    for path, file in status.files:
        lines += _file_lines(path, file)
    return "\n".join(lines)


def _lane_text(lanes: dict[str, Any]) -> str:
    """The transcode lane in the queue line: encodes running, files waiting for a slot
    (``max_transcodes``), and files waiting for a ``transcode_hours`` window with when
    the next one opens."""
    outside = int(lanes.get("outside_hours") or 0)
    full = max(0, int(lanes.get("deferred") or 0) - outside)
    parts = [f"{lanes.get('running', 0)} encoding"]
    if full or not outside:
        parts.append(f"{full} waiting for a transcode slot (max_transcodes)")
    if outside:
        opens = lanes.get("next_window")
        parts.append(f"{outside} waiting for transcode_hours" + (f" (next window {opens})" if opens else ""))
    return ", ".join(parts)


def _in_library(libraries: LibraryPaths | None, path: Path) -> Path:
    """``path`` named through the known library folder holding it, else absolute."""
    located = libraries.locate(path) if libraries is not None else None
    return located[1] if located is not None else path.absolute()


def _node_lines(status: StatusReport) -> list[str]:
    """Every node: alive or not, host and pid, version, workers, heartbeat age and what
    it does; then a warning for each node whose clock is off from the database clock by
    more than :data:`~vpod.db.records.CLOCK_SKEW_WARN_SECONDS`."""
    if not status.nodes:
        return []
    alive = sum(1 for n in status.nodes if n.alive)
    lines = [f"nodes: {len(status.nodes)} ({alive} alive)"]
    for n in status.nodes:
        state = "alive" if n.alive else "gone "
        workers = f"{n.workers} workers" if n.workers is not None else "? workers"
        lines.append(
            f"  {one_line(n.node):<12} {state}  pid {n.pid} on {one_line(n.host)}, version {n.version or '?'}, "
            f"{workers}, heartbeat {_duration(n.heartbeat_age_seconds)} ago, {len(n.doing)} in progress"
        )
        lines += [f"      {one_line(path)}" for path in n.doing]
    for n in status.nodes:
        if n.clock_skewed and n.clock_offset_seconds is not None:
            way = "ahead of" if n.clock_offset_seconds > 0 else "behind"
            lines.append(
                f"warning: the clock of node {one_line(n.node)} is {abs(n.clock_offset_seconds):.1f} s {way} the "
                f"database clock (more than {CLOCK_SKEW_WARN_SECONDS:g} s): leases do not depend on it, but its "
                "log times disagree with the other nodes'; run NTP (timedatectl set-ntp true) on that host"
            )
    return lines


def _file_lines(path: str, record: FileRecord | None) -> list[str]:
    """A file asked about: its state and reason, and which policy judged it and why."""
    if record is None:
        return [f"{one_line(path)}: not known to this database"]
    why = f" ({record.reason})" if record.reason else ""
    lines = [f"{one_line(record.path)}: {record.state}{why}"]
    if record.policy_name:
        lines.append(f"  policy: {one_line(record.policy_name)} ({one_line(record.policy_why)})")
    if record.error:
        lines.append(f"  {as_lines(record.error, '    ')}")
    return lines


def _progress(f: InProgress, *, live: bool = True, encode: dict[str, Any] | None = None) -> str:
    """``43 %, 1m 2s left  `` for a remux that reported its progress (an encode, whose
    ``encode`` holds ``speed`` in media seconds per second and ``fps``:
    ``43 %, 0.82x, 24 fps, 1m 2s left  ``, as the web page writes it,
    :func:`vpod.web.page.progress_text`), else ``""``; no ETA when none is known (the
    tool ended, or the last estimate ran out before the next report); for a file whose
    owner ended (``live`` False) only where it stopped: ``43 % when it stopped  ``."""
    if f.progress_percent is None:
        return ""
    if not live:
        return f"{f.progress_percent:.0f} % when it stopped  "
    speed, fps = (encode or {}).get("speed"), (encode or {}).get("fps")
    parts = [f"{f.progress_percent:.0f} %"]
    if isinstance(speed, (int, float)):
        parts.append(f"{speed:.2f}x")
    if isinstance(fps, (int, float)):
        parts.append(f"{fps:.{1 if fps < 10 else 0}f} fps")
    if f.eta_seconds is not None:
        parts.append(f"{_duration(f.eta_seconds)} left")
    return ", ".join(parts) + "  "


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours or days else "", f"{minutes}m", f"{secs}s"]
    return " ".join(p for p in parts if p)
