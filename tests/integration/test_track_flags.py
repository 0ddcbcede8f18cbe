"""The seven track flags (RFC 9559 FlagDefault … FlagTextDescriptions): read by the probe,
written by every apply path (mkvpropedit in place, a remux by mkvmerge or ffmpeg), and
checked by verification, on real files whose flags mkvmerge or ffmpeg set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.daemon import run_vpod
from support.media import audio, copy_media, ffprobe_streams, mkvmerge_tracks, subtitle, video
from support.pipeline import pipeline, sha256  # noqa: F401  (fixture)
from support.tools import flag_dropping_tool, path_with
from vpod.diskspace import SpaceLedger
from vpod.media.edit import edit_in_place
from vpod.media.model import MediaInfo
from vpod.media.probe import probe, probe_with_ffprobe
from vpod.media.remux import Remuxer, choose_remuxer
from vpod.media.verify import verify_written
from vpod.policy.plan import Plan, RemoveTrack, SetFlag
from vpod.policy.policy import policy_from_table
from vpod.tempfiles import temp_beside

pytestmark = pytest.mark.integration

ROLES = ("hearing_impaired", "visual_impaired", "commentary", "original", "text_descriptions")
DISPOSITIONS = {  # ffprobe's name of each flag
    "default": "default", "forced": "forced", "hearing_impaired": "hearing_impaired",
    "visual_impaired": "visual_impaired", "commentary": "comment", "original": "original",
    "text_descriptions": "descriptions",
}  # fmt: skip

# One flag per track, and one track with every flag; a German track a removal can take.
FLAGGED = [
    video(),
    audio("eng", default=True, original=True),
    audio("eng", commentary=True),
    audio("eng", visual_impaired=True),
    subtitle("eng", hearing_impaired=True),
    subtitle("eng", text_descriptions=True),
    subtitle("eng", forced=True),
    subtitle("eng", hearing_impaired=True, visual_impaired=True, commentary=True, original=True, text_descriptions=True),
    audio("ger"),
]
WANTED = [
    set(),
    {"default", "original"},
    {"commentary"},
    {"visual_impaired"},
    {"hearing_impaired"},
    {"text_descriptions"},
    {"forced"},
    set(ROLES),
    set(),
]


def policy(**table: object):  # type: ignore[no-untyped-def]
    """A policy that leaves flags alone unless a test's plan sets them: no default audio
    by language, no default subtitle, the file's order, no flags from titles or the
    original language."""
    base = {"audio_languages": [], "default_subtitle": "none", "track_order": [], "set_flags_from_titles": False,
            "mark_original": False}  # fmt: skip
    return policy_from_table({**base, **table}, source=None, base_dir=None)


def model_flags(media: MediaInfo) -> list[set[str]]:
    return [{f for f in ("default", "forced", *ROLES) if getattr(t, f)} for t in media.tracks]


def mkvmerge_flags(path: Path) -> list[set[str]]:
    return [{f for f in ("default", "forced", *ROLES) if t[f]} for t in mkvmerge_tracks(path)]


def ffprobe_flags(path: Path) -> list[set[str]]:
    return [{f for f, d in DISPOSITIONS.items() if s["disposition"].get(d)} for s in ffprobe_streams(path)]


def ffprobe_view(wanted: list[set[str]], types: list[str]) -> list[set[str]]:
    """What FFmpeg 5.1 reads of ``wanted`` in Matroska: FlagTextDescriptions on subtitles only."""
    return [w - ({"text_descriptions"} if kind != "subtitle" else set()) for w, kind in zip(wanted, types)]


@pytest.fixture
def flagged(media_cache, pipeline):  # noqa: F811
    return copy_media(media_cache("flagged.mkv", FLAGGED), pipeline.library / "flagged.mkv")


def test_probe_reads_each_flag_mkvmerge_set(flagged, pipeline):  # noqa: F811
    media = probe(flagged, pipeline.runner)
    assert media.probed_with == "mkvmerge"
    assert model_flags(media) == WANTED
    # The same file through ffprobe (vpod's reader for files mkvmerge cannot read).
    by_ffprobe = probe_with_ffprobe(flagged, pipeline.runner)
    assert model_flags(by_ffprobe) == ffprobe_view(WANTED, [t.type for t in media.tracks])


def test_probe_reads_mp4_dispositions(media_cache, pipeline):  # noqa: F811
    """FFmpeg stores MP4 flags as DASH role kinds: "description" reads back as
    visual_impaired + descriptions, which is audio description on an audio track and
    text descriptions (for the visually impaired) on a subtitle."""
    tracks = [video(), audio("eng", default=True), audio("eng", commentary=True), audio("eng", visual_impaired=True),
              subtitle("eng", hearing_impaired=True), subtitle("eng", text_descriptions=True)]  # fmt: skip
    path = copy_media(media_cache("dispositions.mp4", tracks), pipeline.library / "dispositions.mp4")
    media = probe(path, pipeline.runner)
    assert media.probed_with == "ffprobe"
    roles = [{f for f in ROLES if getattr(t, f)} for t in media.tracks]
    assert roles == [set(), set(), {"commentary"}, {"visual_impaired"}, {"hearing_impaired"},
                     {"visual_impaired", "text_descriptions"}]  # fmt: skip


def test_in_place_edit_sets_and_clears_each_flag(flagged, pipeline):  # noqa: F811
    """Every flag of track 7 off, every flag of track 8 (German audio, none set) on, one
    mkvpropedit run, verified; a cleared FlagOriginal is written as 0, which FFmpeg reads
    as "dub"."""
    media = probe(flagged, pipeline.runner)
    flags = ("forced", *ROLES)
    plan = Plan(tuple(SetFlag(7, f, False) for f in flags) + tuple(SetFlag(8, f, True) for f in flags))
    pol = policy()
    after = edit_in_place(
        media, plan, pipeline.runner, pipeline.store, SpaceLedger(),
        lambda: verify_written(flagged, media, plan, pol, pipeline.runner, cross_check=False),
    )  # fmt: skip
    wanted = [*WANTED[:7], set(), set(flags)]
    assert model_flags(after) == wanted
    assert mkvmerge_flags(flagged) == wanted
    streams = ffprobe_streams(flagged)
    assert ffprobe_flags(flagged) == ffprobe_view(wanted, [s["codec_type"] for s in streams])
    assert streams[7]["disposition"]["dub"] == 1 and streams[8]["disposition"]["dub"] == 0
    pipeline.assert_conforms(flagged, pol)


def test_remux_by_mkvmerge_keeps_every_flag_of_kept_tracks(flagged, pipeline):  # noqa: F811
    """A removal forces a remux; every kept track keeps all seven flags, as mkvmerge -J
    and ffprobe read them."""
    pol = policy(keep_audio_languages=["eng"])
    out = pipeline.run(flagged, pol).result
    assert out.success and out.changes == 1, out.error
    assert mkvmerge_flags(flagged) == WANTED[:-1]
    types = [t.type for t in probe(flagged, pipeline.runner).tracks]
    assert ffprobe_flags(flagged) == ffprobe_view(WANTED[:-1], types)
    pipeline.assert_conforms(flagged, pol)


def test_flags_a_remux_plan_sets_are_written_and_verified(flagged, pipeline):  # noqa: F811
    """Flags set and cleared in the same plan as a removal: mkvmerge writes them (not as
    the forced flag), and verification reads all of them back with both readers."""
    media = probe(flagged, pipeline.runner)
    plan = Plan((
        RemoveTrack(8, "keep_audio_languages"),
        SetFlag(2, "hearing_impaired", True), SetFlag(3, "commentary", True), SetFlag(4, "text_descriptions", True),
        SetFlag(1, "original", False), SetFlag(5, "visual_impaired", True), SetFlag(7, "commentary", False),
    ))  # fmt: skip
    with temp_beside(flagged, pipeline.store) as temp:
        assert Remuxer(pipeline.runner, pipeline.store).remux(media, plan, temp) == "mkvmerge"
        after = verify_written(temp, media, plan, policy(keep_audio_languages=["eng"]), pipeline.runner)
        wanted = [set(), {"default"}, {"commentary", "hearing_impaired"}, {"visual_impaired", "commentary"},
                  {"hearing_impaired", "text_descriptions"}, {"text_descriptions", "visual_impaired"}, {"forced"},
                  set(ROLES) - {"commentary"}]  # fmt: skip
        assert model_flags(after) == wanted
        assert mkvmerge_flags(temp) == wanted
        streams = ffprobe_streams(temp)
        assert ffprobe_flags(temp) == ffprobe_view(wanted, [s["codec_type"] for s in streams])
        assert streams[1]["disposition"]["dub"] == 1  # FlagOriginal 0, as mkvpropedit writes it


@pytest.mark.parametrize(
    "extra, tool",
    [([], "mkvmerge"), ([subtitle("eng", hearing_impaired=True), subtitle("eng", text_descriptions=True)], "ffmpeg")],
)
def test_mp4_to_mkv_keeps_the_flags(media_cache, pipeline, extra, tool):  # noqa: F811
    """MKVToolNix 74 does not read MP4 kind boxes, so the mkvmerge remux is told each flag;
    ffmpeg (mov_text subtitles) writes them as dispositions."""
    tracks = [video(), audio("eng", default=True), audio("eng", commentary=True), audio("eng", visual_impaired=True),
              *extra]  # fmt: skip
    path = copy_media(media_cache(f"flags-{tool}.mp4", tracks), pipeline.library / f"flags-{tool}.mp4")
    assert choose_remuxer(probe(path, pipeline.runner)) == tool
    pol = policy(container="mkv")
    out = pipeline.run(path, pol).result
    assert out.success, out.error
    final = out.final_path
    roles = [{f for f in ROLES if t[f]} for t in mkvmerge_tracks(final)]
    wanted = [set(), set(), {"commentary"}, {"visual_impaired"}]
    if extra:
        wanted += [{"hearing_impaired"}, {"visual_impaired", "text_descriptions"}]
    assert roles == wanted
    assert [f - {"default", "forced"} for f in ffprobe_flags(final)] == wanted
    pipeline.assert_conforms(final, pol)


def test_verification_names_a_flag_that_did_not_land(tmp_path, flagged, pipeline, monkeypatch):  # noqa: F811
    """A mkvmerge that writes a good file without the commentary flags: the file fails
    with verify_failed naming the flag, and the source is left as it was."""
    digest = sha256(flagged)
    monkeypatch.setenv("PATH", path_with(flag_dropping_tool(tmp_path / "bin", "mkvmerge", "--commentary-flag")))
    out = pipeline.run(flagged, policy(keep_audio_languages=["eng"])).result
    assert out.failed and out.reason == "verify_failed", out.error
    assert "track 2 (audio) commentary flag is off, expected on" in out.error
    assert "track 7 (subtitle) commentary flag is off, expected on" in out.error
    assert sha256(flagged) == digest
    assert pipeline.temps_left() == []


def test_inspect_shows_every_flag(flagged, env):
    result = run_vpod(["inspect", str(flagged), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    tracks = json.loads(result.stdout)["tracks"]
    assert [{f for f in ("default", "forced", *ROLES) if t[f]} for t in tracks] == WANTED
    assert [set(t["flags"]) for t in tracks] == WANTED
    human = run_vpod(["inspect", str(flagged)], env=env)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert "flags" in lines[2]
    assert "default,original " in lines[4]
    assert "hearing-impaired,visual-impaired,commentary,original,text-descriptions " in lines[10]
    assert all(word in human.stdout for word in ("forced", "text-descriptions", "visual-impaired"))


def test_inspect_shows_roles_from_flags_and_titles(media_cache, pipeline, env):  # noqa: F811
    """Roles come from flags and, by the policy's patterns, titles (issue 13 item 6)."""
    tracks = [
        video(),
        audio("eng", title="Director's Commentary"),
        audio("eng", visual_impaired=True),
        subtitle("eng", title="English SDH"),
        subtitle("eng", title="Signs & Songs"),
        subtitle("eng"),
    ]
    path = copy_media(media_cache("roles.mkv", tracks), pipeline.library / "roles.mkv")
    result = run_vpod(["inspect", str(path), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    assert [t["roles"] for t in json.loads(result.stdout)["tracks"]] == [
        [], ["commentary"], ["description"], ["sdh"], ["forced"], []
    ]
    human = run_vpod(["inspect", str(path)], env=env)
    assert "roles" in human.stdout.splitlines()[2] and " sdh " in human.stdout
