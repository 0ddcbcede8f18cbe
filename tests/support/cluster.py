"""Several real ``vpod run`` nodes on one PostgreSQL database and one library folder.

Each :class:`Node` has its own config (``[node] name``, ``[database] url``, short
leases), its own ``HOME``, log file and environment (``PATH`` with a tool wrapper
first, libfaketime, a database URL through a :mod:`support.tcpproxy` proxy), and
reaches the one library folder through a path of its own: a bind mount (``mount
--bind``, when this process may mount: root with ``CAP_SYS_ADMIN``) or else a
symlink. :meth:`Cluster.close` stops every node and unmounts every bind mount.

Node processes are controlled by signal: :meth:`Node.kill` (SIGKILL, a crash),
:meth:`Node.freeze` / :meth:`Node.thaw` (SIGSTOP / SIGCONT, a node that stops being
scheduled, e.g. a laptop lid or a VM paused), :meth:`Node.stop` (SIGTERM).

Tests wait for conditions (:func:`wait_until`) with generous deadlines; nothing here
asserts how long anything took.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from support.daemon import DaemonProcess, Event, daemon_env, run_vpod, write_config
from vpod.config import DatabaseConfig

LEASE_SECONDS = 3.0
HEARTBEAT_SECONDS = 1.0
LIBRARY = "media"


def wait_until(condition: Callable[[], Any], *, timeout: float = 90, what: str = "", interval: float = 0.1,
               on_timeout: Callable[[], str] | None = None) -> Any:
    """Poll ``condition`` until it returns something true; return that.

    Raises:
        AssertionError: ``timeout`` seconds passed (a deadline for a hung test, not a
            speed check); the message says ``what`` was awaited and ``on_timeout()``.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}\n{extra}")
        time.sleep(interval)


def can_bind_mount(probe: Path) -> bool:
    """Whether this process may bind-mount (tried on two folders under ``probe``)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    source, target = probe / "src", probe / "dst"
    source.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        shutil.rmtree(probe, ignore_errors=True)
        return False
    subprocess.run(["umount", str(target)], check=True)
    shutil.rmtree(probe, ignore_errors=True)
    return True


@dataclass
class Node:
    """One ``vpod run``: ``name`` is its ``[node] name``, ``library`` its own path to
    the shared library folder."""

    name: str
    folder: Path
    library: Path
    config: Path
    env: dict[str, str]
    process: DaemonProcess | None = None
    logs: list[Path] = field(default_factory=list)
    frozen: bool = False

    # -- life ------------------------------------------------------------------------

    def start(self, *, wait: bool = True, timeout: float = 60) -> "Node":
        """Start (or restart) ``vpod run``; with ``wait``, until ``daemon_started``."""
        log = self.folder / f"run-{len(self.logs)}.log"
        self.logs.append(log)
        self.process = DaemonProcess(self.config, env=self.env, log_path=log)
        self.frozen = False
        if wait:
            self.process.wait_started(timeout)
        return self

    @property
    def pid(self) -> int | None:
        """The running daemon's pid, ``None`` when it is not running."""
        if self.process is None or self.process.proc.poll() is not None:
            return None
        return self.process.proc.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def kill(self) -> None:
        """SIGKILL, as a crash (its tools die with it: parent-death signal)."""
        if self.process is not None:
            if self.frozen:
                self.process.signal(signal.SIGCONT)
            self.process.kill()
            self.frozen = False

    def freeze(self) -> None:
        """SIGSTOP the daemon (its running tool, in its own session, goes on)."""
        assert self.process is not None
        self.process.signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        """SIGCONT."""
        assert self.process is not None
        self.process.signal(signal.SIGCONT)
        self.frozen = False

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM and wait; returns the exit status (``None`` if it was not running)."""
        if self.process is None:
            return None
        if self.frozen:
            self.thaw()
        return self.process.stop(timeout)

    # -- what it logged --------------------------------------------------------------

    def events(self, name: str | None = None, **fields: Any) -> list[Event]:
        """Every JSON line of every run of this node (``name``/``fields``: only those)."""
        out: list[Event] = []
        for log in self.logs:
            if not log.exists():
                continue
            for line in log.read_bytes().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if name is not None and event.get("event") != name:
                    continue
                if all(event.get(k) == v for k, v in fields.items()):
                    out.append(event)
        return out

    def tail(self, lines: int = 40) -> str:
        if not self.logs or not self.logs[-1].exists():
            return "(no log)"
        text = self.logs[-1].read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} ({self.logs[-1]}):\n" + "\n".join(text)

    def vpod(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run another ``vpod`` command with this node's config and environment."""
        return run_vpod([args[0], "--config", str(self.config), *args[1:]], env=self.env, timeout=timeout)

    def status(self, paths: Iterable[Path] = ()) -> dict[str, Any]:
        """``vpod status --json`` as this node reads it (with ``paths``: their records).

        Raises:
            AssertionError: the command failed.
        """
        done = self.vpod("status", "--json", *map(str, paths))
        assert done.returncode in (0, 3), f"vpod status failed ({done.returncode}): {done.stderr}"
        data: dict[str, Any] = json.loads(done.stdout)
        return data


