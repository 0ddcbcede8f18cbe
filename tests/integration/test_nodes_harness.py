"""The multi-node harness's own parts do what the acceptance cases rely on.

A case that passes because its fault was never injected proves nothing: these prove
the proxy really goes silent (no data, no FIN, no RST) and heals, the hung tool really
ignores SIGTERM, the slow tool really reports progress and then does the work,
libfaketime really shifts the wall clock but not the monotonic one, and the inotify
witness really tells vpod's replacements from other renames.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.cluster import can_bind_mount
from support.faketime import clocks_under, skewed_env
from support.inotify_count import FolderEvents
from support.media import mkvmerge_tracks
from support.tcpproxy import BlackholeProxy
from support.toolwrappers import tool_runs, hung_tools, slow_tools
from support.unique_media import UniqueMedia

pytestmark = pytest.mark.integration


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


def test_proxy_forwards_goes_silent_and_heals() -> None:
    server, _ = _echo_server()
    with BlackholeProxy(server.getsockname()) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        client.sendall(b"ping")
        assert client.recv(16) == b"ping"
        proxy.blackhole()
        client.sendall(b"lost?")
        client.settimeout(1.0)
        with pytest.raises(socket.timeout):  # silence: no data, no end of stream, no reset
            client.recv(16)
        late = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)  # accepted, then nothing
        late.sendall(b"hello")
        late.settimeout(1.0)
        with pytest.raises(socket.timeout):
            late.recv(16)
        proxy.heal()
        client.settimeout(5)
        late.settimeout(5)
        assert client.recv(16) == b"lost?"  # held, delivered late, as TCP would
        assert late.recv(16) == b"hello"
        client.close()
        late.close()
    server.close()


def test_hung_tool_ignores_sigterm_and_passes_probes(tmp_path: Path) -> None:
    folder = hung_tools(tmp_path / "hung")
    probe = subprocess.run([str(folder / "mkvmerge"), "--version"], capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0 and "mkvmerge" in probe.stdout
    proc = subprocess.Popen([str(folder / "mkvmerge"), "--output", str(tmp_path / "out.mkv"), "in.mkv"],
                            stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not tool_runs(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid, _ in tool_runs(folder)] == [proc.pid]
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(1.5)
    proc.kill()
    assert proc.wait(10) == -signal.SIGKILL
    assert not (tmp_path / "out.mkv").exists()


def test_slow_tool_reports_progress_then_works(tmp_path: Path) -> None:
    folder = slow_tools(tmp_path / "slow", seconds=0.6, step=0.1)
    source = UniqueMedia(tmp_path / "media").write(tmp_path / "a.mkv")
    done = subprocess.run([str(folder / "mkvmerge"), "--gui-mode", "--output", str(tmp_path / "b.mkv"), "-a", "1",
                           str(source)], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done
    assert done.stdout.count("#GUI#progress") >= 3
    assert [t["language"] for t in mkvmerge_tracks(tmp_path / "b.mkv") if t["type"] == "audio"] == ["eng"]


def test_skewed_clock_shifts_wall_clock_only(tmp_path: Path) -> None:
    for offset in (600.0, -600.0):
        try:
            env, how = skewed_env(offset, tmp_path)
        except RuntimeError as exc:
            pytest.skip(str(exc))
        ok, seen = clocks_under(env, offset)
        assert ok, f"{how}: {seen}"


def test_inotify_witness_counts_only_vpod_replacements(tmp_path: Path) -> None:
    with FolderEvents(tmp_path) as events:
        (tmp_path / "a.mkv").write_bytes(b"a")
        (tmp_path / ".vpod-tmp-0123.mkv").write_bytes(b"b")
        os.replace(tmp_path / ".vpod-tmp-0123.mkv", tmp_path / "a.mkv")  # vpod's replace
        (tmp_path / ".b.mkv.Xy12").write_bytes(b"c")
        os.replace(tmp_path / ".b.mkv.Xy12", tmp_path / "b.mkv")  # rsync's own rename
        deadline = time.monotonic() + 10
        while events.replacements().get("a.mkv") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert dict(events.replacements()) == {"a.mkv": 1}


def test_bind_mount_probe_cleans_up(tmp_path: Path) -> None:
    can_bind_mount(tmp_path / "probe")  # either answer is fine; nothing may stay mounted
    assert not (tmp_path / "probe").exists()
    with open("/proc/self/mounts") as mounts:
        assert str(tmp_path) not in mounts.read()
