"""A node writes nothing into a library folder it has not proven (issue 14 fresh-user
finding): an empty mount point (``library_mount_unverified``) gets no ``.vpod-library``
ownership marker, and the hint says to check the mount before restoring the identity
marker; a missing folder's hint does not tell the user to write a marker at all. Once a
file is in the folder (a new library: it is marked and proven), the ownership marker
follows. A real daemon on a real PostgreSQL database."""

from __future__ import annotations

import shutil

import pytest

from support.cluster import wait_until
from vpod.watch.library_id import ID_MARKER_NAME
from vpod.watch.ownership import MARKER_NAME

pytestmark = pytest.mark.integration


def test_no_ownership_marker_in_an_unproven_folder_and_a_hint_that_checks_the_mount_first(
    tmp_path, daemon_factory, postgres, jpn_eng_mkv
):
    db = postgres.database(tmp_path)
    empty, missing = tmp_path / "mnt" / "movies", tmp_path / "mnt" / "shows"
    empty.mkdir(parents=True)  # a mount point whose share is not mounted
    daemon = daemon_factory({
        "watch": {"libraries": {"movies": str(empty), "shows": str(missing)}, "settle_seconds": 0.3},
        "database": {"url": db.url, "password_file": db.password_file, "path": str(db.path)},
        "node": {"name": "a"},
    })
    events = {e["library"]: e for e in daemon.wait_for("library_mount_unverified", count=2)}
    assert "empty" in events["movies"]["reason"]
    assert "first check that" in events["movies"]["hint"] and "findmnt" in events["movies"]["hint"]
    assert "printf" not in events["shows"]["hint"] and "mount the library's share" in events["shows"]["hint"]
    daemon.wait_for("library_mount_unverified", count=2)  # the daemon is past its first claims
    assert not (empty / MARKER_NAME).exists()
    assert not (empty / ID_MARKER_NAME).exists()

    shutil.copyfile(jpn_eng_mkv, empty / "a.mkv")  # the share is there now: a new library is marked
    daemon.wait_for("library_mount_verified", library="movies", timeout=60)
    wait_until(lambda: (empty / MARKER_NAME).exists(), timeout=30, what="the ownership marker once proven")
    assert (empty / ID_MARKER_NAME).exists()
