"""Remux: the CPU vpod spends per remuxed file against the bare tool commands.

The remux set: copies of a tiny MKV (video, subtitle eng, audio jpn default, audio eng)
that the default policy must reorder (audio before subtitles, English first) and whose
default flags it changes: one ``mkvmerge`` remux per file. CPU is user + system time of
the children, from ``getrusage(RUSAGE_CHILDREN)`` around each command (the tools vpod
starts are its children, so they count). vpod's figure is ``vpod process --workers 1``
over the set, minus the same command over an empty folder (its start-up), divided by
the number of files. The floor is the bare ``mkvmerge -J FILE`` + ``mkvmerge`` with the
very arguments vpod builds (:func:`vpod.media.remux.mkvmerge_args`), as a shell loop
over fresh copies of the same files. Each round runs the floor right before vpod.

Beside it, without a goal: a container change (an MP4 with H.264 and AAC, English
default, made an MKV under ``container = "mkv"``). vpod must probe an MP4 with
``ffprobe`` as well (``mkvmerge`` cannot see every stream of every MP4), so its floor
here is ``mkvmerge -J`` + ``ffprobe`` + ``mkvmerge``.
"""

from __future__ import annotations

import json
import resource
import shlex
import subprocess
from pathlib import Path

from vpod.media.probe import probe
from vpod.media.remux import mkvmerge_args
from vpod.media.tools import ToolRunner
from vpod.policy.planner import plan
from vpod.policy.policy import Policy

from common import MARKER, BenchFailure, MediaSource, Row, check_normalized, vpod_command, vpod_env, write_config


def make_mp4_template(folder: Path) -> Path:
    """An MP4 (H.264 video, AAC English default) titled :data:`MARKER`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "container-template.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=10:duration=0.2",
         "-f", "lavfi", "-i", "sine=frequency=400:duration=0.2:sample_rate=8000", "-c:v", "libx264", "-c:a", "aac",
         "-b:a", "16k", "-metadata:s:a:0", "language=eng", "-disposition:a:0", "default",
         "-metadata", f"title={MARKER.decode()}", str(path)],
        check=True,
    )  # fmt: skip
    if path.read_bytes().count(MARKER) != 1:
        raise BenchFailure(f"{path}: the title marker is not in the file exactly once")
    return path


def make_remux_template(folder: Path) -> Path:
    """The remux set's template (see the module docstring), titled :data:`MARKER` so
    that :class:`MediaSource` makes each copy unique."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "remux-template.mkv"
    srt = folder / "remux.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,150\nHi\n\n")
    args = ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=10:duration=0.2",
            "-i", str(srt)]  # fmt: skip
    for frequency in (400, 500):
        args += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:duration=0.2:sample_rate=8000"]
    args += ["-map", "0:0", "-map", "1:0", "-map", "2:0", "-map", "3:0", "-c:0", "mpeg4", "-c:1", "srt", "-c:2", "aac",
             "-b:2", "16k", "-c:3", "aac", "-b:3", "16k", "-metadata:s:1", "language=eng", "-metadata:s:2", "language=jpn",
             "-metadata:s:3", "language=eng", "-disposition:0", "0", "-disposition:1", "0", "-disposition:2", "default",
             "-disposition:3", "0", "-metadata", f"title={MARKER.decode()}", "-write_crc32", "0", "-default_mode",
             "passthrough", str(path)]  # fmt: skip
    subprocess.run(args, check=True)
    if path.read_bytes().count(MARKER) != 1:
        raise BenchFailure(f"{path}: the title marker is not in the file exactly once")
    return path


def remux_arguments(template: Path, policy: Policy) -> list[str]:
    """vpod's own ``mkvmerge`` arguments for ``template`` under ``policy``, with
    ``{out}`` and ``{in}`` where the file names go.

    Raises:
        BenchFailure: the plan is not a remux.
    """
    media = probe(template, ToolRunner(60))
    the_plan = plan(policy, media)
    if the_plan.is_empty:
        raise BenchFailure(f"{template.name}: nothing to do under the policy")
    args = mkvmerge_args(media, the_plan, Path("/OUT"))
    return [{"/OUT": "{out}", str(template.absolute()): "{in}"}.get(a, a) for a in args]


