"""vpod doctor: tool versions, config, database, watch folders, inotify limits (issue 6)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from vpod.config import VPOConfig, WatchConfig
from vpod.config import DatabaseConfig
from vpod.db.factory import open_store
from vpod.doctor import check_inotify, parse_version

pytestmark = pytest.mark.integration


def findings(result) -> dict[str, dict]:
    return {f["check"]: f for f in json.loads(result.stdout)}


def good_config(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return write_config(tmp_path / "ok.toml", {"watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "v.db")}})


def tool_dir(tmp_path: Path, skip: str = "", fake: dict[str, str] | None = None) -> Path:
    """A PATH folder with the real tools except ``skip``, and scripts printing ``fake`` versions."""
    folder = tmp_path / "tools"
    folder.mkdir(exist_ok=True)
    for tool in ("ffprobe", "ffmpeg", "mkvmerge", "mkvpropedit"):
        if tool == skip:
            continue
        if fake and tool in fake:
            (folder / tool).write_text(f"#!/bin/sh\necho \"{fake[tool]}\"\n")
            (folder / tool).chmod(0o755)
        else:
            (folder / tool).symlink_to(shutil.which(tool))
    return folder


def test_healthy_installation_passes(tmp_path, env):
    result = run_vpod(["doctor", "--config", str(good_config(tmp_path)), "--json"], env=env)
    assert result.returncode == 0, result.stdout
    found = findings(result)
    for tool in ("ffprobe", "ffmpeg", "mkvmerge", "mkvpropedit"):
        assert found[f"tool {tool}"]["level"] == "ok" and ">=" in found[f"tool {tool}"]["detail"]
    assert found["config"]["level"] == "ok"
    assert found["database"]["level"] == "ok"
    assert found[f"watch {tmp_path / 'inbox'}"]["level"] == "ok"
    assert found["inotify"]["level"] == "ok" and "max_user_watches" in found["inotify"]["detail"]
    assert "will be created" in found["database"]["detail"]
    open_store(DatabaseConfig(path=tmp_path / "v.db")).close()  # now it exists
    text = run_vpod(["doctor", "--config", str(good_config(tmp_path))], env=env)
    assert text.returncode == 0
    assert "no blocking problem" in text.stdout and "[ OK ] tool mkvmerge" in text.stdout
    assert f"[ OK ] database: {tmp_path / 'v.db'} is writable" in text.stdout


def test_missing_and_old_tools_block(tmp_path, env):
    folder = tool_dir(tmp_path, skip="mkvpropedit", fake={"mkvmerge": "mkvmerge v9.0.0 ('old') 64-bit"})
    result = run_vpod(["doctor", "--config", str(good_config(tmp_path)), "--json"], env={**env, "PATH": str(folder)})
    assert result.returncode == 1
    found = findings(result)
    assert found["tool mkvpropedit"]["level"] == "fail" and "apt-get install mkvtoolnix" in found["tool mkvpropedit"]["detail"]
    assert found["tool mkvmerge"]["level"] == "fail" and "9.0.0 is older than 52.0" in found["tool mkvmerge"]["detail"]
    assert found["tool ffprobe"]["level"] == "ok"


def test_bad_config_blocks_and_names_the_key(tmp_path, env):
    config = write_config(tmp_path / "bad.toml", {"processing": {"workers": 0}})
    result = run_vpod(["doctor", "--config", str(config), "--json"], env=env)
    assert result.returncode == 1
    assert "[processing] workers" in findings(result)["config"]["detail"]


def test_unwritable_database_and_bad_watch_path_block(tmp_path, env):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    config = write_config(
        tmp_path / "c.toml",
        {"watch": {"paths": [str(not_a_folder), str(tmp_path / "missing")]}, "database": {"path": str(not_a_folder / "v.db")}},
    )
    result = run_vpod(["doctor", "--config", str(config), "--json"], env=env)
    assert result.returncode == 1
    found = findings(result)
    assert found["database"]["level"] == "fail"
    assert found[f"watch {not_a_folder}"]["level"] == "fail"
    assert found[f"watch {tmp_path / 'missing'}"]["level"] == "warn"


def test_inotify_limit_lower_than_the_folders_warns(tmp_path):
    # /proc/sys/fs/inotify is the kernel's; a copy with tiny limits stands in for it
    sysctl = tmp_path / "inotify"
    sysctl.mkdir()
    (sysctl / "max_user_watches").write_text("3\n")
    (sysctl / "max_user_instances").write_text("128\n")
    root = tmp_path / "library"
    for name in ("a", "b", "c/d"):
        (root / name).mkdir(parents=True)
    config = VPOConfig(watch=WatchConfig(paths=(root,)))
    finding = check_inotify(config, sysctl)
    assert finding.level == "warn"
    assert "5 folders" in finding.detail and "max_user_watches = 3" in finding.detail
    (sysctl / "max_user_watches").write_text("100000\n")
    assert check_inotify(config, sysctl).level == "ok"


def test_inotify_queue_length_is_shown(tmp_path):
    # the kernel's own values: max_queued_events is readable wherever /proc is
    root = tmp_path / "library"
    root.mkdir()
    queued = Path("/proc/sys/fs/inotify/max_queued_events").read_text().strip()
    finding = check_inotify(VPOConfig(watch=WatchConfig(paths=(root,))))
    assert f"fs.inotify.max_queued_events = {queued}" in finding.detail


def test_parse_version_forms():
    assert parse_version("ffprobe version 5.1.9-0+deb12u1 Copyright (c) 2007-2026") == (5, 1, 9)
    assert parse_version("ffmpeg version n6.1 Copyright") == (6, 1)
    assert parse_version("mkvmerge v74.0.0 ('You Oughta Know') 64-bit") == (74, 0, 0)
    assert parse_version("ffmpeg version N-112233-gabcdef") is None


def test_a_transcode_lane_as_wide_as_the_workers_warns_in_doctor_and_config_check(tmp_path, env):
    """max_transcodes >= workers: header edits would wait behind encodes (issue 18, item 2)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    wide = write_config(tmp_path / "wide.toml", {
        "watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "v.db")},
        "processing": {"workers": 2, "max_transcodes": 2},
    })  # fmt: skip
    cpus = {**env, "VPOD_CPU_COUNT": "4"}
    found = findings(run_vpod(["doctor", "--config", str(wide), "--json"], env=cpus))
    assert found["transcode lane"]["level"] == "warn" and "max_transcodes = 2" in found["transcode lane"]["detail"]
    checked = run_vpod(["config", "check", "--config", str(wide)], env=cpus)
    assert checked.returncode == 0 and "warning: [processing] max_transcodes = 2" in checked.stderr
    narrow = write_config(tmp_path / "narrow.toml", {
        "watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "v.db")},
        "processing": {"workers": 2, "max_transcodes": 1},
    })  # fmt: skip
    assert findings(run_vpod(["doctor", "--config", str(narrow), "--json"], env=cpus))["transcode lane"]["level"] == "ok"
    assert "warning" not in run_vpod(["config", "check", "--config", str(narrow)], env=cpus).stderr



