"""Scaling: ``vpod process`` with workers 1, 2 and 4 on the same files.

vpod caps its workers at half the CPUs it may use. A row with ``w > 1`` workers runs
only where the machine has at least ``max(4, w)`` CPUs: two workers on two CPUs would
measure contention, not scaling. Where the cap (half the CPUs) is below ``w`` but the
machine has the CPUs, the documented override ``VPOD_CPU_COUNT = 2 × w`` lifts it.

The remux set: bigger files (made once: random-noise H.264 video, so about
``remux_megabytes`` MB each, with a Japanese default audio track before an English
one), which the default policy remuxes (English first and default). Each run copies
them fresh, then times ``cp`` of the same files beside them with an fsync of each copy
(``sync FILE``, as vpod fsyncs its remuxed copy before the rename), plain ``cp`` (page
cache only), and ``vpod process`` (start-up included), one after the other. A remux
reads and writes each file once: that is its physical floor. MB/s are 10^6 bytes of
the source files per second of wall time; the machine's page cache holds the files,
so the reads come from memory and only the writes reach the disk. The bare tools
(``mkvmerge -J``, then ``mkvmerge`` with vpod's own arguments, then an fsync) show how
much of the gap to ``cp`` is the remuxer's own work.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

from vpod.media.probe import probe
from vpod.media.remux import mkvmerge_args
from vpod.media.tools import ToolRunner
from vpod.policy.planner import plan
from vpod.policy.policy import Policy

from common import MARKER, BenchFailure, MediaSource, Row, remove_tree, timed
from overhead import run_process

CP_SCRIPTS = {
    # "$@": the files; each copy is written beside its source.
    "cp": 'for f in "$@"; do cp -- "$f" "$f.copy"; done',
    "cp + fsync": 'for f in "$@"; do cp -- "$f" "$f.copy" && sync -- "$f.copy"; done',
}


def cpus_needed(workers: int) -> int:
    """CPUs a scaling row with ``workers`` workers needs (see the module docstring)."""
    return 1 if workers == 1 else max(4, workers)


def cpu_override(workers: int, cpus: int) -> int | None:
    """The ``VPOD_CPU_COUNT`` that lets ``workers`` run uncapped, or ``None`` when no
    override is needed."""
    return None if workers <= cpus // 2 else 2 * workers


def worker_row(name: str, workers: int, values: list[float] | None, unit: str, cpus: int, digits: int = 2) -> Row:
    """The row of a ``--workers`` figure: skipped (``values`` ``None``) when the machine
    lacks the CPUs, else noting the ``VPOD_CPU_COUNT`` override it ran with, if any."""
    if values is None:
        return Row("scaling", name, unit=unit, skipped=f"skipped: needs ≥ {cpus_needed(workers)} CPUs")
    override = cpu_override(workers, cpus)
    return Row("scaling", name, values, unit, note=f"VPOD_CPU_COUNT={override}" if override else "", digits=digits)


def measure(work: Path, media: MediaSource, files: int, workers: int, cpus: int, tag: str) -> float:
    """Wall seconds (start-up included) of one ``vpod process --workers N`` over fresh copies."""
    folder = work / f"{tag}-w{workers}"
    batch = media.copies(folder, files)
    wall, _ = run_process(work, folder, batch, workers=workers, cpu_count=cpu_override(workers, cpus))
    remove_tree(folder)
    return wall


def scaling(work: Path, media: MediaSource, *, cpus: int, files: int, issue4_files: int, runs: int) -> list[Row]:
    """Rows for workers 1, 2, 4 on ``files`` files, and the issue-4 pair (``issue4_files``
    files, workers 1 and 2). Each run measures every worker count back to back."""
    rows: list[Row] = []
    for tag, count, counts in (("scaling", files, (1, 2, 4)), ("issue4", issue4_files, (1, 2))):
        runnable = [w for w in counts if cpus >= cpus_needed(w)]
        walls: dict[int, list[float]] = {w: [] for w in runnable}
        for _ in range(runs):
            for workers in runnable:
                walls[workers].append(measure(work, media, count, workers, cpus, tag))
        label = "issue 4: " if tag == "issue4" else ""
        for workers in counts:
            rows.append(worker_row(f"{label}{count} files, vpod process --workers {workers}: wall time", workers,
                                   walls.get(workers), "s", cpus))
        for workers in counts[1:]:
            name = f"{label}{count} files: speedup of workers {workers} over workers 1 (t1 ÷ t{workers})"
            if workers in walls and 1 in walls:
                ratios = [a / b for a, b in zip(walls[1], walls[workers])]
                rows.append(Row("scaling", name, ratios, "×", note="paired per run"))
            else:
                rows.append(Row("scaling", name, unit="×", skipped=f"skipped: needs ≥ {cpus_needed(workers)} CPUs"))
    return rows


def make_remux_template(folder: Path, seconds: float) -> Path:
    """A Matroska file that the default policy remuxes: random-noise H.264 video (it does not
    compress: about 2.7 MB per second), audio ``jpn`` (default) before audio ``eng``;
    the title is :data:`common.MARKER`, so :class:`common.MediaSource` makes unique copies
    of it. Written without CRC-32 elements, so replacing the title leaves a valid file.

    Raises:
        BenchFailure: the marker is not in the file exactly once.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "remux.mkv"
    args = ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "rawvideo", "-pix_fmt", "gray", "-s", "320x240",
            "-r", "25", "-i", "/dev/urandom"]
    for frequency in (400, 500):
        args += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=8000"]
    # H.264, the codec of most libraries: mkvmerge remuxes it at about 600 MB/s of CPU time
    # here, MPEG-4 part 2 (the tiny template's codec) at about 70 (it parses every frame).
    args += ["-t", str(seconds), "-map", "0:0", "-map", "1:0", "-map", "2:0", "-c:0", "libx264", "-preset", "ultrafast",
             "-qp", "5", "-pix_fmt:0", "yuv420p",
             "-c:1", "aac", "-b:1", "16k", "-c:2", "aac", "-b:2", "16k", "-metadata:s:1", "language=jpn",
             "-metadata:s:2", "language=eng", "-disposition:0", "0", "-disposition:1", "default", "-disposition:2", "0",
             "-metadata", f"title={MARKER.decode()}", "-write_crc32", "0", "-default_mode", "passthrough", str(path)]
    subprocess.run(args, check=True)
    if path.read_bytes().count(MARKER) != 1:
        raise BenchFailure(f"{path}: the title marker is not in the file exactly once")
    return path