def children_cpu(fn) -> float:  # type: ignore[no-untyped-def]
    """User + system CPU seconds of the children ``fn()`` waits for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


FFPROBE = "ffprobe -v error -of json -show_format -show_streams"


def run_floor(args: list[str], files: list[Path], *, ffprobe: bool = False) -> float:
    """CPU seconds of ``mkvmerge -J`` (+ ``ffprobe``) + ``mkvmerge`` over ``files``, in one
    shell; each result is ``NAME.mkv``."""
    lines = []
    for path in files:
        out = path.with_name(path.stem + ".out.mkv")
        words = [a.replace("{out}", str(out)).replace("{in}", str(path)) for a in args]
        probe_line = f"mkvmerge -J {shlex.quote(str(path))} >/dev/null"
        if ffprobe:
            probe_line += f" && {FFPROBE} {shlex.quote(str(path))} >/dev/null"
        lines.append(f"{probe_line} && mkvmerge -q {shlex.join(words)} >/dev/null "
                     f"&& mv {shlex.quote(str(out))} {shlex.quote(str(path.with_suffix('.mkv')))}")  # fmt: skip
    seconds = children_cpu(lambda: subprocess.run(["bash", "-ec", "\n".join(lines)], check=True))
    check_normalized([p.with_suffix(".mkv") for p in files], "mkvmerge floor")
    return seconds


def run_vpod(work: Path, folder: Path, files: list[Path], policy: dict[str, str] | None = None) -> float:
    """CPU seconds of ``vpod process FOLDER --workers 1`` (its tools included) under the
    default policy changed by ``policy``.

    Raises:
        BenchFailure: a file was not remuxed as planned.
    """
    config = work / f"process-{len(policy or {})}.toml"
    if not config.exists():
        write_config(config, {"database": {"path": str(work / "process.db")}, "policy": policy or {}})
    (work / "home").mkdir(exist_ok=True)
    command = vpod_command("process", str(folder), "--workers", "1", "--json", "--config", str(config))
    done: list[subprocess.CompletedProcess[str]] = []
    seconds = children_cpu(
        lambda: done.append(subprocess.run(command, env=vpod_env(work / "home"), capture_output=True, text=True))
    )
    report = json.loads(done[0].stdout or "{}")
    if done[0].returncode != 0 or report.get("success_count") != len(files):
        raise BenchFailure(f"vpod process: exit {done[0].returncode}: {done[0].stderr[-2000:]}")
    # after the measurement: its mkvmerge -J runs are the suite's
    check_normalized([p.with_suffix(".mkv") for p in files], "vpod process")
    return seconds


def remux(work: Path, *, files: int, rounds: int) -> list[Row]:
    """The remux rows; see the module docstring."""
    media = MediaSource(make_remux_template(work / "template"))
    args = remux_arguments(media.template, Policy())
    mp4 = MediaSource(make_mp4_template(work / "template"))
    mp4_args = remux_arguments(mp4.template, Policy(container="mkv"))
    empty = work / "empty"
    empty.mkdir()
    floor, vpod, startup, mp4_floor, mp4_vpod = [], [], [], [], []
    for round_no in range(rounds):
        floor.append(run_floor(args, media.copies(work / f"floor-{round_no}", files)) / files)
        startup_cpu = run_vpod(work, empty, [])
        folder = work / f"vpod-{round_no}"
        total = run_vpod(work, folder, media.copies(folder, files))
        startup.append(startup_cpu)
        vpod.append((total - startup_cpu) / files)
        batch = _mp4_copies(mp4, work / f"mp4-floor-{round_no}", files)
        mp4_floor.append(run_floor(mp4_args, batch, ffprobe=True) / files)
        folder = work / f"mp4-vpod-{round_no}"
        total = run_vpod(work, folder, _mp4_copies(mp4, folder, files), {"container": "mkv"})
        mp4_vpod.append((total - startup_cpu) / files)
    note = f"{files} files per round, {rounds} rounds"
    return [
        Row("remux", "floor: mkvmerge -J + mkvmerge, CPU per file", [1000 * v for v in floor], "ms", note=note),
        Row("remux", "vpod process: CPU per remuxed file (tools included, start-up excluded)",
            [1000 * v for v in vpod], "ms", goal="≤ 100", check=lambda v: v <= 100, note=note),  # fmt: skip
        Row("remux", "vpod ÷ floor (CPU per remuxed file)", _ratio(vpod, floor), "×", goal="≤ 1.25",
            check=lambda v: v <= 1.25, note="paired per round"),  # fmt: skip
        Row("remux", "vpod process on an empty folder: CPU (start-up, subtracted above)", startup, "s"),
        Row("remux", "container change MP4 → MKV, floor: mkvmerge -J + ffprobe + mkvmerge, CPU per file",
            [1000 * v for v in mp4_floor], "ms", note=note),  # fmt: skip
        Row("remux", "container change MP4 → MKV: vpod process CPU per file (start-up excluded)",
            [1000 * v for v in mp4_vpod], "ms", note=note),  # fmt: skip
        Row("remux", "container change: vpod ÷ its floor", _ratio(mp4_vpod, mp4_floor), "×", note="paired per round"),
    ]


def _ratio(values: list[float], base: list[float]) -> list[float]:
    return [v / b for v, b in zip(values, base)]


def _mp4_copies(mp4: MediaSource, folder: Path, count: int) -> list[Path]:
    return [path.rename(path.with_suffix(".mp4")) for path in mp4.copies(folder, count)]
