"""A write vpod is refused says why (issue 11, item 4): a read-only mount, the systemd
sandbox (ReadWritePaths=), the immutable and append-only attributes, not a misleading
"not writable, chmod g+w". In the log's result, the database (`vpod status`) and
`vpod doctor`, with real mounts, real chattr and real `vpod` processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from support.daemon import run_vpod, write_config
from support.media import audio, copy_media, video
from support.pipeline import sha256
from support.tools import path_with
from vpod.watch.filters import TEMP_PREFIX
from vpod.writability import why_not_writable

pytestmark = pytest.mark.integration

REMUX = [video(), audio("eng", default=True), audio("jpn")]  # audio_languages = ["jpn"]: flags + reorder
FLAGS = [video(), audio("jpn"), audio("eng", default=True)]  # audio_languages = ["jpn"]: flags only, in place
POLICY = {"audio_languages": ["jpn"]}


def config_for(tmp_path: Path, watch: Path | None = None) -> Path:
    sections: dict = {"database": {"path": str(tmp_path / "vpod.db")}, "policy": POLICY}
    if watch is not None:
        sections["watch"] = {"paths": [str(watch)]}
    return write_config(tmp_path / "c.toml", sections)


def process(paths: list[Path], config: Path, env: dict[str, str]) -> dict[str, dict]:
    """``vpod process PATHS --json``: the results by file name."""
    done = run_vpod(["process", *map(str, paths), "--json", "--config", str(config)], env=env)
    assert done.stdout, done.stderr
    return {Path(r["path"]).name: r for r in json.loads(done.stdout)["results"]}


def recorded_failures(config: Path, env: dict[str, str]) -> dict[str, dict]:
    done = run_vpod(["status", "--json", "--config", str(config)], env=env)
    return {Path(f["path"]).name: f for f in json.loads(done.stdout)["last_failures"]}


def doctor(config: Path, env: dict[str, str]) -> dict[str, dict]:
    done = run_vpod(["doctor", "--json", "--config", str(config)], env=env)
    return {f["check"]: f for f in json.loads(done.stdout)}


@pytest.fixture
def read_only_bind(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(backing, mount)``: ``mount`` shows ``backing`` through a read-only bind mount
    (the filesystem itself stays writable, as under systemd's ProtectSystem=strict)."""
    if os.geteuid() != 0:
        pytest.skip("bind mounts need root")
    backing, mount = tmp_path / "backing", tmp_path / "library"
    backing.mkdir()
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", str(backing), str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot make a bind mount read-only here: {done.stderr.strip()}")
        yield backing, mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_read_only_mount_is_named_in_the_result_the_database_and_doctor(tmp_path, env, media_cache, read_only_bind):
    backing, mount = read_only_bind
    copy_media(media_cache("remux.mkv", REMUX), backing / "remux.mkv")
    copy_media(media_cache("flags.mkv", FLAGS), backing / "flags.mkv")
    digests = {p.name: sha256(p) for p in mount.iterdir()}
    config = config_for(tmp_path, watch=mount)

    results = process([mount / "remux.mkv", mount / "flags.mkv"], config, env)
    for name in ("remux.mkv", "flags.mkv"):
        result = results[name]
        assert result["reason"] == "read_only_filesystem", result
        assert f"read-only mount (mounted read-only at {mount}" in result["error"]
        assert f"mount -o remount,rw,bind {mount}" in result["error"]
        assert "g+w" not in result["error"] and "chmod" not in result["error"]
    assert {p.name: sha256(p) for p in mount.iterdir()} == digests

    failures = recorded_failures(config, env)
    assert {n: failures[n]["reason"] for n in digests} == {n: "read_only_filesystem" for n in digests}
    assert failures["remux.mkv"]["error"] == results["remux.mkv"]["error"]

    finding = doctor(config, env)[f"watch {mount}"]
    assert finding["level"] == "warn"
    assert f"the folder {mount} is on a read-only mount (mounted read-only at {mount}" in finding["detail"]


def test_read_only_mount_under_systemd_names_read_write_paths(read_only_bind):
    """The same mount seen from a sandboxed systemd service (the unit's control group in
    /proc/self/cgroup, a mount namespace of its own): the fix is the unit's
    ReadWritePaths=; the same service without a namespace of its own sees a plain
    read-only mount; and a filesystem that is itself read-only (superblock option ro) is
    called so."""
    _backing, mount = read_only_bind
    service = "0::/system.slice/vpod.service\n"
    plain = why_not_writable(mount, "the folder", cgroup=service, private_mounts=False)
    assert plain is not None and plain.reason == "read_only_filesystem"
    refusal = why_not_writable(mount, "the folder", cgroup=service, private_mounts=True)
    assert refusal is not None and refusal.reason == "systemd_sandbox"
    assert "ReadWritePaths=" in refusal.cause and "vpod.service" in refusal.cause
    assert f"`systemctl edit vpod.service` ([Service] ReadWritePaths={mount})" in refusal.fix
    mountinfo = f"99 1 8:1 / {mount} ro,relatime shared:1 - ext4 /dev/sdz1 ro\n"
    refusal = why_not_writable(mount, "the folder", mountinfo=mountinfo, cgroup=service, private_mounts=True)
    assert refusal is not None and refusal.reason == "read_only_filesystem"
    assert refusal.cause == f"the folder is on a read-only filesystem (ext4 /dev/sdz1, mounted read-only at {mount})"


