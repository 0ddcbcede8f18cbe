"""Nothing lost, nothing twice, nothing damaged across kill -9 (issue 5, items 1-4)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from support.media import default_audio_languages
from support.store import file_record, store_at

pytestmark = pytest.mark.integration

SETTLE = 0.3


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def changes_recorded(db: Path, name: str) -> int:
    return query(
        db,
        "SELECT COUNT(*) FROM results WHERE success = 1 AND changes > 0 AND CAST(path AS TEXT) LIKE ?",
        f"%/{name}",
    )[0][0]


def config(inbox: Path) -> dict:
    return {"watch": {"paths": [str(inbox)], "settle_seconds": SETTLE}, "processing": {"batch_window_seconds": 5}}


def test_kill_9_at_random_moments(tmp_path, daemon_factory, jpn_eng_mkv):
    seed = int(os.environ.get("VPOD_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"crash test seed: {seed} (set VPOD_CRASH_SEED to replay)")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db = tmp_path / "vpod.db"
    good = [f"good-{i:02d}.mkv" for i in range(48)]
    bad = ["bad-1.mkv", "bad-2.mkv"]

    daemon = daemon_factory(config(inbox), name="run0")
    for name in good:
        shutil.copyfile(jpn_eng_mkv, inbox / name)
    for name in bad:
        (inbox / name).write_text(f"{name}: not a video\n" * 50)
    dropped = {name: sha(inbox / name) for name in bad}

    requeued = 0
    for round_ in range(5):
        time.sleep(rng.uniform(0.2, 1.5))
        daemon.kill()
        daemon = daemon_factory(config(inbox), name=f"run{round_ + 1}")
        requeued += daemon.named("daemon_started")[0]["requeued_after_crash"]
    assert requeued >= 1, "no kill landed while a file was in progress; the test proved nothing"

    deadline = time.monotonic() + 240
    with store_at(db) as store:
        while time.monotonic() < deadline:
            counts = store.queue_report(batches=0, failures=0).counts
            open_rows = counts["queued"] + counts["processing"]
            final_rows = counts["done"] + counts["failed"]
            if open_rows == 0 and final_rows >= len(good) + len(bad):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"not everything was processed (seed {seed}):\n{daemon.tail()}")
    assert daemon.stop() == 0

    for name in good:
        assert default_audio_languages(inbox / name) == ["eng"], (name, seed)
        assert changes_recorded(db, name) == 1, (name, seed)
    for name in bad:
        assert sha(inbox / name) == dropped[name], (name, seed)
        assert file_record(db, inbox / name).state == "failed", (name, seed)
    assert not [p for p in inbox.iterdir() if p.name.startswith(".vpod-tmp-")]
    with store_at(db) as store:
        assert store.pending_temps() == []


def test_files_dropped_while_down_are_processed_at_start(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    shutil.copyfile(jpn_eng_mkv, inbox / "early.mkv")
    shutil.copyfile(jpn_eng_mkv, inbox / "sub" / "nested.mkv")
    daemon = daemon_factory(config(inbox))
    daemon.wait_for("file_processed", path=str(inbox / "early.mkv"))
    daemon.wait_for("file_processed", path=str(inbox / "sub" / "nested.mkv"))
    assert daemon.stop() == 0


def test_rescan_after_processing_queues_nothing(tmp_path, daemon_factory, jpn_eng_mkv):
    """touch -a, chmod, a new hard link, cp -p: no new job, by the scan or by events."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db = tmp_path / "vpod.db"
    daemon = daemon_factory(config(inbox), name="first")
    shutil.copyfile(jpn_eng_mkv, inbox / "movie.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "movie.mkv"))
    # while running: the event path
    subprocess.run(["touch", "-a", str(inbox / "movie.mkv")], check=True)
    os.chmod(inbox / "movie.mkv", 0o640)
    os.link(inbox / "movie.mkv", inbox / "hardlink.mkv")
    subprocess.run(["cp", "-p", str(inbox / "movie.mkv"), str(inbox / "copy-p.mkv")], check=True)
    daemon.wait_for("file_not_queued", path=str(inbox / "copy-p.mkv"))
    daemon.wait_for("file_not_queued", path=str(inbox / "hardlink.mkv"))
    time.sleep(SETTLE * 4)
    assert daemon.stop() == 0
    assert len(daemon.named("file_queued")) == 1

    # while stopped, then a restart with the catch-up scan
    subprocess.run(["touch", "-a", str(inbox / "movie.mkv")], check=True)
    os.chmod(inbox / "movie.mkv", 0o600)
    os.link(inbox / "movie.mkv", inbox / "hardlink-2.mkv")
    subprocess.run(["cp", "-p", str(inbox / "movie.mkv"), str(inbox / "copy-p-2.mkv")], check=True)
    again = daemon_factory(config(inbox), name="second")
    again.wait_for("scan_completed")
    time.sleep(SETTLE * 4)
    assert again.stop() == 0
    assert again.named("file_queued") == []
    assert again.named("file_processed") == []
    assert changes_recorded(db, "movie.mkv") == 1


def test_same_size_and_mtime_new_content_is_caught_by_events(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    target = inbox / "movie.mkv"
    shutil.copyfile(jpn_eng_mkv, target)
    daemon.wait_for("file_processed", path=str(target))
    reference = tmp_path / "reference"
    reference.touch()
    st = target.stat()
    os.utime(reference, ns=(st.st_atime_ns, st.st_mtime_ns))
    middle = st.st_size // 2
    with open(target, "r+b") as handle:  # same inode, same size, one byte of frame data differs
        handle.seek(middle)
        byte = handle.read(1)
        handle.seek(middle)
        handle.write(bytes([byte[0] ^ 0xFF]))
    subprocess.run(["touch", "-r", str(reference), str(target)], check=True)
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    daemon.wait_for("file_queued", path=str(target), count=2)
    daemon.wait_for("file_processed", path=str(target), count=2)
    assert daemon.stop() == 0


def test_replaced_content_is_processed_again(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    target = inbox / "movie.mkv"
    shutil.copyfile(jpn_eng_mkv, target)
    daemon.wait_for("file_processed", path=str(target))
    time.sleep(SETTLE * 3)
    staged = tmp_path / "upgrade.mkv"
    shutil.copyfile(jpn_eng_mkv, staged)
    os.replace(staged, target)  # a re-download lands under the same name
    daemon.wait_for("file_processed", path=str(target), count=2)
    assert default_audio_languages(target) == ["eng"]
    assert daemon.stop() == 0


def test_permanent_failure_waits_for_a_change(tmp_path, daemon_factory, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(config(inbox))
    target = inbox / "movie.mkv"
    target.write_text("not yet a video\n" * 10)
    daemon.wait_for("file_failed", path=str(target))
    subprocess.run(["touch", str(target)], check=True)
    with open(target, "a") as handle:  # rewrite the same bytes: content unchanged
        handle.truncate(0)
        handle.write("not yet a video\n" * 10)
    daemon.wait_for("file_not_queued", path=str(target))
    assert len(daemon.named("file_failed", path=str(target))) == 1
    shutil.copyfile(jpn_eng_mkv, target)  # the real content arrives
    daemon.wait_for("file_processed", path=str(target))
    assert daemon.stop() == 0
