"""Shared pieces of the benchmark suite: figures, media, a daemon under test, /proc readings.

Nothing here asserts a time. Figures are collected as lists (one value per run) and
summarized as median, min and max by :mod:`report`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MARKER = b"vpodbench-0000000000"
"""The segment title of the template; each copy gets its own number in its place."""



class BenchFailure(Exception):
    """Something was lost or wrong (not merely slow): the suite exits non-zero."""


@dataclass
class Row:
    """One line of the results table.

    Attributes:
        section: the table it belongs to (``overhead``, ``scaling``, ...).
        name: what was measured.
        values: one figure per run (empty when skipped).
        unit: ``s``, ``ms``, ``MB``, ``×``, ``rows/s``, ``files`` ...
        goal: the goal in words (``≤ 1.10``), or ``""``.
        check: decides from the median whether the goal is met (``None``: no goal).
        note: how it was measured, or why it was skipped.
        skipped: the reason the row could not run here.
    """

    section: str
    name: str
    values: list[float] = field(default_factory=list)
    unit: str = ""
    goal: str = ""
    check: Callable[[float], bool] | None = None
    note: str = ""
    skipped: str = ""
    digits: int = 2

    def met(self) -> bool | None:
        """True/False against the goal (judged on the median), None without goal or figures."""
        if self.check is None or not self.values:
            return None
        return self.check(median(self.values))


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least ``pct`` % at or below it)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(rank) - 1]


# -- media -----------------------------------------------------------------------------


def make_template(folder: Path) -> Path:
    """The tiny MKV (about 3 KB) every benchmark copies: video, audio eng, audio jpn (default).

    The default policy makes English the default audio track: two default-flag
    changes, a header-only ``mkvpropedit`` edit, no remux. Its segment title is
    :data:`MARKER`, which :class:`MediaSource` replaces, so that no two copies have the
    same content (vpod rightly skips content it has already handled). Written without
    CRC-32 elements (``-write_crc32 0``), so the replacement leaves a valid file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "template.mkv"
    args = ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=10:duration=0.2"]
    for frequency in (400, 500):
        args += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:duration=0.2:sample_rate=8000"]
    args += ["-map", "0:0", "-map", "1:0", "-map", "2:0", "-c:0", "mpeg4", "-c:1", "aac", "-b:1", "16k", "-c:2", "aac",
             "-b:2", "16k", "-metadata:s:1", "language=eng", "-metadata:s:2", "language=jpn", "-disposition:0", "0",
             "-disposition:1", "0", "-disposition:2", "default", "-metadata", f"title={MARKER.decode()}",
             "-write_crc32", "0", "-default_mode", "passthrough", str(path)]
    subprocess.run(args, check=True)
    if path.read_bytes().count(MARKER) != 1:
        raise BenchFailure(f"{path}: the title marker is not in the file exactly once")
    return path


class MediaSource:
    """Unique copies of the template: every file one suite run writes has its own content.

    Args:
        template: from :func:`make_template`.
    """

    def __init__(self, template: Path) -> None:
        self.template = template
        self._data = template.read_bytes()
        self._count = 0

    @property
    def size(self) -> int:
        """Bytes per file."""
        return len(self._data)

    def content(self) -> bytes:
        """The next unique content: the template with a new number in the title marker."""
        self._count += 1
        return self._data.replace(MARKER, b"vpodbench-%010d" % self._count, 1)

    def copies(self, folder: Path, count: int, *, prefix: str = "f") -> list[Path]:
        """``count`` unique files in ``folder``, named ``{prefix}00000.mkv`` ..."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            path = folder / f"{prefix}{i:05d}.mkv"
            path.write_bytes(self.content())
            paths.append(path)
        return paths


def default_audio(path: Path) -> list[str]:
    """Languages of the audio tracks flagged default, as ``mkvmerge -J`` reads them."""
    data = json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)
    return [
        t["properties"].get("language", "und")
        for t in data["tracks"]
        if t["type"] == "audio" and t["properties"].get("default_track", True)
    ]


def check_normalized(paths: Iterable[Path], who: str) -> None:
    """Every file has English as its only default audio track.

    Raises:
        BenchFailure: naming the first file that does not.
    """
    for path in paths:
        found = default_audio(path)
        if found != ["eng"]:
            raise BenchFailure(f"{who}: {path} has default audio {found}, expected ['eng']")


# -- /proc -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of ``pid``, from ``/proc/PID/stat`` (fields 14
    and 15, in clock ticks; proc(5))."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_field(pid: int, name: str) -> int:
    """A ``kB`` or count field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``, ...)."""
    return status_field_path(f"/proc/{pid}/status", name)


def context_switches(pid: int) -> int:
    """Voluntary context switches summed over every thread: each is one wake-up and sleep."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += status_field_path(f"/proc/{pid}/task/{task}/status", "voluntary_ctxt_switches")
        except (OSError, KeyError):
            continue
    return total


def status_field_path(path: str, name: str) -> int:
    """The number in the ``name:`` line of a ``/proc`` status file."""
    with open(path) as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise KeyError(name)


def inotify_watches(pid: int) -> int:
    """inotify watches held by ``pid``: ``inotify wd:`` lines of its fdinfo files (proc(5))."""
    count = 0
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
                count += sum(1 for line in handle if line.startswith("inotify wd:"))
        except OSError:
            continue
    return count


# -- the daemon under test ---------------------------------------------------------------