class Cluster:
    """The nodes of one case, on one database and one library folder.

    Args:
        base: a private folder for this case (pytest's ``tmp_path``).
        database: the shared database's ``[database]`` section
            (:meth:`support.postgres.PostgresServer.database`: ``url`` and ``password_file``).
        policy: the ``[policy]`` table every node uses.
        settle_seconds: ``[watch] settle_seconds``.
        mounts: ``"bind"``, ``"symlink"`` or ``"auto"`` (bind when permitted).

    Attributes:
        library: the real library folder.
        how: ``"bind"`` or ``"symlink"``: how the nodes reach it.
    """

    def __init__(self, base: Path, database: DatabaseConfig, *, policy: dict[str, Any] | None = None,
                 settle_seconds: float = 0.5, mounts: str = "auto") -> None:
        self.base = base
        self.database = database
        self.policy = dict(policy or {})
        self.settle_seconds = settle_seconds
        self.library = base / "library"
        self.library.mkdir(parents=True, exist_ok=True)
        if mounts == "auto":
            mounts = "bind" if can_bind_mount(base / ".mount-probe") else "symlink"
        self.how = mounts
        self.nodes: list[Node] = []
        self._mounted: list[Path] = []

    def add(self, name: str, *, port: int | None = None, path_first: Path | None = None,
            extra_env: dict[str, str] | None = None, workers: int = 1, observer: str = "auto",
            lease_seconds: float = LEASE_SECONDS, heartbeat_seconds: float = HEARTBEAT_SECONDS,
            start: bool = True, extra: dict[str, dict[str, Any]] | None = None) -> Node:
        """Configure (and by default start) node ``name``.

        Args:
            port: this node's own PostgreSQL port (a :mod:`support.tcpproxy` proxy's),
                default the server's.
            path_first: a folder of tool wrappers put first on this node's ``PATH``.
            extra_env: more environment (libfaketime's ``LD_PRELOAD``...).
            extra: more config sections, merged over the defaults.
        """
        folder = self.base / "nodes" / name
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        library = folder / "library"
        if self.how == "bind":
            library.mkdir(exist_ok=True)
            subprocess.run(["mount", "--bind", str(self.library), str(library)], check=True)
            self._mounted.append(library)
        else:
            library.symlink_to(self.library, target_is_directory=True)
        sections: dict[str, Any] = {
            "node": {"name": name},
            "watch": {"libraries": {LIBRARY: str(library)}, "settle_seconds": self.settle_seconds,
                      "observer": observer, "poll_interval_seconds": 0.5},
            "database": {"url": self.url(port), "password_file": str(self.database.password_file),
                         "path": str(folder / "unused.db"), "lease_seconds": lease_seconds,
                         "lease_heartbeat_seconds": heartbeat_seconds},
            "processing": {"workers": workers, "shutdown_timeout_seconds": 5.0},
            "logging": {"format": "json", "level": "debug"},
            "policy": self.policy,
        }
        for key, table in (extra or {}).items():
            sections[key] = {**sections.get(key, {}), **table}
        config = write_config(folder / "config.toml", sections)
        env = daemon_env(home, **(extra_env or {}))
        if path_first is not None:
            env["PATH"] = f"{path_first}:{env.get('PATH', os.defpath)}"
        # Several nodes on 2 CPUs: each one counts 2 CPUs of its own (workers cap = half).
        env.setdefault("VPOD_CPU_COUNT", str(max(2, 2 * workers)))
        node = Node(name, folder, library, config, env)
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def detach(self, node: Node) -> None:
        """Take ``node``'s library away: its path becomes an empty folder (an unmounted
        mount point; a NAS late to mount)."""
        path = node.library
        if path in self._mounted:
            subprocess.run(["umount", str(path)], check=True)
            self._mounted.remove(path)
        elif path.is_symlink():
            path.unlink()
            path.mkdir()

    def attach(self, node: Node, target: Path | None = None) -> None:
        """Give ``node``'s path a folder again: ``target`` (default the library), by a
        bind mount or a symlink as the cluster does."""
        path, target = node.library, target or self.library
        if self.how == "bind":
            subprocess.run(["mount", "--bind", str(target), str(path)], check=True)
            self._mounted.append(path)
        else:
            path.rmdir()
            path.symlink_to(target, target_is_directory=True)

    def url(self, port: int | None = None) -> str:
        """The database URL, through ``port`` (a proxy) when given."""
        url = self.database.url
        if port is None:
            return url
        head, _, rest = url.partition("@")
        _, _, dbname = rest.partition("/")
        return f"{head}@127.0.0.1:{port}/{dbname}"

    def upstream(self) -> tuple[str, int]:
        """(host, port) of the PostgreSQL server, for a proxy."""
        hostport = self.database.url.partition("@")[2].partition("/")[0]
        host, _, port = hostport.rpartition(":")
        return host, int(port)

    def node(self, name: str) -> Node:
        [found] = [n for n in self.nodes if n.name == name]
        return found

    def pids(self) -> dict[int, str]:
        """``{pid: node name}`` of the nodes running now (for :class:`support.toolwatch.ToolWatch`)."""
        return {n.pid: n.name for n in self.nodes if n.pid is not None}

    def roots(self) -> list[Path]:
        """Every path to the library: the real one and each node's."""
        return [self.library, *(n.library for n in self.nodes)]

    def events(self, name: str, **fields: Any) -> list[tuple[str, Event]]:
        """(node name, event) for every node's ``name`` events."""
        return [(n.name, e) for n in self.nodes for e in n.events(name, **fields)]

    def tails(self) -> str:
        return "\n".join(n.tail() for n in self.nodes)

    def close(self) -> None:
        """Stop every node (SIGKILL after SIGTERM fails), unmount every bind mount."""
        for node in self.nodes:
            try:
                if node.running:
                    node.stop(timeout=20)
            except Exception:
                node.kill()
        for target in reversed(self._mounted):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self._mounted.clear()
