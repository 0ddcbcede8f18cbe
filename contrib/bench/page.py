"""Web page: the idle daemon's CPU while its status page is open in a browser.

One idle daemon (one empty watched folder, `[http] listen` on 127.0.0.1) with its page
`GET /` open in Debian's headless chromium (`/usr/bin/chromium`, driven by Python
playwright; no browser download). The page stays live the way it does for a user:
server-sent events from `api/events`, or `api/status` every 2 s where the daemon has no
event stream. After the page has loaded and gone live, the window opens: CPU time is
user + system of all the daemon's threads from `/proc/PID/stat` over the window, given
per minute (goal < 0.1 s, issue 17); the page's own requests in the window are counted and
the mode (events or polling) is named in the note. Skipped without chromium.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import BenchFailure, Daemon, Row, cpu_seconds

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
START_QUIET_SECONDS = 3.0  # after the page went live, before the window opens


def page(work: Path, *, seconds: float, runs: int) -> list[Row]:
    """Rows: the daemon's CPU seconds per minute (measured over ``seconds``) with the
    page open (goal < 0.1 s), and the page's requests per minute."""
    name = "daemon CPU seconds per minute, idle, page open"
    if not os.path.exists(CHROMIUM):
        return [Row("page", name, skipped=f"{CHROMIUM} is absent (apt-get install chromium)")]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [Row("page", name, skipped="playwright is not installed (pyproject's bench extras)")]
    cpu: list[float] = []
    requests_per_minute: list[float] = []
    modes: set[str] = set()
    for run in range(runs):
        root = work / f"inbox-{run}"
        root.mkdir(parents=True)
        daemon = Daemon(work / f"daemon-{run}", [root], name="page", events=("scan_completed", "http_listening"),
                        sections={"http": {"listen": "127.0.0.1:0"}})
        try:
            daemon.start()
            daemon.wait(lambda: bool(daemon.events("http_listening")), timeout=120, what="http_listening")
            port = daemon.events("http_listening")[0]["port"]
            with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="vpod-bench-chromium-") as profile:
                ctx = p.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    tab = ctx.new_page()
                    sent: list[float] = []
                    tab.on("request", lambda r: sent.append(time.monotonic()))
                    tab.goto(f"http://127.0.0.1:{port}/")
                    tab.wait_for_function("document.getElementById('live').textContent.startsWith('live')",
                                          timeout=60_000)
                    time.sleep(START_QUIET_SECONDS)
                    live = tab.locator("#live").inner_text()
                    modes.add("polling api/status every 2 s" if "2 s" in live else "server-sent events")
                    opened = time.monotonic()
                    before = cpu_seconds(daemon.pid)
                    time.sleep(seconds)
                    after = cpu_seconds(daemon.pid)
                    if tab.locator("#state").inner_text() != "running":
                        raise BenchFailure("page: the page no longer shows the daemon running")
                finally:
                    ctx.close()
            cpu.append((after - before) / seconds * 60)
            requests_per_minute.append(sum(1 for t in sent if t >= opened) / seconds * 60)
        finally:
            daemon.stop()
    note = f"one empty watched folder, {seconds:g} s window, page live by {', '.join(sorted(modes))}"
    return [
        Row("page", name, cpu, "s", goal="< 0.1", check=lambda v: v < 0.1, note=note, digits=3),
        Row("page", "requests the page sent per minute", requests_per_minute, "/min", note=note, digits=1),
    ]
