"""vpod status while processing and after; vpod retry after the cause was fixed (issue 6)."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from support.daemon import run_vpod
from support.media import default_audio_languages, video
from support.tools import breakable_tool, gated_tool, path_with

pytestmark = pytest.mark.integration

SETTLE = 0.3


def sections(inbox):
    return {
        "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, "workers": 1},
    }


def status(config, env, *extra):
    return run_vpod(["status", "--config", str(config), *extra], env=env)


def test_status_json_during_processing_and_after_stop(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    gate = tmp_path / "hold-mkvpropedit"
    gate.touch()  # files stay in progress until the report was taken
    tools = gated_tool(tmp_path / "gatebin", "mkvpropedit", gate)
    daemon = daemon_factory(sections(inbox), extra_env={"PATH": path_with(tools)})
    (inbox / "broken.mkv").write_text("not a video")
    daemon.wait_for("file_failed", path=str(inbox / "broken.mkv"))
    shutil.copyfile(jpn_eng_mkv, inbox / "one.mkv")
    shutil.copyfile(jpn_eng_mkv, inbox / "two.mkv")

    for name in ("one.mkv", "two.mkv"):  # both queued before the gate opens: one batch, one waiting
        daemon.wait_for("file_queued", path=str(inbox / name))
    report = None
    deadline = time.monotonic() + 60
    while report is None and time.monotonic() < deadline:
        out = status(daemon.config, env, "--json")
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        if data["in_progress"]:
            report = data
        time.sleep(0.1)
    assert report is not None
    assert report["state"] == "running" and report["pid"] == daemon.proc.pid
    assert report["uptime_seconds"] > 0 and report["workers"] == 1
    [busy] = report["in_progress"]
    assert busy["path"] in (str(inbox / "one.mkv"), str(inbox / "two.mkv"))
    assert busy["worker"] == "worker-1" and busy["batch_id"] and busy["elapsed_seconds"] >= 0
    assert report["counts"]["processing"] == 1 and report["counts"]["failed"] == 1
    assert report["counts"]["queued"] == report["queue_depth"] == 1
    [failure] = report["last_failures"]
    assert failure["path"] == str(inbox / "broken.mkv") and failure["reason"] and "broken.mkv" in failure["error"]

    text = status(daemon.config, env)
    assert text.returncode == 0
    assert f"vpod: running (pid {daemon.proc.pid})" in text.stdout
    assert "worker-1" in text.stdout and "last failures:" in text.stdout

    gate.unlink()
    daemon.wait_for("file_processed", count=2)
    # how the three files fall into batch windows is not this test's business: wait until
    # every file is counted in a closed batch
    deadline = time.monotonic() + 60
    while sum(e["total_files"] for e in daemon.named("batch_completed")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.stop() == 0
    out = status(daemon.config, env, "--json")
    assert out.returncode == 3  # no daemon running
    after = json.loads(out.stdout)
    assert after["state"] == "stopped" and after["pid"] is None and not after["unclean_stop"]
    assert after["counts"]["done"] == 2 and after["queue_depth"] == 0 and after["in_progress"] == []
    assert after["last_batches"] and sum(b["total_files"] for b in after["last_batches"]) == 3


def test_status_notices_a_killed_daemon(tmp_path, daemon_factory, env):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    daemon.kill()
    out = status(daemon.config, env, "--json")
    assert out.returncode == 3
    data = json.loads(out.stdout)
    assert data["state"] == "stopped" and data["unclean_stop"] is True


def test_status_without_database_says_so(tmp_path, env):
    from support.daemon import write_config

    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "none.db")}})
    out = status(config, env)
    assert out.returncode == 70 and "no database at" in out.stderr and str(tmp_path / "none.db") in out.stderr
    assert not (tmp_path / "none.db").exists()


def test_retry_requeues_after_the_cause_is_fixed(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    flag = tmp_path / "mkvpropedit-broken"
    flag.touch()
    tools = breakable_tool(tmp_path / "bin", "mkvpropedit", flag)
    daemon = daemon_factory(sections(inbox), extra_env={"PATH": path_with(tools)})
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        shutil.copyfile(jpn_eng_mkv, inbox / name)
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        failed = daemon.wait_for("file_failed", path=str(inbox / name))[0]
        assert "simulated failure" in failed["error"]
    flag.unlink()  # the operator fixed the cause

    unknown = run_vpod(["retry", "--config", str(daemon.config), str(inbox / "never-seen.mkv")], env=env)
    assert unknown.returncode == 1 and "no record" in unknown.stderr
    assert run_vpod(["retry", "--config", str(daemon.config)], env=env).returncode == 2  # nothing named

    one = run_vpod(["retry", "--config", str(daemon.config), str(inbox / "a.mkv")], env=env)
    assert one.returncode == 0, one.stderr
    assert "1 file(s) queued again" in one.stdout
    daemon.wait_for("file_processed", path=str(inbox / "a.mkv"))
    assert default_audio_languages(inbox / "a.mkv") == ["eng"]
    assert default_audio_languages(inbox / "b.mkv") == ["jpn"]  # not retried yet

    done = run_vpod(["retry", "--config", str(daemon.config), str(inbox / "a.mkv")], env=env)
    assert done.returncode == 1 and "not failed" in done.stderr

    rest = run_vpod(["retry", "--config", str(daemon.config), "--all-failed"], env=env)
    assert rest.returncode == 0 and "2 file(s) queued again" in rest.stdout
    for name in ("b.mkv", "c.mkv"):
        daemon.wait_for("file_processed", path=str(inbox / name))
        assert default_audio_languages(inbox / name) == ["eng"]
    assert daemon.stop() == 0


def test_retry_without_daemon_runs_at_next_start(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    flag = tmp_path / "broken"
    flag.touch()
    tools = breakable_tool(tmp_path / "bin", "mkvpropedit", flag)
    daemon = daemon_factory(sections(inbox), extra_env={"PATH": path_with(tools)})
    shutil.copyfile(jpn_eng_mkv, inbox / "x.mkv")
    daemon.wait_for("file_failed", path=str(inbox / "x.mkv"))
    assert daemon.stop() == 0
    flag.unlink()
    out = run_vpod(["retry", "--config", str(daemon.config), str(inbox / "x.mkv")], env=env)
    assert out.returncode == 0 and "next start" in out.stdout
    again = daemon_factory(sections(inbox), name="again")
    again.wait_for("file_processed", path=str(inbox / "x.mkv"))
    assert default_audio_languages(inbox / "x.mkv") == ["eng"]
    assert again.stop() == 0


@pytest.mark.parametrize(
    "typo",
    [
        "\n[watchh]\nsettle_seconds = 1\n",  # TOML, but an unknown table
        "\n[policy\naudio_languages = 1\n",  # not TOML at all: only [database] is read
    ],
)
def test_status_reads_the_database_despite_a_config_typo(tmp_path, daemon_factory, env, typo):
    """Issue 11 item 14: the daemon runs on its last good config, so status still reports
    it (exit 0, a warning naming the error); it exits 2 only when no database is found."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    good = daemon.config.read_text()
    daemon.config.write_text(good + typo)

    out = status(daemon.config, env, "--json")
    assert out.returncode == 0, out.stderr
    assert "config error" in out.stderr and str(daemon.config) in out.stderr
    report = json.loads(out.stdout)
    assert report["state"] == "running" and report["pid"] == daemon.proc.pid
    assert report["config_error"] and report["database"] == str(tmp_path / "vpod.db")
    text = status(daemon.config, env)
    assert text.returncode == 0 and "config error:" in text.stdout
    # Found by a tester: a file that is not TOML at all made status report the daemon of
    # the default database (~/.vpo/vpod.db), which that file never named.
    default_db = Path(env["HOME"]) / ".vpo" / "vpod.db"
    default_db.parent.mkdir(exist_ok=True)
    default_db.symlink_to(tmp_path / "vpod.db")
    not_toml = tmp_path / "notes.txt"
    not_toml.write_text("just some notes, [not a config\n")
    out = status(not_toml, env)
    assert out.returncode == 2 and str(not_toml) in out.stderr and "no [database] path" in out.stderr
    assert "running" not in out.stdout

    assert daemon.stop() == 0
    assert status(daemon.config, env).returncode == 3

    elsewhere = tmp_path / "elsewhere.toml"  # names a database that does not exist
    elsewhere.write_text(f'[database]\npath = "{tmp_path / "none.db"}"\n' + typo)
    out = status(elsewhere, env)
    assert out.returncode == 2 and "config error" in out.stderr and str(elsewhere) in out.stderr


