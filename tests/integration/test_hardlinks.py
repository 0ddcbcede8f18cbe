"""``[policy] hardlinks``: what vpod does to a file with several hard links (a torrent that
Sonarr/Radarr hard-linked into the library while it seeds): "skip", "headers" (the
default), "break". Real hard links, real tools, the real pipeline, `vpod plan`,
`vpod process` and the real daemon."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from support.media import audio, copy_media, mkvmerge_tracks, subtitle, video
from support.pipeline import pipeline, seeding_link, sha256  # noqa: F401  (fixture)
from vpod.policy.policy import policy_from_table

pytestmark = pytest.mark.integration

# audio_languages = ["jpn"] asks for two flag changes (header part) and a reorder (a remux).
TRACKS = [video(), audio("eng", default=True), audio("jpn"), subtitle("eng")]
JPN_FIRST = {"audio_languages": ["jpn"], "default_subtitle": "none"}


def policy(**table: object):  # type: ignore[no-untyped-def]
    return policy_from_table({**JPN_FIRST, **table}, source=None, base_dir=None)


def audio_tracks(path: Path) -> list[tuple[str, bool]]:
    return [(t["language"], t["default"]) for t in mkvmerge_tracks(path) if t["type"] == "audio"]


@pytest.fixture
def linked(pipeline, media_cache, tmp_path):  # noqa: F811
    """A file in the library with a second hard link outside it (the seeding copy)."""
    path = copy_media(media_cache("hardlinks.mkv", TRACKS), pipeline.library / "film.mkv")
    return path, seeding_link(path, tmp_path)


def test_a_hard_linked_file_whose_plan_is_header_only_is_edited_in_place_and_done(pipeline, linked):  # noqa: F811
    """Under "headers" (and "break") a plan with no remux is the whole plan: the file is done."""
    path, other = linked
    out = pipeline.run(path, policy(track_order=[])).result
    assert out.success and out.changes == 2, out
    assert path.stat().st_ino == other.stat().st_ino and path.stat().st_nlink == 2
    assert audio_tracks(other) == [("eng", False), ("jpn", True)]


def test_skip_leaves_a_hard_linked_file_alone_even_for_header_changes(pipeline, linked):  # noqa: F811
    path, other = linked
    digest = sha256(other)
    for table in ({"hardlinks": "skip"}, {"hardlinks": "skip", "track_order": []}):  # a remux, then flags only
        out = pipeline.run(path, policy(**table)).result
        assert out.skipped and out.reason == "hardlinked" and out.changes == 0, out
        assert 'hardlinks = "skip"' in out.error and "2 hard links" in out.error
    assert sha256(other) == digest and path.stat().st_ino == other.stat().st_ino


def test_skip_reports_a_conforming_hard_linked_file_as_conforming(pipeline, linked):  # noqa: F811
    path, _ = linked
    out = pipeline.run(path, policy(hardlinks="skip", audio_languages=["eng"], track_order=[])).result
    assert out.success and out.changes == 0


def test_headers_applies_the_header_part_in_place_and_skips_the_rest(pipeline, linked):  # noqa: F811
    path, other = linked
    out = pipeline.run(path, policy()).result  # hardlinks = "headers" is the default
    assert out.skipped and out.reason == "hardlinked" and out.changes == 2, out
    assert sorted(out.actions) == ["track 1: set default flag off", "track 2: set default flag on"]
    assert "applied in place" in out.error and "needs a remux" in out.error
    # In place: both links see the flags; the order (a remux) is left as it was.
    assert path.stat().st_ino == other.stat().st_ino and path.stat().st_nlink == 2
    assert audio_tracks(other) == [("eng", False), ("jpn", True)]
    # Again: the header part is done; nothing more is written.
    digest = sha256(other)
    again = pipeline.run(path, policy()).result
    assert again.skipped and again.reason == "hardlinked" and again.changes == 0
    assert sha256(other) == digest


def test_break_remuxes_and_splits_the_link(pipeline, linked):  # noqa: F811
    path, other = linked
    digest = sha256(other)
    out = pipeline.run(path, policy(hardlinks="break")).result
    assert out.success and out.changes == 3, out
    assert path.stat().st_ino != other.stat().st_ino and sha256(other) == digest  # the seeding copy keeps its bytes
    assert audio_tracks(path) == [("jpn", True), ("eng", False)]


@pytest.mark.parametrize(
    ("hardlinks", "would_apply"),
    [
        ("skip", []),
        ("headers", ["track 1: set default flag off", "track 2: set default flag on"]),
        ("break", ["reorder tracks to 0, 2, 1, 3", "track 1: set default flag off", "track 2: set default flag on"]),
    ],
)
def test_plan_shows_which_part_would_be_applied(tmp_path, env, media_cache, hardlinks, would_apply):
    path = copy_media(media_cache("hardlinks.mkv", TRACKS), tmp_path / "lib" / "film.mkv")
    os.link(path, tmp_path / "seeding.mkv")
    config = write_config(tmp_path / "c.toml", {"policy": {**JPN_FIRST, "hardlinks": hardlinks}})
    data = json.loads(run_vpod(["plan", str(path), "--config", str(config), "--json"], env=env).stdout)
    assert len(data["actions"]) == 3
    assert sorted(a["description"] for a in data["would_apply"]) == would_apply
    assert (data["skip"] or {}).get("reason") == (None if hardlinks == "break" else "hardlinked")
    human = run_vpod(["plan", str(path), "--config", str(config)], env=env).stdout
    if hardlinks == "headers":
        assert "vpod run would apply only the header part in place (2 change(s), cost class header (" in human
        assert "and skip the rest (hardlinked)" in human


def test_process_reports_the_header_part_and_the_skip(tmp_path, env, media_cache):
    path = copy_media(media_cache("hardlinks.mkv", TRACKS), tmp_path / "lib" / "film.mkv")
    os.link(path, tmp_path / "seeding.mkv")
    config = write_config(tmp_path / "c.toml", {"policy": JPN_FIRST, "database": {"path": str(tmp_path / "db")}})
    dry = json.loads(run_vpod(["process", str(path), "--config", str(config), "--dry-run", "--json"], env=env).stdout)
    [planned] = dry["results"]
    assert planned["reason"] == "hardlinked" and sorted(planned["actions"]) == [
        "track 1: set default flag off", "track 2: set default flag on",
    ]
    assert audio_tracks(path) == [("eng", True), ("jpn", False)]  # a dry run writes nothing
    data = json.loads(run_vpod(["process", str(path), "--config", str(config), "--json"], env=env).stdout)
    [result] = data["results"]
    assert (result["skipped"], result["reason"], result["changes"]) == (True, "hardlinked", 2)
    assert data["exit_code"] == 0 and audio_tracks(tmp_path / "seeding.mkv") == [("eng", False), ("jpn", True)]


def test_daemon_does_not_requeue_it_and_a_policy_change_re_judges_it(tmp_path, daemon_factory, media_cache):
    """Under "headers" the file ends skipped (hardlinked) with its header part applied; a
    touch does not queue it again (same content, same policy); a reload to "break"
    queues it again at once and remuxes it."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    seeding = tmp_path / "seeding.mkv"
    sections = {"watch": {"paths": [str(inbox)], "settle_seconds": 0.3}, "policy": JPN_FIRST}
    daemon = daemon_factory(sections)
    path = inbox / "film.mkv"
    copy_media(media_cache("hardlinks.mkv", TRACKS), seeding)
    os.link(seeding, path)
    skipped = daemon.wait_for("file_skipped", path=str(path))[0]
    assert skipped["reason"] == "hardlinked" and skipped["changes"] == 2 and skipped["policy"] == "default"
    os.utime(path)  # an event with the same content
    daemon.wait_for("file_not_queued", path=str(path), outcome="unchanged")
    assert len(daemon.named("file_queued", path=str(path))) == 1

    write_config(daemon.config, {**sections, "policy": {**JPN_FIRST, "hardlinks": "break"},
                                 "database": {"path": str(tmp_path / "vpod.db")},
                                 "logging": {"format": "json", "level": "debug"}})  # fmt: skip
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")[0]
    assert reloaded["changed"] == ["[policy] hardlinks"]
    assert daemon.wait_for("hardlinked_requeued")[0]["files"] == 1
    processed = daemon.wait_for("file_processed", path=str(path))[0]
    assert "reorder tracks to 0, 2, 1, 3" in processed["actions"]
    assert daemon.stop() == 0
    assert path.stat().st_ino != seeding.stat().st_ino and audio_tracks(path) == [("jpn", True), ("eng", False)]
