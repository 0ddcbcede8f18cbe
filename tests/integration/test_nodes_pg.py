"""Several nodes on one library through PostgreSQL (issue 14 items 3 and 4): real
`vpod run` processes on a real server, each node reaching the library folder by its
own path (here a symlink: a bind mount needs privileges the test may not have).

What is checked: two nodes of one database run on one machine, a third daemon with a
node name in use is refused; they share the library's `.vpod-library` marker (neither
is "another vpod"); a new library's empty folder is verified on no node, and the first
file in it makes one node write the one identity marker naming the library; a file
both watchers see makes one job and one processing; a node whose folder is an empty
mount point claims nothing of the library until the share is mounted, then does the
work without a restart, and nothing was requeued or failed meanwhile.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from support.daemon import run_vpod
from support.media import default_audio_languages
from vpod.db.factory import open_store
from vpod.fingerprint import fingerprint_path
from vpod.watch.library_id import ID_MARKER_NAME
from vpod.watch.ownership import MARKER_NAME

pytestmark = pytest.mark.integration


def node_sections(database, name: str, folder) -> dict:
    return {
        "watch": {"libraries": {"movies": str(folder)}, "settle_seconds": 0.5},
        "processing": {"batch_window_seconds": 30, "workers": 1},
        "database": {"path": str(database.path), "url": database.url, "password_file": database.password_file},
        "node": {"name": name},
    }


def test_two_nodes_share_a_library_and_an_unmounted_node_claims_nothing_until_mounted(
    tmp_path, daemon_factory, jpn_eng_mkv, postgres, env
):
    library = tmp_path / "nas" / "movies"
    library.mkdir(parents=True)
    mount_b = tmp_path / "node-b-mnt"
    mount_b.symlink_to(library)  # node b's path to the same folder
    (tmp_path / "state").mkdir()
    database = postgres.database(tmp_path / "state")  # both nodes' state folder: their locks sit side by side

    a = daemon_factory(node_sections(database, "node-a", library), name="a")
    b = daemon_factory(node_sections(database, "node-b", mount_b), name="b")
    refused = run_vpod(["run", "--config", str(a.config)], env=env, timeout=60)
    assert refused.returncode == 75, refused.stderr
    assert "'node-a'" in refused.stderr and f"pid {a.proc.pid}" in refused.stderr
    for node, name in ((a, "node-a"), (b, "node-b")):
        assert node.named("daemon_started")[0]["node"] == name
        assert not node.named("library_claimed_elsewhere")  # one database: one vpod, not two
    for node in (a, b):  # an empty folder proves nothing, even of a library with no files yet
        [unverified] = node.wait_for("library_mount_unverified", library="movies")
        assert "empty" in unverified["reason"]
    assert not (library / ID_MARKER_NAME).exists()
    assert not (library / MARKER_NAME).exists()  # nothing is written into a folder not proven

    (library / "one.mkv").write_bytes(jpn_eng_mkv.read_bytes())  # both watchers see it
    deadline = time.monotonic() + 60
    while not (a.named("file_processed") or b.named("file_processed")):  # either node may take it
        assert time.monotonic() < deadline, "no node processed one.mkv"
        time.sleep(0.05)
    assert default_audio_languages(library / "one.mkv") == ["eng"]
    # A new library was empty: it is marked at the next check after its first file, once,
    # by the node that saw it; then it is verified there and walked.
    while not (a.named("library_marker_written") or b.named("library_marker_written")):
        assert time.monotonic() < deadline, "no node marked the library"
        time.sleep(0.05)
    marker = json.loads((library / ID_MARKER_NAME).read_text())
    while not (library / MARKER_NAME).exists():  # proven now: the ownership marker follows
        assert time.monotonic() < deadline, "no node wrote the ownership marker once the library was proven"
        time.sleep(0.05)
    store = open_store(database, node="node-test")
    try:
        assert marker["database_id"] == store.database_id()
        assert marker["library_uid"] == next(lib.uid for lib in store.libraries() if lib.name == "movies")
    finally:
        store.close()
    assert a.stop() == 0 and b.stop() == 0
    queued = a.named("file_queued") + b.named("file_queued")
    done = a.named("file_processed") + b.named("file_processed")
    assert len(queued) == 1 and len(done) == 1, (queued, done)
    assert len(a.named("library_marker_written") + b.named("library_marker_written")) == 1
    for node in (a, b):
        names = [e["event"] for e in node.events()]
        if "file_started" in names:  # nothing claimed before its folder was proven
            assert names.index("library_mount_verified") < names.index("file_started"), names
    assert not (library / MARKER_NAME).exists()  # the last node to stop removed it

    # Node c's share is not mounted: its mount point is an empty folder. A queued file of
    # the library waits for a node that can reach it.
    (library / "two.mkv").write_bytes(jpn_eng_mkv.read_bytes())
    store = open_store(database, node="node-a")
    try:
        store.bind_libraries({library: "movies"})
        fingerprint, stat = fingerprint_path(library / "two.mkv")
        store.enqueue(library, b"two.mkv", fingerprint, stat)
    finally:
        store.close()
    mount_c = tmp_path / "node-c-mnt"
    mount_c.mkdir()
    c = daemon_factory(node_sections(database, "node-c", mount_c), name="c")
    [unverified] = c.wait_for("library_mount_unverified", library="movies")
    assert "empty" in unverified["reason"] and not (mount_c / ID_MARKER_NAME).exists()
    # The share mounts late (here: the mount point's path comes to name the library's
    # folder). c wrote nothing into the bare mount point, not even its .vpod-library.
    os.rename(mount_c, tmp_path / "bare-mount-point")
    assert list((tmp_path / "bare-mount-point").iterdir()) == []
    mount_c.symlink_to(library)
    c.wait_for("library_mount_verified", library="movies")
    c.wait_for("file_processed", path=str(mount_c / "two.mkv"))
    names = [e["event"] for e in c.events()]
    verified_at = names.index("library_mount_verified")
    assert verified_at < names.index("file_started")  # nothing claimed before the share was there
    assert "file_failed" not in names and "file_retry" not in names
    assert default_audio_languages(library / "two.mkv") == ["eng"]
    assert c.stop() == 0
