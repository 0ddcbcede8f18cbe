"""Transcode: the encoder through vpod against the same ffmpeg command by hand, throughput with workers, size saved.

The clip set: 4 clips of 8 s each (1 of 1 s under ``--smoke``), made once: 320x240 H.264 at 25 fps
(``libx264 -preset ultrafast -crf 16``, a generous source, as a library's H.264 often
is) with an English FLAC 5.1 track. The policy is issue 18's: ``video_codec = { codec =
"hevc", convert = ["h264"] }`` with vpod's defaults (libx265, CRF 22, preset medium) and
``audio_compat = { codec = "aac", channels = 2 }``: one ffmpeg run per file writes the
HEVC video, copies the FLAC track and adds a stereo AAC track after it.

**Encoder fps.** vpod runs ``vpod process --workers 1`` with a timing wrapper first on
its ``PATH``: an ``ffmpeg`` run that writes a ``.vpod-tmp-`` file (vpod's encode) is
recorded with its arguments, its nice value and I/O class (``ionice -p``), and the wall
time of the real ffmpeg, spawn to exit; every other run (probes, the decode check) goes
straight to ffmpeg. Each recorded command also runs by hand: the same arguments but an
untouched copy of the clip as input and a file in another folder as output, under the
same nice value and I/O class, through the same wrapper (so both are timed alike); right
after vpod in even rounds, right before it in odd rounds (with the previous round's
commands), so that neither side always meets a warmer or a busier machine. fps = the
clip's frames ÷ those seconds. The ratio is vpod's encode time ÷ the hand's, summed over
a round's clips and paired per round, 9 rounds (``transcode_pairs``; one encode takes
about 2 s, so 3 rounds left the median at the mercy of one noisy second): what vpod
adds to the encode itself (reading ``-progress``, its own threads), not what it adds
around it (probes, verification, the decode check: those are in the throughput). The
encode runs at ``transcode_nice`` (10 by default) and I/O class idle, so on a machine
busy with other work its wall time follows that work; the same ratio of the encodes' CPU
seconds (user + system, ``getrusage``) does not. The wrapper also reads its caller's own
CPU seconds (``/proc/PPID/stat``, utime + stime of all its threads; ``nice`` and
``ionice`` exec, so the caller is vpod) before and after each encode: what vpod itself
takes from the CPUs while its encoder runs.

**Throughput.** ``vpod process --workers w`` over fresh copies (start-up, probes,
verification, decode check and replace included), as frames of video per second of wall
time, with ``max_transcodes = w``: w = 1 and 2 always, 4 where the machine has 4 CPUs.
vpod caps a worker count at half the CPUs plus ``max_transcodes``, so w runs as asked
on any machine. libx265 uses several threads itself, so on 2 CPUs two
encodes share the CPUs one already uses: the speedup there shows contention, not scaling.

**Size saved**: 1 − (the results' bytes ÷ the sources' bytes) over the workers-1 runs,
in %; the sources' FLAC track is kept as it is and an AAC track is added, so the saving
is the video's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import BenchFailure, Row, remove_tree, write_config
from overhead import run_process

POLICY = {"video_codec": {"codec": "hevc", "convert": ["h264"]}, "audio_compat": {"codec": "aac", "channels": 2}}
FPS = 25
TEMP_MARK = ".vpod-tmp-"  # the name of every temp file vpod writes (README, "Nothing damaged")

_TIMER = '''\
#!{python}
import json, os, resource, subprocess, sys, time
REAL, LOG = {real!r}, {log!r}
args = sys.argv[1:]
outputs = [a for i, a in enumerate(args) if {mark!r} in a and (i == 0 or args[i - 1] != "-i")]
if not outputs:
    os.execv(REAL, [REAL, *args])
io = subprocess.run(["ionice", "-p", str(os.getpid())], capture_output=True, text=True).stdout.strip()
def caller_cpu():  # CPU seconds of the caller's own threads: utime + stime in proc(5), /proc/PID/stat
    fields = open(f"/proc/{{os.getppid()}}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
caller_before = caller_cpu()
start = time.monotonic()
code = subprocess.call([REAL, *args])
seconds = time.monotonic() - start
caller = caller_cpu() - caller_before
used = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(LOG, "a") as note:
    note.write(json.dumps({{"args": args, "output": outputs[-1], "nice": os.nice(0), "ionice": io,
                            "seconds": seconds, "cpu": used.ru_utime + used.ru_stime, "caller_cpu": caller,
                            "code": code}}) + "\\n")
sys.exit(code)
'''


def make_clips(folder: Path, *, files: int, seconds: float) -> list[Path]:
    """``files`` distinct clips (see the module docstring), each titled by its number."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(files):
        path = folder / f"clip{i:02d}.mkv"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-nostdin",
             "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency={300 + 50 * i}:duration={seconds}:sample_rate=48000",
             "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
             "-pix_fmt", "yuv420p", "-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0", "-c:a", "flac",
             "-metadata:s:a:0", "language=eng", "-disposition:a:0", "default", "-metadata", f"title=clip {i}",
             str(path)],
            check=True,
        )  # fmt: skip
        clips.append(path)
    return clips