def parse_ts(text: str) -> float:
    """A log line's ISO 8601 UTC timestamp as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (a policy's audio_compat, video_codec)
        return "{ " + ", ".join(f"{key} = {toml_value(v)}" for key, v in value.items()) + " }"
    return json.dumps(str(value))  # a TOML basic string accepts JSON's escapes


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A vpod config file; ``allow_root`` is set because the suite may run as root."""
    lines = ["allow_root = true"]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def vpod_env(home: Path, cpu_count: int | None = None) -> dict[str, str]:
    """Environment for a vpod subprocess: its own HOME, no inherited VPOD_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPOD_")}
    env.pop("INVOCATION_ID", None)
    env.pop("JOURNAL_STREAM", None)
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1"})
    if cpu_count is not None:
        env["VPOD_CPU_COUNT"] = str(cpu_count)
    return env


def vpod_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vpod", *args]


class LogTail:
    """Reads a JSON-lines log incrementally; parses only lines of the events asked for."""

    def __init__(self, path: Path, events: Iterable[str]) -> None:
        self.path = path
        self.wanted = {name: f'"event": "{name}"' for name in events}
        self.found: dict[str, list[dict[str, Any]]] = {name: [] for name in self.wanted}
        self._offset = 0
        self._rest = b""

    def poll(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            for name, marker in self.wanted.items():
                if marker in line:
                    try:
                        self.found[name].append(json.loads(line))
                    except ValueError:
                        pass
                    break


class Daemon:
    """``vpod run`` as a subprocess with JSON logs; see :meth:`start`.

    Args:
        work: a folder for its config, HOME, database and log.
        roots: watched folders.
        watch / processing / logging: extra config keys for those sections.
        events: log events to collect (``LogTail``).
        sections: more config keys by section, merged last (``database``: a PostgreSQL
            ``url``; ``node``: its ``name``).
    """

    def __init__(
        self,
        work: Path,
        roots: list[Path],
        *,
        watch: dict[str, Any] | None = None,
        processing: dict[str, Any] | None = None,
        level: str = "info",
        events: Iterable[str] = ("file_queued", "file_processed", "file_failed", "scan_completed"),
        name: str = "daemon",
        profile: Path | None = None,
        sections: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        work.mkdir(parents=True, exist_ok=True)
        (work / "home").mkdir(exist_ok=True)
        self.work = work
        self.log_path = work / f"{name}.log"
        self.db_path = work / f"{name}.db"
        config: dict[str, dict[str, Any]] = {
            "watch": {"paths": [str(r) for r in roots], **(watch or {})},
            "processing": {"workers": 1, **(processing or {})},
            "database": {"path": str(self.db_path)},
            "logging": {"level": level, "format": "json"},
        }
        for section, values in (sections or {}).items():
            config[section] = {**config.get(section, {}), **values}
        self.config = write_config(work / f"{name}.toml", config)
        self.tail = LogTail(self.log_path, {"daemon_started", "watch_started", *events})
        self.env = vpod_env(work / "home")
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.profile = profile
        self._spy: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> "Daemon":
        """Spawn it, with py-spy attached when ``profile`` was given; returns at once."""
        log = open(self.log_path, "ab")
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            vpod_command("run", "--config", str(self.config)), env=self.env, stdout=subprocess.DEVNULL, stderr=log
        )
        log.close()
        if self.profile is not None:
            self._spy = start_profiler(self.proc.pid, self.profile)
        return self

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.tail.found[name]

    def wait(self, ready: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
        """Poll the log until ``ready()``; the harness may poll, the daemon never does.

        Raises:
            BenchFailure: the daemon exited, or ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.tail.poll()
            if ready():
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise BenchFailure(f"vpod exited ({self.proc.returncode}) before {what}; log: {self.log_path}")
            if time.monotonic() > deadline:
                raise BenchFailure(f"timed out after {timeout:.0f} s waiting for {what}; log: {self.log_path}")
            time.sleep(interval)

    def wait_started(self, timeout: float = 60) -> None:
        """Until ``daemon_started`` and a ``watch_started`` per root."""
        self.wait(lambda: bool(self.events("daemon_started")), timeout=timeout, what="daemon_started")

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM, wait, return the exit status."""
        if self.proc is None:
            return 0
        if self._spy is not None:
            stop_profiler(self._spy, self.profile)
            self._spy = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise BenchFailure(f"vpod did not stop within {timeout:.0f} s of SIGTERM; log: {self.log_path}")
        finally:
            self.tail.poll()


# -- profiling -------------------------------------------------------------------------


def py_spy() -> str:
    """The py-spy executable (installed into the venv by ``contrib/dev.sh bench``)."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise BenchFailure("--profile needs py-spy: run the suite through contrib/dev.sh bench")
    return found


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """Attach py-spy to ``pid``: samples of the thread holding the GIL (where Python spends
    its time; waits are left out), 200 Hz, collapsed stacks
    (``--format raw``, one ``frame;frame;... count`` line per stack)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil", "--nonblocking",
         "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(spy: subprocess.Popen[bytes], output: Path | None) -> None:
    """SIGINT makes py-spy write its output; then summarize it beside (``.top.txt``)."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()
    if output is not None and output.exists():
        output.with_suffix(".top.txt").write_text(summarize_profile(output))


def summarize_profile(raw: Path, top: int = 30) -> str:
    """The functions with the most samples, on their own (self) and with callees (total)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    lines = [f"{samples} samples of the thread holding the GIL (py-spy --gil, 200 Hz)", "", "self %  function"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * count / max(samples, 1):5.1f}  {frame}")
    lines += ["", "total %  function (with what it calls)"]
    for frame, count in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * count / max(samples, 1):5.1f}  {frame}")
    return "\n".join(lines) + "\n"


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of ``fn()``."""
    start = time.monotonic()
    result = fn()
    return time.monotonic() - start, result