@pytest.fixture
def attribute(tmp_path: Path) -> Iterator:
    """``set(path, "+i")`` with the real chattr; every attribute is removed at teardown."""
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr (Debian package e2fsprogs)")
    marked: list[Path] = []

    def set_(path: Path, flag: str) -> None:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"chattr {flag} is refused here (needs root and ext4/xfs/btrfs): {done.stderr.strip()}")
        marked.append(path)

    yield set_
    for path in marked:
        subprocess.run(["chattr", "-i", "-a", str(path)], check=False)


def test_immutable_and_append_only_files_are_named(tmp_path, env, media_cache, attribute):
    library = tmp_path / "library"
    library.mkdir()
    files = {
        "immutable-remux.mkv": (REMUX, "+i"),
        "immutable-flags.mkv": (FLAGS, "+i"),
        "append-only-flags.mkv": (FLAGS, "+a"),
    }
    for name, (tracks, flag) in files.items():
        attribute(copy_media(media_cache(f"{len(tracks)}-{flag}.mkv", tracks), library / name), flag)
    digests = {p.name: sha256(p) for p in library.iterdir()}
    config = config_for(tmp_path)
    results = process([library / n for n in files], config, env)
    for name, (_tracks, flag) in files.items():
        result = results[name]
        assert result["reason"] == "immutable", result
        word = "immutable" if flag == "+i" else "append-only"
        assert f"the file has the {word} attribute" in result["error"]
        assert f"chattr -{flag[1]} {library / name}" in result["error"]
        assert "g+w" not in result["error"]
    assert {p.name: sha256(p) for p in library.iterdir()} == digests
    assert recorded_failures(config, env)["immutable-remux.mkv"]["reason"] == "immutable"


def test_a_rename_refused_after_the_remux_says_why(tmp_path, env, media_cache, attribute):
    """The file becomes immutable while it is remuxed (a stand-in mkvmerge runs chattr +i
    on it first): the early check passed, the final rename is refused (EPERM), and the
    reason is still the attribute, with the OS error."""
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr (Debian package e2fsprogs)")
    library = tmp_path / "library"
    library.mkdir()
    path = copy_media(media_cache("remux.mkv", REMUX), library / "late.mkv")
    attribute(path, "-i")  # registers it for the teardown's chattr -i
    digest = sha256(path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("mkvmerge")
    stand_in = bin_dir / "mkvmerge"
    stand_in.write_text(
        f"#!{sys.executable}\nimport os, subprocess, sys\n"
        f"if '--output' in sys.argv:\n    subprocess.run(['chattr', '+i', {str(path)!r}], check=True)\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    stand_in.chmod(0o755)
    result = process([path], config_for(tmp_path), {**env, "PATH": path_with(bin_dir)})["late.mkv"]
    assert result["reason"] == "immutable", result
    assert "the file has the immutable attribute" in result["error"]
    assert result["error"].endswith("(Operation not permitted)")
    assert sha256(path) == digest
    assert [p for p in library.iterdir() if p.name.startswith(TEMP_PREFIX)] == []


def test_doctor_names_watch_folders_outside_the_units_read_write_paths(tmp_path, env):
    """What systemd says of the unit (a stand-in systemctl prints `systemctl show`'s
    properties): a watch folder outside ReadWritePaths= is named, with the same words
    a file there fails with."""
    inside, outside = tmp_path / "media", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    config = write_config(
        tmp_path / "c.toml",
        {"database": {"path": str(tmp_path / "vpod.db")}, "watch": {"paths": [str(inside), str(outside)]}},
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(
        "#!/bin/sh\nprintf 'LoadState=loaded\\nProtectSystem=strict\\n"
        f"ReadWritePaths=-/nonexistent {inside}\\nStateDirectory=vpod\\n'\n"
    )
    (bin_dir / "systemctl").chmod(0o755)
    found = doctor(config, {**env, "PATH": path_with(bin_dir)})
    assert f"sandbox {inside}" not in found
    finding = found[f"sandbox {outside}"]
    assert finding["level"] == "warn"
    assert finding["detail"].startswith(f"the folder {outside} is read-only for vpod: it runs in the systemd service vpod.service")
    assert f"ReadWritePaths={outside}" in finding["detail"]


def test_vpod_process_names_itself_as_the_way_to_try_again(tmp_path, env, media_cache, read_only_bind):
    """Issue 18 round 3: `vpod process`'s message for a read-only file ends with running
    `vpod process` again (its next run tries a failed file again), not the daemon's
    `vpod retry PATH`; the daemon's wording stays (the pipeline's default)."""
    backing, mount = read_only_bind
    copy_media(media_cache("remux.mkv", REMUX), backing / "remux.mkv")
    config = config_for(tmp_path)
    done = run_vpod(["process", str(mount / "remux.mkv"), "--config", str(config)], env=env)
    printed = done.stdout + done.stderr
    # vpod process watches nothing: no "or stop watching it" (T18C finding 10).
    assert f"(mount -o remount,rw,bind {mount}), then run `vpod process PATH` again" in printed, printed
    assert "stop watching" not in printed, printed
    assert "vpod retry" not in printed, printed
    refusal = why_not_writable(mount / "remux.mkv", "the file")
    assert refusal is not None and refusal.message(mount / "remux.mkv").endswith(
        f"(mount -o remount,rw,bind {mount}) or stop watching it, then run `vpod retry PATH`"
    )