def test_one_worker_beside_a_policy_that_encodes_warns_and_unset_workers_leave_one_free(tmp_path, env):
    """T18C finding 2: on 2 CPUs, ``workers`` unset was 1 and ``max_transcodes`` 1, so a
    flag fix waited for a whole encode while doctor said ``[ OK ]`` and config check
    nothing. Unset beside a policy that encodes, the count is now 2 (half the CPUs plus
    max_transcodes); set to 1, doctor WARNs and config check warns, naming the fix."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    base = {"watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "v.db")}}
    cpus = {**env, "VPOD_CPU_COUNT": "2"}
    encodes = {"policies": {"films": {"video_codec": {"codec": "hevc"}}}}  # a named policy is enough
    unset = write_config(tmp_path / "unset.toml", {**base, **encodes})
    lane = findings(run_vpod(["doctor", "--config", str(unset), "--json"], env=cpus))["transcode lane"]
    assert lane["level"] == "ok" and "at most 1 of 2 workers encode at once" in lane["detail"], lane
    checked = run_vpod(["config", "check", "--config", str(unset)], env=cpus)
    assert checked.returncode == 0 and "warning" not in checked.stderr, checked.stderr
    assert (
        "workers = 2  # not set: half of the 2 CPU(s) available to vpod, plus max_transcodes (1) as policy films "
        "encodes, so a worker stays free for header edits and remuxes"
    ) in checked.stdout
    data = json.loads(run_vpod(["config", "check", "--config", str(unset), "--json"], env=cpus).stdout)
    assert (data["processing"]["workers"], data["processing"]["workers_requested"]) == (2, None)

    one = write_config(tmp_path / "one.toml", {**base, **encodes, "processing": {"workers": 1}})
    lane = findings(run_vpod(["doctor", "--config", str(one), "--json"], env=cpus))["transcode lane"]
    assert lane["level"] == "warn", lane
    assert "max_transcodes = 1 is not below workers = 1 (policy films encodes)" in lane["detail"]
    assert "set workers = 2" in lane["detail"] and "leave workers unset" in lane["detail"]
    checked = run_vpod(["config", "check", "--config", str(one)], env=cpus)
    assert checked.returncode == 0
    assert "warning: [processing] max_transcodes = 1 is not below workers = 1 (policy films encodes)" in checked.stderr

    # No policy of the config encodes: one worker, as before, and no warning (only a
    # folder .vpod.toml could encode, and doctor says so).
    plain = write_config(tmp_path / "plain.toml", base)
    lane = findings(run_vpod(["doctor", "--config", str(plain), "--json"], env=cpus))["transcode lane"]
    assert lane["level"] == "ok" and "one worker" in lane["detail"] and ".vpod.toml" in lane["detail"], lane
    checked = run_vpod(["config", "check", "--config", str(plain)], env=cpus)
    assert "warning" not in checked.stderr and "workers = 1  # not set: as many as fit" in checked.stdout

ENCODING_POLICIES = {
    "policy": {"video_codec": {"codec": "hevc"}, "audio_compat": {"codec": "aac"}},
    "policies": {
        "anime": {"video_codec": {"codec": "av1"}, "audio_convert": {"codecs": ["flac"], "to": "opus"}},
        "tv": {"video_codec": {"codec": "hevc", "encoder": "vaapi"}},  # hevc_vaapi: in Debian's ffmpeg
    },
}


def encoders_config(tmp_path: Path, device: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return write_config(tmp_path / "enc.toml", {
        "watch": {"paths": [str(inbox)]}, "database": {"path": str(tmp_path / "v.db")},
        "processing": {"vaapi_device": str(device)}, **ENCODING_POLICIES,
    })  # fmt: skip


def test_encoders_the_policies_need_are_checked_with_one_ffmpeg_run(tmp_path, env):
    """Finding "encoders": each encoder the [policy] and [policies.NAME] need, against one
    `ffmpeg -hide_banner -encoders`; a missing one is named with what to install; a
    policy with encoder = "vaapi" also gets its device checked (issue 18 fix)."""
    folder = tmp_path / "tools"
    folder.mkdir()
    for tool in ("ffprobe", "mkvmerge", "mkvpropedit"):
        (folder / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "ffmpeg.log"
    (folder / "ffmpeg").write_text(  # the real ffmpeg, less libsvtav1, libopus and hevc_vaapi in its list
        f"#!/bin/sh\necho \"$*\" >> {log}\n"
        f"if [ \"$*\" = \"-hide_banner -encoders\" ]; then {shutil.which('ffmpeg')} \"$@\" | grep -v -e libsvtav1 -e libopus -e hevc_vaapi; "
        f"else exec {shutil.which('ffmpeg')} \"$@\"; fi\n"
    )
    (folder / "ffmpeg").chmod(0o755)
    path_env = {**env, "PATH": f"{folder}:{env['PATH']}"}
    config = encoders_config(tmp_path, tmp_path / "no-such-renderD128")
    found = findings(run_vpod(["doctor", "--config", str(config), "--json"], env=path_env))
    encoders = found["encoders"]
    assert encoders["level"] == "warn", encoders
    assert f"this ffmpeg ({folder / 'ffmpeg'}) lacks libsvtav1, libopus:" in encoders["detail"], encoders
    assert "apt install ffmpeg" in encoders["detail"]
    # T18C finding 10: a missing hardware encoder said "it lacks"; it names the ffmpeg now.
    assert f"; this ffmpeg ({folder / 'ffmpeg'}) lacks hevc_vaapi: the software encoder runs instead" in encoders["detail"]
    for needed in ("libx265 (default, tv)", "aac (default)", "libsvtav1 (anime)", "libopus (anime)", "hevc_vaapi (tv)"):
        assert needed in encoders["detail"]
    assert ".vpod.toml" in encoders["detail"]  # folder policy files: not known up front
    assert found["vaapi device"]["level"] == "warn" and "PrivateDevices" in found["vaapi device"]["detail"]
    assert log.read_text().splitlines().count("-hide_banner -encoders") == 1

    # /dev/null is readable and writable, but no VAAPI driver opens it (T18C finding 5).
    null = findings(run_vpod(["doctor", "--config", str(encoders_config(tmp_path, Path("/dev/null"))), "--json"], env=env))
    assert null["encoders"]["level"] == "ok", null["encoders"]
    assert null["vaapi device"]["level"] == "warn", null["vaapi device"]
    assert "/dev/null is not a DRM render node (a character device 1:3" in null["vaapi device"]["detail"]
    device = tmp_path / "renderD128"
    try:
        os.mknod(device, 0o660 | stat.S_IFCHR, os.makedev(226, 128))
    except PermissionError:
        pass  # not root: the node check's "ok" is not reached here
    else:
        real = findings(run_vpod(["doctor", "--config", str(encoders_config(tmp_path, device)), "--json"], env=env))
        assert real["vaapi device"]["level"] == "ok", real["vaapi device"]
        assert f"{device} is a DRM render node (226:128), readable and writable" in real["vaapi device"]["detail"]
    plain = findings(run_vpod(["doctor", "--config", str(good_config(tmp_path)), "--json"], env=env))
    assert plain["encoders"]["level"] == "ok" and "no configured policy encodes" in plain["encoders"]["detail"]
    assert "vaapi device" not in plain
