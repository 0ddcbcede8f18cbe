"""Bad input never stops the daemon, never damages a source, always says why (issue 5, item 7)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import DaemonProcess, daemon_env, run_vpod, write_config
from support.media import default_audio_languages
from support.privileges import drop_privileges_prefix, world_dir  # noqa: F401  (fixture)
from support.store import file_record

pytestmark = pytest.mark.integration

SETTLE = 0.3


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def db_state(db: Path, path: Path) -> tuple[str, str | None]:
    record = file_record(db, path)
    return record.state, record.reason


def test_bad_files_are_reported_and_the_daemon_goes_on(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    outside = tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}})

    data = jpn_eng_mkv.read_bytes()
    bad: dict[str, tuple[str, str]] = {}  # name -> (event, reason)

    (inbox / "empty.mkv").write_bytes(b"")
    bad["empty.mkv"] = ("file_skipped", "empty")
    (inbox / "truncated.mkv").write_bytes(data[: len(data) // 2])
    bad["truncated.mkv"] = ("file_failed", "truncated")
    (inbox / "text.mkv").write_text("just some text, not Matroska\n" * 20)
    bad["text.mkv"] = ("file_failed", "not_media")  # by its first bytes, before any tool runs
    (inbox / "folder.mkv").mkdir()
    bad["folder.mkv"] = ("file_skipped", "not_a_regular_file")
    os.mkfifo(inbox / "pipe.mkv")
    bad["pipe.mkv"] = ("file_skipped", "not_a_regular_file")
    shutil.copyfile(jpn_eng_mkv, outside / "elsewhere.mkv")
    os.symlink(outside / "elsewhere.mkv", inbox / "link-out.mkv")
    bad["link-out.mkv"] = ("file_skipped", "symlink_outside")
    os.symlink(inbox / "loop-b.mkv", inbox / "loop-a.mkv")
    os.symlink(inbox / "loop-a.mkv", inbox / "loop-b.mkv")
    bad["loop-a.mkv"] = ("file_skipped", "symlink_loop")
    bad["loop-b.mkv"] = ("file_skipped", "symlink_loop")

    sources = {n: digest(inbox / n) for n in ("truncated.mkv", "text.mkv")}
    outside_digest = digest(outside / "elsewhere.mkv")

    for name, (event, reason) in bad.items():
        found = daemon.wait_for(event, path=str(inbox / name))
        assert found[0].get("reason") == reason, (name, found[0])
        assert name in (found[0].get("error") or found[0].get("detail") or ""), found[0]
        assert db_state(tmp_path / "vpod.db", inbox / name) == (
            "failed" if event == "file_failed" else "skipped",
            reason,
        )

    # the daemon keeps processing good files afterwards
    shutil.copyfile(jpn_eng_mkv, inbox / "good.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "good.mkv"))
    assert default_audio_languages(inbox / "good.mkv") == ["eng"]
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0

    for name, before in sources.items():
        assert digest(inbox / name) == before, f"{name} was modified"
    assert digest(outside / "elsewhere.mkv") == outside_digest
    assert stat_is_fifo(inbox / "pipe.mkv")


def stat_is_fifo(path: Path) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(path).st_mode)


NAMES = [
    "with spaces.mkv",
    "quotes ' and \" here.mkv",
    "-leading-dash.mkv",
    "new\nline.mkv",
    os.fsdecode(b"bad\xffbytes.mkv"),
    "x" * 251 + ".mkv",  # 255 bytes, the longest name ext4 allows
]


def test_odd_names_are_processed(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}})
    for name in NAMES:
        shutil.copyfile(jpn_eng_mkv, inbox / name)
    for name in NAMES:
        shown = os.fsencode(str(inbox / name)).decode("utf-8", "backslashreplace")
        daemon.wait_for("file_processed", path=shown)
        assert default_audio_languages(inbox / name) == ["eng"], repr(name)
    assert daemon.stop() == 0


def test_follow_symlinks_reads_but_never_writes_outside(tmp_path, daemon_factory, jpn_eng_mkv, media_cache):
    """follow_symlinks = true: a link to a file outside the watched folders is inspected
    (a conforming target counts as done), but a target that needs changes is skipped
    with reason outside_roots and stays byte-identical: vpod writes only under its roots."""
    from support.media import audio, video

    inbox = tmp_path / "inbox"
    outside = tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    shutil.copyfile(jpn_eng_mkv, outside / "needs-change.mkv")
    conforming = media_cache("conforming.mkv", [video(), audio("eng", default=True), audio("jpn")])
    shutil.copyfile(conforming, outside / "conforms.mkv")
    before = digest(outside / "needs-change.mkv")
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE, "follow_symlinks": True}})
    os.symlink(outside / "needs-change.mkv", inbox / "link.mkv")
    os.symlink(outside / "conforms.mkv", inbox / "ok-link.mkv")
    skipped = daemon.wait_for("file_skipped", path=str(inbox / "link.mkv"))[0]
    assert skipped["reason"] == "outside_roots"
    done = daemon.wait_for("file_processed", path=str(inbox / "ok-link.mkv"))[0]
    assert done["changes"] == 0
    assert daemon.stop() == 0
    assert digest(outside / "needs-change.mkv") == before
    assert (inbox / "link.mkv").is_symlink()


def unprivileged_daemon(
    base: Path, processing: dict | None = None
) -> tuple[DaemonProcess, Path, Path, Path]:
    """A started daemon running as an unprivileged user in ``base`` (world-writable inbox,
    database folder and HOME); returns it with its inbox, config and HOME."""
    inbox, db, home = base / "inbox", base / "db", base / "home"
    for folder in (inbox, db, home):
        folder.mkdir()
        folder.chmod(0o777)
    sections: dict = {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}}
    if processing:
        sections["processing"] = processing
    sections["database"] = {"path": str(db / "vpod.db")}
    sections["logging"] = {"format": "json", "level": "debug"}
    config = write_config(base / "config.toml", sections)
    config.chmod(0o644)
    daemon = DaemonProcess(
        config, env=daemon_env(home), log_path=base / "daemon.log", prefix=tuple(drop_privileges_prefix())
    )
    daemon.wait_started()
    return daemon, inbox, config, home


def test_unreadable_file_fails_with_permission_reason(world_dir, jpn_eng_mkv):
    daemon, inbox, _config, _home = unprivileged_daemon(world_dir)

    secret = inbox / "secret.mkv"
    shutil.copyfile(jpn_eng_mkv, secret)
    secret.chmod(0o000)
    event = daemon.wait_for("file_failed", path=str(secret))[0]
    assert event["reason"] == "permission_denied"
    assert "secret.mkv" in event["error"] and "ermission" in event["error"]
    shutil.copyfile(jpn_eng_mkv, inbox / "fine.mkv")
    (inbox / "fine.mkv").chmod(0o666)
    daemon.wait_for("file_processed", path=str(inbox / "fine.mkv"))
    assert daemon.stop() == 0
    secret.chmod(0o644)
    assert default_audio_languages(secret) == ["jpn"]


def test_hung_tool_is_killed_after_its_timeout(tmp_path, daemon_factory, jpn_eng_mkv):
    """A stand-in mkvmerge on PATH that never answers: the probe fails with reason probe_timeout."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bin_dir = tmp_path / "hangbin"
    bin_dir.mkdir()
    fake = bin_dir / "mkvmerge"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    daemon = daemon_factory(
        {
            "watch": {"paths": [str(inbox)], "settle_seconds": SETTLE},
            "processing": {"probe_timeout_seconds": 1.0, "max_attempts": 2},
        },
        extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    shutil.copyfile(jpn_eng_mkv, inbox / "hang.mkv")
    retry = daemon.wait_for("file_retry", path=str(inbox / "hang.mkv"))[0]
    assert retry["reason"] == "probe_timeout" and "mkvmerge" in retry["error"]
    failed = daemon.wait_for("file_failed", path=str(inbox / "hang.mkv"), timeout=60)[0]
    assert failed["reason"] == "probe_timeout"
    assert failed["error"].startswith(f"{inbox / 'hang.mkv'}: mkvmerge did not finish")  # names the file
    assert daemon.stop() == 0
    leftovers = subprocess.run(["pgrep", "-f", str(fake)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "the hung tool was not killed"


def test_file_not_writable_by_the_daemon_user_then_retried(world_dir, jpn_eng_mkv):
    """A file copied in by another user keeps mode 0644: the daemon user may read but not
    edit it. It fails early with reason not_writable (nothing is touched), and after the
    permissions are fixed, `vpod retry PATH` gets it processed."""
    if os.geteuid() != 0:
        pytest.skip("needs root to own a file the daemon user cannot write")
    daemon, inbox, config, home = unprivileged_daemon(world_dir, processing={"max_attempts": 1})
    target = inbox / "rootowned.mkv"
    shutil.copyfile(jpn_eng_mkv, target)
    target.chmod(0o644)
    before = digest(target)
    event = daemon.wait_for("file_failed", path=str(target))[0]
    assert event["reason"] == "not_writable" and "vpod retry" in event["error"]
    assert digest(target) == before
    target.chmod(0o666)
    result = run_vpod(["retry", "--config", str(config), str(target)], env=daemon_env(home))
    assert result.returncode == 0, result.stdout + result.stderr
    daemon.wait_for("file_processed", path=str(target), timeout=60)
    assert default_audio_languages(target) == ["eng"]
    assert daemon.stop() == 0


# A junk file whose name holds a newline and a byte that is not UTF-8: its error message
# names it, and that message must still reach the database (reviewer's bug: it crashed
# result recording and the file stayed "processing" forever).
UNDECODABLE = os.fsdecode(b"bad\nname\xff.mkv")


def shown(path: Path) -> str:
    """How logs, JSON and the database show a path: undecodable bytes as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def recorded_failure(db: Path, path: Path) -> tuple[str, str, str, str, str]:
    """(state, reason, error) of ``path`` as the Store says, then (reason, error) of its
    last row in the ``results`` history (read with SQL: no Store method reads it back)."""
    record = file_record(db, path)
    with sqlite3.connect(db) as conn:
        result_reason, result_error = conn.execute(
            "SELECT reason, error FROM results WHERE path = ? ORDER BY id DESC LIMIT 1", (os.fsencode(path),)
        ).fetchone()
    return record.state, record.reason, record.error, result_reason, result_error


def test_junk_with_an_undecodable_name_fails_cleanly_in_process(tmp_path, env, jpn_eng_mkv):
    folder = tmp_path / "nu"
    folder.mkdir()
    junk = folder / UNDECODABLE
    junk.write_bytes(b"junk\n")
    good = Path(shutil.copyfile(jpn_eng_mkv, folder / "good.mkv"))
    before = digest(junk)
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "vpod.db")}, "logging": {"format": "json"}})

    out = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), str(folder), "--json"],
        env=env, capture_output=True, timeout=240,
    )
    assert out.returncode == 1, out.stderr.decode(errors="replace")
    data = json.loads(out.stdout.decode("utf-8"))  # strict: stdout is valid UTF-8
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # and holds no lone surrogate
    by_path = {r["path"]: r for r in data["results"]}
    failed = by_path[shown(junk)]
    assert (failed["success"], failed["skipped"], failed["reason"]) == (False, False, "not_media"), failed
    assert shown(junk) in failed["error"] and "internal error" not in failed["error"]
    assert by_path[str(good)]["success"] is True
    assert (data["fail_count"], data["success_count"]) == (1, 1)

    state, reason, last_error, result_reason, result_error = recorded_failure(tmp_path / "vpod.db", junk)
    assert (state, reason, result_reason) == ("failed", "not_media", "not_media")
    assert shown(junk) in last_error and shown(junk) in result_error
    assert digest(junk) == before
    assert default_audio_languages(good) == ["eng"]

    # The human summary names the file once, readable, with the reason.
    text = subprocess.run(
        [sys.executable, "-m", "vpod", "process", "--config", str(config), str(junk)],
        env=env, capture_output=True, timeout=240,
    )
    assert text.returncode == 1
    summary = text.stdout.decode("utf-8")
    assert "name\\xff.mkv" in summary and summary.count("name\\xff.mkv") == 1 and "[not_media]" in summary, summary
    # ... on one line: the newline in its name is shown as \n, not printed.
    [line] = [ln for ln in summary.splitlines() if "name\\xff.mkv" in ln]
    assert "bad\\nname\\xff.mkv" in line, summary


def test_junk_with_an_undecodable_name_fails_cleanly_in_the_daemon(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "w2"
    inbox.mkdir()
    daemon = daemon_factory({"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}})
    junk = inbox / UNDECODABLE
    junk.write_bytes(b"junk\n")
    before = digest(junk)

    failed = daemon.wait_for("file_failed", path=shown(junk))[0]
    assert failed["reason"] == "not_media" and shown(junk) in failed["error"], failed
    batch = daemon.wait_for("batch_completed", where=lambda e: e["fail_count"] == 1)[0]
    assert batch["total_files"] == 1 and batch["batch_id"] == failed["batch_id"]
    state, reason, last_error, result_reason, _ = recorded_failure(tmp_path / "vpod.db", junk)
    assert (state, reason, result_reason) == ("failed", "not_media", "not_media")
    assert shown(junk) in last_error

    report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    assert report["in_progress"] == [] and report["counts"]["processing"] == 0
    assert [f["reason"] for f in report["last_failures"] if f["path"] == shown(junk)] == ["not_media"]

    # the daemon goes on with the next file
    shutil.copyfile(jpn_eng_mkv, inbox / "good.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "good.mkv"))
    assert default_audio_languages(inbox / "good.mkv") == ["eng"]
    assert daemon.named("worker_error") == []
    assert daemon.stop() == 0
    assert digest(junk) == before
