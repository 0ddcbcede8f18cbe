"""A long remux shows its progress in the log and in `vpod status` (issue 11, item 17).

The file is real and its remux is the real mkvmerge; only its pace is the test's:
mkvmerge prints its progress at most twice a second of wall time, and on a fast machine
the whole remux of a test-sized file takes less than a second. So the test lets the
tool run in short slices (SIGCONT), each followed by a pause longer than half a second
(SIGSTOP): every slice then ends with a progress line, whatever the machine's speed.
While `vpod status` is read, the tool stays stopped, so the file is surely in progress.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support.daemon import run_vpod
from support.media import mkvmerge_tracks

pytestmark = pytest.mark.integration


def long_file(folder: Path) -> Path:
    """About 45,000 tiny video frames plus two audio tracks (jpn default, then eng):
    the default policy reorders them, which takes a remux by mkvmerge."""
    base, path = folder / "base.mkv", folder / "long.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=250:duration=4",
                    "-f", "lavfi", "-i", "sine=frequency=300:duration=4:sample_rate=8000",
                    "-f", "lavfi", "-i", "sine=frequency=500:duration=4:sample_rate=8000",
                    "-map", "0", "-map", "1", "-map", "2", "-c:v", "mpeg4", "-q:v", "31", "-c:a", "aac", "-b:a", "16k",
                    "-metadata:s:1", "language=jpn", "-metadata:s:2", "language=eng",
                    "-disposition:1", "default", "-disposition:2", "0", str(base)], check=True)  # fmt: skip
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "44", "-i", str(base), "-map", "0", "-c", "copy",
                    str(path)], check=True)  # fmt: skip
    base.unlink()
    return path


def child_running(parent: int, marker: str, timeout: float = 60) -> int:
    """The pid of a child of ``parent`` whose command line contains ``marker``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent and any(marker.encode() == arg for arg in cmdline):
                return int(entry)
        time.sleep(0.02)
    raise AssertionError(f"no child of {parent} with {marker} appeared")


class Pacer:
    """Runs a process in slices of ``run`` seconds with ``pause`` seconds stopped between
    them, until it exits; :meth:`hold` keeps it stopped until :meth:`release`."""

    def __init__(self, pid: int, run: float = 0.04, pause: float = 0.6) -> None:
        self.pid, self.run, self.pause = pid, run, pause
        self.held = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while True:
                os.kill(self.pid, signal.SIGSTOP)
                time.sleep(self.pause)
                if self.held.is_set():
                    self.released.wait(60)
                    self.held.clear()
                os.kill(self.pid, signal.SIGCONT)
                time.sleep(self.run)
        except ProcessLookupError:
            return
        finally:
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def hold(self) -> None:
        self.released.clear()
        self.held.set()
        time.sleep(self.pause + self.run)  # the current slice, if any, has ended

    def release(self) -> None:
        self.released.set()

    def join(self) -> None:
        self.released.set()
        self.thread.join(60)


def test_a_long_remux_reports_progress_in_the_log_and_in_status(tmp_path, daemon_factory, env):
    source = long_file(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "processing": {"workers": 1}})
    movie = inbox / "long.mkv"
    os.rename(source, movie)
    pacer = Pacer(child_running(daemon.proc.pid, "--gui-mode"))
    try:
        daemon.wait_for("file_progress", path=str(movie), timeout=120)
        pacer.hold()
        report = None
        deadline = time.monotonic() + 30
        while report is None and time.monotonic() < deadline:
            data = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
            if data["in_progress"] and data["in_progress"][0]["progress_percent"] is not None:
                report = data
        assert report is not None, "vpod status never showed the remux's progress"
        [busy] = report["in_progress"]
        assert busy["path"] == str(movie) and 0 < busy["progress_percent"] < 100 and busy["eta_seconds"] >= 0
        text = run_vpod(["status", "--config", str(daemon.config)], env=env).stdout
        assert f"{busy['progress_percent']:.0f} %" in text and " left  " + str(movie) in text
        pacer.release()
        daemon.wait_for("file_processed", path=str(movie), timeout=120)
    finally:
        pacer.join()
    steps = daemon.named("file_progress", path=str(movie))
    percents = [e["percent"] for e in steps]
    assert len(steps) >= 2 and percents == sorted(set(percents)), percents
    assert all(0 < p < 100 for p in percents) and all(e["eta_seconds"] >= 0 for e in steps)
    # one line per 10 % step at most
    assert len({int(p // 10) for p in percents}) == len(percents)
    assert [t["language"] for t in mkvmerge_tracks(movie) if t["type"] == "audio"] == ["eng", "jpn"]
    assert daemon.stop() == 0


def test_an_ffmpeg_remux_reports_its_progress_up_to_the_end(tmp_path):
    """MP4 mov_text subtitles go through ffmpeg (-progress pipe:1): its out_time_us,
    against the probed duration, reaches the sink, ending at 100."""
    from support.media import audio, make_media, subtitle, video
    from support.pipeline import make_pipeline

    from vpod.media.probe import probe
    from vpod.media.remux import choose_remuxer
    from vpod.policy.policy import policy_from_table

    pipeline = make_pipeline(tmp_path)
    path = make_media(pipeline.library / "film.mp4", [video(), audio("eng"), subtitle("eng")], duration=3.0)
    assert choose_remuxer(probe(path, pipeline.runner)) == "ffmpeg"
    seen: list[float] = []
    policy = policy_from_table({"container": "mkv"}, source=None, base_dir=None)
    out = pipeline.processor.process(path, policy, on_progress=lambda percent, **_: seen.append(percent))
    assert out.result.success, out.result.error
    assert seen[0] == 0.0 and seen[-1] == 100.0
    assert seen == sorted(seen) and len(seen) >= 3  # start, at least one position, the end
