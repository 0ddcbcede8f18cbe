"""What a remuxed file keeps of its source (issue 11, item 3): ACL, user extended
attributes, mtime (unless keep_mtime = false), and owner and group; a remux that would
hand the file to vpod's own user is skipped before anything is written.

Real `vpod process` runs, real setfacl/getfacl and setfattr/getfattr, a real second user
(setpriv)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.daemon import daemon_env, write_config
from support.media import audio, copy_media, default_audio_languages, video
from support.pipeline import sha256
from support.privileges import NOBODY, drop_privileges_prefix, world_dir  # noqa: F401  (fixture)
from support.store import file_record
from vpod.watch.filters import TEMP_PREFIX

pytestmark = pytest.mark.integration

REORDER = [video(), audio("eng", default=True), audio("jpn")]  # audio_languages = ["jpn"]: a remux
OLD_MTIME_NS = 978_307_200_123_456_789  # 2001-01-01, with nanoseconds
OTHER = 1234  # a uid and gid nobody else uses


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages acl, attr; contrib/dev.sh test installs them)")


def process(path: Path, config: Path, env: dict[str, str], prefix: list[str] | None = None) -> dict:
    """``vpod process PATH --json``; the one file's result."""
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "vpod", "process", str(path), "--json", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    assert len(report["results"]) == 1, report
    return report["results"][0]


def acl(path: Path) -> str:
    return subprocess.run(
        ["getfacl", "--omit-header", "--numeric", "--absolute-names", str(path)], capture_output=True, text=True, check=True
    ).stdout


def user_xattrs(path: Path) -> dict[str, bytes]:
    return {n: os.getxattr(path, n) for n in os.listxattr(path) if n.startswith("user.")}


def decorate(path: Path) -> None:
    """Give ``path`` an ACL, two user xattrs and an old mtime, with the real tools."""
    try:
        subprocess.run(["setfattr", "-n", "user.origin", "-v", "tracker-42", str(path)], check=True, capture_output=True)
        subprocess.run(["setfattr", "-n", "user.checked", "-v", "0sAAEC/w==", str(path)], check=True, capture_output=True)
        subprocess.run(["setfacl", "-m", f"u:{OTHER}:rw,g:{OTHER}:r", str(path)], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"this filesystem refuses user xattrs or ACLs: {exc.stderr.decode().strip()}")
    path.chmod(0o640)  # the ACL mask follows the group bits: r--, so u:1234 is effectively r--
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))


@pytest.fixture
def config(tmp_path: Path):
    def make(**policy: object) -> Path:
        return write_config(
            tmp_path / "c.toml", {"database": {"path": str(tmp_path / "vpod.db")}, "policy": policy}
        )

    return make


@pytest.mark.parametrize(
    "name, tracks, policy, final",
    [
        ("film.mkv", REORDER, {"audio_languages": ["jpn"]}, "film.mkv"),
        ("film.mp4", [video(), audio("eng", default=True)], {"container": "mkv"}, "film.mkv"),
    ],
    ids=["remux", "container-change"],
)
def test_remux_keeps_acl_xattrs_and_mtime(tmp_path, env, media_cache, config, name, tracks, policy, final):
    need_tools("setfacl", "getfacl", "setfattr")
    library = tmp_path / "library"
    library.mkdir()
    path = copy_media(media_cache(name, tracks), library / name)
    decorate(path)
    before_acl, before_xattrs = acl(path), user_xattrs(path)
    assert f"user:{OTHER}:rw-" in before_acl and "mask::r--" in before_acl

    result = process(path, config(**policy), env)
    assert result["success"] and result["changes"], result
    out = library / final
    assert acl(out) == before_acl
    assert user_xattrs(out) == before_xattrs
    st = out.stat()
    assert st.st_mtime_ns == OLD_MTIME_NS
    assert oct(st.st_mode & 0o7777) == oct(0o640)
    # What the database keeps for the "unchanged" fast path is the final file's stat, with
    # the kept mtime; the inode is new, and the content fingerprint is the new content's.
    kept = file_record(tmp_path / "vpod.db", out).stat
    assert (kept.mtime_ns, kept.inode, kept.size) == (OLD_MTIME_NS, st.st_ino, st.st_size)