def frames(path: Path) -> int:
    """Video frames of ``path`` (``ffprobe -count_packets``)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", str(path)],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    return int(json.loads(out)["streams"][0]["nb_read_packets"])


class Timer:
    """The timing wrapper (see the module docstring) in ``folder / "bin" / "ffmpeg"``."""

    def __init__(self, folder: Path) -> None:
        real = shutil.which("ffmpeg")
        if real is None:
            raise BenchFailure("ffmpeg is not on PATH")
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = folder / "encodes.jsonl"
        self.ffmpeg = self.bin / "ffmpeg"
        self.ffmpeg.write_text(_TIMER.format(python=sys.executable, real=real, log=str(self.log), mark=TEMP_MARK))
        self.ffmpeg.chmod(0o755)

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def by_hand(self, record: dict[str, Any], source: Path, pristine: Path, out_folder: Path) -> dict[str, Any]:
        """The record (``seconds``, ``cpu``) of ``record``'s command run by hand: input ``pristine`` instead of
        ``source``, the output in ``out_folder``, the same nice value and I/O class.

        Raises:
            BenchFailure: the command failed, or its priority cannot be given again.
        """
        out_folder.mkdir(parents=True, exist_ok=True)
        vpod_output = record["output"].removeprefix("file:")  # vpod names files as file: URLs (ffmpeg-protocols(1))
        output = out_folder / Path(vpod_output).name
        args = [a.replace(vpod_output, str(output)) if a == record["output"] else a.replace(str(source), str(pristine))
                for a in record["args"]]  # fmt: skip
        prefix = ["nice", "-n", str(record["nice"] - os.nice(0))]
        io = record["ionice"]
        if io.startswith("idle"):
            prefix += ["ionice", "-c", "3"]
        elif io.startswith("best-effort"):
            prefix += ["ionice", "-c", "2", "-n", io.rsplit(" ", 1)[1]]
        elif not io.startswith("none"):
            raise BenchFailure(f"cannot run the encode by hand at vpod's I/O priority {io!r}")
        before = len(self.records())
        done = subprocess.run([*prefix, str(self.ffmpeg), *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        found = self.records()[before:]
        if done.returncode != 0 or len(found) != 1:
            raise BenchFailure(f"the encode by hand failed (exit {done.returncode}): {done.stderr[-2000:]}")
        output.unlink(missing_ok=True)
        return found[0]


def run_vpod(work: Path, folder: Path, clips: list[Path], workers: int, timer: Timer) -> float:
    """Wall seconds of ``vpod process FOLDER --workers W`` over fresh copies of ``clips``
    (a fresh database each time), checked: every file HEVC with a stereo AAC track added.

    Raises:
        BenchFailure: a file was not transcoded as planned.
    """
    folder.mkdir(parents=True)
    copies = [Path(shutil.copyfile(clip, folder / clip.name)) for clip in clips]
    config = write_config(work / f"{folder.name}.toml", {
        "database": {"path": str(work / f"{folder.name}.db")},
        "processing": {"max_transcodes": workers},
        "policy": POLICY,
    })  # fmt: skip
    # The cap is half the CPUs plus max_transcodes (= workers here): never below workers.
    wall, _ = run_process(work, folder, copies, workers, None, config=config, path_first=timer.bin)
    for path in copies:
        tracks = json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)
        codecs = [(t["codec"], t["properties"].get("audio_channels")) for t in tracks["tracks"]]
        if codecs != [("HEVC/H.265/MPEG-H", None), ("FLAC", 6), ("AAC", 2)]:
            raise BenchFailure(f"{path}: tracks {codecs}, expected HEVC, FLAC 5.1, AAC stereo")
    return wall


def encode_by_hand(timer: Timer, commands: dict[str, tuple[dict[str, Any], Path]], clips: list[Path],
                   out_folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of vpod's recorded encode of each clip run by hand on
    its untouched copy."""
    runs = [timer.by_hand(*commands[clip.name], clip, out_folder) for clip in clips]
    remove_tree(out_folder)
    return sum(r["seconds"] for r in runs), sum(r["cpu"] for r in runs)