def test_status_names_the_config_file_a_reload_loaded(tmp_path, home, env):
    """Issue 11 item 14: a daemon started on built-in defaults (no ~/.vpo/config.toml)
    that reloads a file created since reports that file."""
    from support.daemon import DaemonProcess

    daemon = DaemonProcess(None, env=env, log_path=tmp_path / "daemon.log", args=("--allow-root",))
    try:
        daemon.wait_started()
        out = run_vpod(["status", "--json"], env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["config"] is None
        config = home / ".vpo" / "config.toml"
        config.write_text('[policy]\naudio_languages = ["jpn"]\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_for("config_reloaded")
        report = json.loads(run_vpod(["status", "--json"], env=env).stdout)
        assert report["config"] == str(config)
        assert f"config: {config}" in run_vpod(["status"], env=env).stdout
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_status_shows_watch_folders_that_are_missing(tmp_path, daemon_factory, env):
    """Issue 11 item 14: what /health calls unwatched_paths, vpod status shows too."""
    inbox, later = tmp_path / "inbox", tmp_path / "later"
    inbox.mkdir()
    daemon = daemon_factory({**sections(inbox), "watch": {"paths": [str(inbox), str(later)], "settle_seconds": SETTLE}})
    report = json.loads(status(daemon.config, env, "--json").stdout)
    assert report["watch_paths"] == [str(inbox), str(later)]
    assert report["unwatched_paths"] == [str(later)]
    text = status(daemon.config, env).stdout
    assert "not watched (missing" in text and f"  {later}" in text

    later.mkdir()
    daemon.wait_for("watch_path_restored", root=str(later))
    deadline = time.monotonic() + 30  # recorded by the main loop right after it logs
    while json.loads(status(daemon.config, env, "--json").stdout)["unwatched_paths"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert json.loads(status(daemon.config, env, "--json").stdout)["unwatched_paths"] == []
    assert "not watched" not in status(daemon.config, env).stdout
    assert daemon.stop() == 0


def test_status_shows_a_multi_line_error_as_lines(tmp_path, daemon_factory, env, media_cache):
    """Found by a tester: ``vpod status`` printed a tool's two-line error with a literal
    ``\\n``. The text form now shows it as lines, the continuation indented; JSON keeps
    the message as it is."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox))
    whole = media_cache("plain.mp4", [video()])
    (inbox / "cut.mp4").write_bytes(whole.read_bytes()[:3000])  # no moov atom
    daemon.wait_for("file_failed", path=str(inbox / "cut.mp4"))
    data = json.loads(status(daemon.config, env, "--json").stdout)
    [failure] = data["last_failures"]
    assert "\n" in failure["error"]  # ffprobe's two lines
    text = status(daemon.config, env).stdout
    assert "\\n" not in text
    [first] = [i for i, line in enumerate(text.splitlines()) if "moov atom not found" in line]
    assert text.splitlines()[first + 1].startswith(" " * 8 + "file:")
    assert daemon.stop() == 0