def test_keep_mtime_false_gives_the_processing_time(tmp_path, env, media_cache, config):
    library = tmp_path / "library"
    library.mkdir()
    path = copy_media(media_cache("film.mkv", REORDER), library / "film.mkv")
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    started_ns = time.time_ns()
    result = process(path, config(audio_languages=["jpn"], keep_mtime=False), env)
    assert result["success"] and result["changes"], result
    # Written during the run (a second of slack for the filesystem's coarser clock).
    assert path.stat().st_mtime_ns > started_ns - 10**9


def test_an_acl_the_source_does_not_have_is_not_added(tmp_path, env, media_cache, config):
    """The folder's default ACL is inherited by every new file, vpod's temp file too; a
    source without an ACL (moved in, or its ACL removed) gets none after the remux."""
    need_tools("setfacl", "getfacl")
    library = tmp_path / "library"
    library.mkdir()
    try:
        subprocess.run(["setfacl", "-d", "-m", f"u:{OTHER}:rwx", str(library)], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"this filesystem refuses ACLs: {exc.stderr.decode().strip()}")
    path = copy_media(media_cache("film.mkv", REORDER), library / "film.mkv")
    subprocess.run(["setfacl", "-b", str(path)], check=True)
    path.chmod(0o644)
    assert "system.posix_acl_access" not in os.listxattr(path)
    result = process(path, config(audio_languages=["jpn"]), env)
    assert result["success"] and result["changes"], result
    assert "system.posix_acl_access" not in os.listxattr(path), acl(path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


@pytest.fixture
def unprivileged(world_dir):  # noqa: F811
    """A library, config and HOME that user nobody can use; vpod runs as nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to own files by another user")
    library, db, home = world_dir / "library", world_dir / "db", world_dir / "home"
    for folder in (library, db, home):
        folder.mkdir()
        folder.chmod(0o777)
    config = write_config(
        world_dir / "c.toml", {"database": {"path": str(db / "vpod.db")}, "policy": {"audio_languages": ["jpn"]}}
    )
    config.chmod(0o644)
    return library, config, daemon_env(home)


def owned(source: Path, path: Path, uid: int, gid: int) -> Path:
    shutil.copyfile(source, path)
    os.chown(path, uid, gid)
    path.chmod(0o666)
    return path


def test_a_remux_that_would_lose_the_owner_is_skipped_before_anything_is_written(unprivileged, media_cache):
    library, config, env = unprivileged
    remux = owned(media_cache("film.mkv", REORDER), library / "theirs.mkv", OTHER, OTHER)
    before = sha256(remux)
    as_nobody = drop_privileges_prefix()
    result = process(remux, config, env, as_nobody)
    assert result["skipped"] and result["reason"] == "cannot_keep_owner", result
    assert f"uid {OTHER}" in result["error"] and f"uid {NOBODY}" in result["error"]
    assert "vpod retry" in result["error"]
    assert sha256(remux) == before
    st = remux.stat()
    assert (st.st_uid, st.st_gid) == (OTHER, OTHER)
    assert [p for p in library.iterdir() if p.name.startswith(TEMP_PREFIX)] == []

    # A header-only change keeps the inode, so its owner: it is still made, in place.
    in_place = owned(
        media_cache("jpn-first.mkv", [video(), audio("jpn"), audio("eng", default=True)]), library / "flags.mkv", OTHER, OTHER
    )
    inode = in_place.stat().st_ino
    result = process(in_place, config, env, as_nobody)
    assert result["success"] and result["changes"], result
    assert default_audio_languages(in_place) == ["jpn"]
    st = in_place.stat()
    assert (st.st_ino, st.st_uid, st.st_gid) == (inode, OTHER, OTHER)


def test_a_group_vpod_may_give_is_kept_one_it_may_not_is_a_skip(unprivileged, media_cache):
    library, config, env = unprivileged
    source = media_cache("film.mkv", REORDER)
    theirs = owned(source, library / "group-not-mine.mkv", NOBODY, OTHER)
    result = process(theirs, config, env, drop_privileges_prefix())
    assert result["skipped"] and result["reason"] == "cannot_keep_owner", result
    assert f"group gid {OTHER}" in result["error"]
    assert theirs.stat().st_gid == OTHER

    mine = owned(source, library / "group-mine.mkv", NOBODY, OTHER)
    result = process(mine, config, env, drop_privileges_prefix(groups=(OTHER,)))
    assert result["success"] and result["changes"], result
    st = mine.stat()
    assert (st.st_uid, st.st_gid) == (NOBODY, OTHER)
