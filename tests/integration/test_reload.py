"""SIGHUP reloads the config: policy, watch paths, workers; a broken file is kept out (issue 6)."""

from __future__ import annotations

import json
import shutil
import signal
import time

import pytest

from support.daemon import run_vpod, wait_in_progress, write_config
from support.media import audio, default_audio_languages, video
from support.notify import NotifyListener
from support.tools import gated_tool, path_with

pytestmark = pytest.mark.integration

SETTLE = 0.3


def sections(inbox, languages, **processing):
    return {
        "watch": {"paths": [str(p) for p in (inbox if isinstance(inbox, list) else [inbox])], "settle_seconds": SETTLE},
        "processing": {"batch_window_seconds": 30, **processing},
        "policy": {"audio_languages": languages},
        "database": {"path": "vpod.db"},
        "logging": {"format": "json", "level": "debug"},
    }


@pytest.fixture
def eng_jpn_mkv(media_cache):
    """video + audio eng (default) + audio jpn: a jpn-first policy makes jpn the default."""
    return media_cache("eng-jpn.mkv", [video(), audio("eng", default=True), audio("jpn")])


def test_changed_policy_applies_to_next_file_not_the_one_in_progress(tmp_path, daemon_factory, env, jpn_eng_mkv, eng_jpn_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    gate = tmp_path / "hold-mkvpropedit"
    gate.touch()  # the first file stays in progress until the reload is done
    tools = gated_tool(tmp_path / "bin", "mkvpropedit", gate)
    daemon = daemon_factory(sections(inbox, ["eng"], workers=1), extra_env={"PATH": path_with(tools)})

    shutil.copyfile(jpn_eng_mkv, inbox / "first.mkv")
    status = wait_in_progress(daemon.config, env, inbox / "first.mkv")
    assert status["state"] == "running"
    # the file in progress has its policy already; the new one must not touch it
    write_config(daemon.config, sections(inbox, ["jpn"], workers=1))
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")[0]
    assert "[policy] audio_languages" in reloaded["changed"]
    shutil.copyfile(eng_jpn_mkv, inbox / "second.mkv")
    gate.unlink()

    first = daemon.wait_for("file_processed", path=str(inbox / "first.mkv"))[0]
    daemon.wait_for("file_processed", path=str(inbox / "second.mkv"))
    assert reloaded["timestamp"] < first["timestamp"]  # the reload happened mid-file
    assert default_audio_languages(inbox / "first.mkv") == ["eng"]  # old policy
    assert default_audio_languages(inbox / "second.mkv") == ["jpn"]  # new policy
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    "broken, key",
    [
        ('[policy]\naudio_languages = ["not-a-language"]\n', "[policy] audio_languages"),
        ("[processing]\nworkers = 0\n", "[processing] workers"),
        ("[watch\npaths = [", None),  # not TOML at all
    ],
)
def test_broken_config_is_rejected_and_old_one_stays(tmp_path, daemon_factory, jpn_eng_mkv, broken, key):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = daemon_factory(sections(inbox, ["eng"]))
    daemon.config.write_text(broken)
    daemon.signal(signal.SIGHUP)
    failed = daemon.wait_for("config_reload_failed")[0]
    assert failed["level"] == "error"
    assert failed["config"] == str(daemon.config)
    assert failed["key"] == key and failed["error"]
    assert not daemon.named("config_reloaded")

    shutil.copyfile(jpn_eng_mkv, inbox / "after.mkv")
    daemon.wait_for("file_processed", path=str(inbox / "after.mkv"))
    assert default_audio_languages(inbox / "after.mkv") == ["eng"]  # the old policy still rules
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_reload_moves_watches_and_changes_worker_count(tmp_path, daemon_factory, env, jpn_eng_mkv):
    old_inbox, new_inbox = tmp_path / "old", tmp_path / "new"
    old_inbox.mkdir()
    new_inbox.mkdir()
    shutil.copyfile(jpn_eng_mkv, new_inbox / "waiting.mkv")  # there before it is watched
    cpu = {"VPOD_CPU_COUNT": "8"}
    daemon = daemon_factory(sections(old_inbox, ["eng"], workers=1), extra_env=cpu)

    write_config(daemon.config, sections(new_inbox, ["eng"], workers=3, queue_size=5))
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")[0]
    assert reloaded["workers"] == 3
    assert reloaded["watch_paths"] == [str(new_inbox)]
    assert reloaded["restart_needed"] == ["[processing] queue_size"]
    daemon.wait_for("watch_stopped", root=str(old_inbox))
    daemon.wait_for("file_processed", path=str(new_inbox / "waiting.mkv"))  # catch-up scan of the new root
    status = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
    assert status["workers"] == 3

    shutil.copyfile(jpn_eng_mkv, old_inbox / "ignored.mkv")
    shutil.copyfile(jpn_eng_mkv, new_inbox / "seen.mkv")
    daemon.wait_for("file_processed", path=str(new_inbox / "seen.mkv"))
    time.sleep(SETTLE * 4)
    assert not daemon.named("file_queued", path=str(old_inbox / "ignored.mkv"))

    write_config(daemon.config, sections(new_inbox, ["eng"], workers=1, queue_size=5))
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("worker_retired", count=2)
    shutil.copyfile(jpn_eng_mkv, new_inbox / "after-shrink.mkv")
    daemon.wait_for("file_processed", path=str(new_inbox / "after-shrink.mkv"))
    assert daemon.stop() == 0


def test_reload_applies_the_log_level(tmp_path, daemon_factory, env, jpn_eng_mkv):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    notify = NotifyListener()  # tells when the reload is done: it is not logged at level error
    try:
        daemon = daemon_factory(sections(inbox, ["eng"]), extra_env={"NOTIFY_SOCKET": notify.address})
        quiet = sections(inbox, ["eng"])
        quiet["logging"]["level"] = "error"
        write_config(daemon.config, quiet)
        count = len(notify.messages)
        daemon.signal(signal.SIGHUP)
        i, _ = notify.wait_for(lambda m: m.get("RELOADING") == "1", after=count)
        notify.wait_for(lambda m: m.get("READY") == "1", after=i + 1)
    finally:
        notify.close()
    shutil.copyfile(jpn_eng_mkv, inbox / "quiet.mkv")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = json.loads(run_vpod(["status", "--config", str(daemon.config), "--json"], env=env).stdout)
        if report["counts"]["done"] == 1:
            break
        time.sleep(0.2)
    assert report["counts"]["done"] == 1
    assert default_audio_languages(inbox / "quiet.mkv") == ["eng"]
    assert daemon.named("config_reload_started")  # logged before the new level took effect
    assert not daemon.named("file_processed") and not daemon.named("file_queued")  # info: filtered now
    assert daemon.stop() == 0