def transcode(work: Path, *, files: int, seconds: float, runs: int, pairs: int, cpus: int) -> list[Row]:
    """The transcode rows; see the module docstring. ``pairs`` rounds of vpod's encodes and
    the same commands by hand (at least ``runs``); the workers-2 (and 4) runs ``runs`` times."""
    clips = make_clips(work / "clips", files=files, seconds=seconds)
    per_clip = [frames(clip) for clip in clips]
    total_frames = sum(per_clip)
    timer = Timer(work / "timer")
    counts = [1, 2] + ([4] if cpus >= 4 else [])
    vpod_encode: list[tuple[float, float]] = []  # (wall, CPU) seconds per round
    vpod_own: list[float] = []  # vpod's own CPU seconds ÷ wall seconds of its encodes, per round
    hand_encode: list[tuple[float, float]] = []
    walls: dict[int, list[float]] = {w: [] for w in counts}
    saved: list[float] = []
    commands: dict[str, tuple[dict[str, Any], Path]] = {}  # clip name -> vpod's last command, its source then
    for run in range(max(runs, pairs)):
        # Odd rounds encode by hand first (vpod's commands of the round before), even rounds
        # after vpod: neither side always runs on a warmer or a cooler machine.
        hand_first = run % 2 == 1
        if hand_first:
            hand_encode.append(encode_by_hand(timer, commands, clips, work / f"hand-{run}"))
        folder = work / f"w1-{run}"
        before = len(timer.records())
        walls[1].append(run_vpod(work, folder, clips, 1, timer))
        records = timer.records()[before:]
        if len(records) != len(clips) or any(r["code"] != 0 for r in records):
            raise BenchFailure(f"expected {len(clips)} encodes by vpod, recorded {records}")
        vpod_encode.append((sum(r["seconds"] for r in records), sum(r["cpu"] for r in records)))
        vpod_own.append(100 * sum(r["caller_cpu"] for r in records) / sum(r["seconds"] for r in records))
        saved.append(100 * (1 - sum((folder / c.name).stat().st_size for c in clips) / sum(c.stat().st_size for c in clips)))
        for clip in clips:
            source = folder / clip.name
            (record,) = [r for r in records if any(a.endswith(str(source)) for a in r["args"])]
            commands[clip.name] = (record, source)
        if not hand_first:
            hand_encode.append(encode_by_hand(timer, commands, clips, work / f"hand-{run}"))
        remove_tree(folder)
        if run >= runs:
            continue
        for workers in counts[1:]:
            folder = work / f"w{workers}-{run}"
            walls[workers].append(run_vpod(work, folder, clips, workers, timer))
            remove_tree(folder)
    note = f"{files} clips of {seconds:g} s, 320x240 H.264 → HEVC (libx265 CRF 22, medium) + AAC stereo"
    rows = [
        Row("transcode", "encoder fps, the same ffmpeg command by hand (same nice, ionice)",
            [total_frames / wall for wall, _ in hand_encode], "fps", note=note),
        Row("transcode", "encoder fps through vpod process (its ffmpeg run, spawn to exit)",
            [total_frames / wall for wall, _ in vpod_encode], "fps", note=note),
        Row("transcode", "vpod ÷ by hand (encode wall seconds; = fps by hand ÷ fps through vpod)",
            [v[0] / h[0] for v, h in zip(vpod_encode, hand_encode)], "×", goal="≤ 1.02", check=lambda v: v <= 1.02,
            note=f"paired per round, {len(vpod_encode)} rounds", digits=3),
        Row("transcode", "vpod ÷ by hand (CPU seconds of the encode, user + system)",
            [v[1] / h[1] for v, h in zip(vpod_encode, hand_encode)], "×",
            note="paired per round; unlike wall time, not moved by other programs' load", digits=3),
        Row("transcode", "vpod's own CPU while its encode runs (all its threads), ÷ the encode's wall time",
            vpod_own, "%", note="what vpod takes from the encoder's CPUs", digits=2),
    ]  # fmt: skip
    for workers in counts:
        rows.append(Row("transcode", f"vpod process --workers {workers} (max_transcodes {workers}): frames/s of wall time",
                        [total_frames / s for s in walls[workers]], "fps", note="start-up included"))  # fmt: skip
    for workers in counts[1:]:
        rows.append(Row("transcode", f"speedup of workers {workers} over workers 1 (t1 ÷ t{workers})",
                        [a / b for a, b in zip(walls[1], walls[workers])], "×", note="paired per run"))  # fmt: skip
    rows.append(Row("transcode", "size saved (1 − results ÷ sources)", saved, "%", digits=1,
                    note=f"sources {sum(c.stat().st_size for c in clips) / 1e6:.1f} MB"))  # fmt: skip
    return rows