def copy_seconds(kind: str, files: list[Path]) -> float:
    """Wall seconds of the ``CP_SCRIPTS[kind]`` loop over ``files``; the copies are removed after."""
    seconds, _ = timed(lambda: subprocess.run(["bash", "-c", CP_SCRIPTS[kind], "cp", *map(str, files)], check=True))
    for path in files:
        path.with_name(path.name + ".copy").unlink()
    return seconds


def mkvmerge_floor_seconds(files: list[Path]) -> float:
    """Wall seconds of the bare tools of a remux, per file one after the other: ``mkvmerge
    -J`` (the probe), ``mkvmerge`` with vpod's own arguments for the default policy into
    a copy beside the file, and an fsync of that copy. The copies are removed after.

    Raises:
        BenchFailure: the template needs no remux under the default policy.
    """
    media = probe(files[0], ToolRunner(60))
    changes = plan(Policy(), media)
    if not changes.needs_remux:
        raise BenchFailure(f"{files[0]}: the default policy needs no remux of the remux set")

    def loop() -> None:
        for path in files:
            subprocess.run(["mkvmerge", "-J", str(path)], check=True, stdout=subprocess.DEVNULL)
            copy = path.with_name(path.name + ".copy")
            args = mkvmerge_args(replace(media, path=path), changes, copy)
            subprocess.run(["mkvmerge", "-q", *args], check=True, stdout=subprocess.DEVNULL)
            fd = os.open(copy, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    seconds, _ = timed(loop)
    for path in files:
        path.with_name(path.name + ".copy").unlink()
    return seconds


def remux_scaling(work: Path, *, cpus: int, files: int, megabytes: float, runs: int) -> list[Row]:
    """The remux set's rows (see the module docstring): MB/s of ``cp`` (+ fsync) and of
    ``vpod process --workers w`` for w = 1, 2, 4 under the CPU rule, and the ratio of
    vpod's MB/s to ``cp`` + fsync, paired per run."""
    media = MediaSource(make_remux_template(work / "remux-template", megabytes / 2.7))
    size = media.size
    total_mb = files * size / 1e6
    counts = (1, 2, 4)
    runnable = [w for w in counts if cpus >= cpus_needed(w)]
    floors: dict[str, list[float]] = {kind: [] for kind in (*CP_SCRIPTS, "mkvmerge")}
    walls: dict[int, list[float]] = {w: [] for w in runnable}
    for run in range(runs):
        folder = work / f"remux-floor-{run}"
        batch = media.copies(folder, files)
        for kind in CP_SCRIPTS:
            floors[kind].append(copy_seconds(kind, batch))
        floors["mkvmerge"].append(mkvmerge_floor_seconds(batch))
        remove_tree(folder)
        for workers in runnable:
            walls[workers].append(measure(work, media, files, workers, cpus, f"remux-{run}"))
    label = f"remux set ({files} files of {size / 1e6:.0f} MB)"
    rows = [Row("scaling", f"{label}: {kind}, MB/s", [total_mb / s for s in floors[kind]], "MB/s", digits=0,
                note="the same files, copied beside themselves") for kind in CP_SCRIPTS]
    rows.append(Row("scaling", f"{label}: bare mkvmerge -J + mkvmerge + fsync, MB/s",
                    [total_mb / s for s in floors["mkvmerge"]], "MB/s", digits=0,
                    note="vpod's own remux arguments, one file after the other"))
    for workers in counts:
        speeds = [total_mb / s for s in walls[workers]] if workers in walls else None
        rows.append(worker_row(f"{label}: vpod process --workers {workers}, MB/s (start-up included)", workers,
                               speeds, "MB/s", cpus, digits=0))
    for workers in runnable:
        for kind in ("cp + fsync", "mkvmerge"):
            rows.append(Row("scaling", f"{label}: vpod process --workers {workers} ÷ {kind} floor (MB/s)",
                            [f / v for f, v in zip(floors[kind], walls[workers])], "×", note="paired per run"))
    return rows
