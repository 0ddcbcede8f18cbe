"""`vpod plan` of a transcoding policy on real files (issue 18 item 1): the plan's cost
class in text and JSON, each transcode action, and a file written as the executor
writes the plan's output (built here by hand with ffmpeg: the transcoded video, the
converted audio, a stereo AAC track right after it, not default) plans nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from support.daemon import run_vpod, write_config
from support.media import audio, make_media, subtitle, video

pytestmark = pytest.mark.integration

POLICY = {"audio_compat": {"codec": "aac", "channels": 2}, "video_codec": {"codec": "hevc", "preset": "ultrafast"}}


@pytest.fixture
def source(tmp_path):
    return make_media(
        tmp_path / "lib" / "film.mkv",
        [video(codec="libx264"), audio("eng", default=True, codec="flac", channels=6), subtitle("eng")],
        duration=2.0,
    )


def plan_json(path, config, env):
    result = run_vpod(["plan", str(path), "--config", str(config), "--json"], env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_plan_shows_the_transcode_cost_class_and_each_transcode(source, tmp_path, env):
    config = write_config(tmp_path / "c.toml", {"policy": POLICY})
    data = plan_json(source, config, env)
    assert data["cost"] == "transcode"
    assert [{k: v for k, v in a.items() if k not in ("why", "description")} for a in data["actions"]] == [
        {"action": "transcode_video", "track": 0, "codec": "hevc", "encoder": "software", "crf": 22, "preset": "ultrafast"},
        {"action": "add_audio", "source": 1, "codec": "aac", "channels": 2, "bitrate_kbps": 192, "title": "AAC Stereo",
         "default": False},
    ]  # fmt: skip
    human = run_vpod(["plan", str(source), "--config", str(config)], env=env)
    assert "2 change(s), cost class transcode (transcode: media encoded" in human.stdout
    assert "track 0: transcode video to HEVC (software, crf 22, preset ultrafast)" in human.stdout
    assert "add AAC 2 ch 192 kb/s audio made from track 1, right after it" in human.stdout
    # without the transcoding keys the same file conforms: cost class none
    plain = write_config(tmp_path / "plain.toml", {"policy": {}})
    assert plan_json(source, plain, env)["cost"] == "none"
    header = write_config(tmp_path / "header.toml", {"policy": {"untagged_language": "eng"}})  # the video is und
    assert plan_json(source, header, env)["cost"] == "header"
    remux = write_config(tmp_path / "remux.toml", {"policy": {"track_order": ["audio", "video", "subtitle"]}})
    assert plan_json(source, remux, env)["cost"] == "remux"


def test_the_output_of_the_plan_plans_nothing(source, tmp_path, env):
    """A second pass plans nothing: the added track is recognised as the compat track
    (kept under max_audio_per_language = 1, not default), the converted one not converted again."""
    convert = {"codecs": ["flac"], "to": "eac3"}
    config = write_config(tmp_path / "c.toml", {"policy": {**POLICY, "max_audio_per_language": 1, "audio_convert": convert}})
    out = tmp_path / "lib" / "film.out.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source),
         "-map", "0:v:0", "-map", "0:a:0", "-map", "0:a:0", "-map", "0:s:0",
         "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
         "-c:a:0", "eac3", "-b:a:0", "640k", "-ar:a:0", "48000", "-c:a:1", "aac", "-ac:a:1", "2", "-b:a:1", "192k", "-c:s", "copy",
         "-metadata:s:a:1", "title=AAC Stereo", "-metadata:s:a:1", "language=eng",
         "-disposition:v:0", "default", "-disposition:a:0", "default", "-disposition:a:1", "0", "-disposition:s:0", "0",
         str(out)],
        check=True,
    )  # fmt: skip
    tracks = json.loads(subprocess.run(["mkvmerge", "-J", str(out)], capture_output=True, check=True).stdout)["tracks"]
    assert [(t["codec"], t["properties"].get("audio_channels")) for t in tracks] == [
        ("HEVC/H.265/MPEG-H", None), ("E-AC-3", 6), ("AAC", 2), ("SubRip/SRT", None)
    ]
    first = plan_json(source, config, env)
    assert first["cost"] == "transcode" and [a["action"] for a in first["actions"]] == [
        "transcode_video", "convert_audio", "add_audio"
    ]
    data = plan_json(out, config, env)
    assert (data["actions"], data["cost"]) == ([], "none")


def test_a_hard_linked_file_shows_the_cost_of_the_header_part_it_would_get(source, tmp_path, env):
    """Under hardlinks = "headers" the run applies only the header part of a transcode's
    plan: `vpod plan` shows that part's cost class (and the whole plan's, as before)."""
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "film.mkv").hardlink_to(source)
    policy = {**POLICY, "untagged_language": "eng", "hardlinks": "headers"}  # the video is und: a header edit
    config = write_config(tmp_path / "c.toml", {"policy": policy})
    data = plan_json(source, config, env)
    assert data["skip"]["reason"] == "hardlinked"
    assert [a["action"] for a in data["would_apply"]] == ["set_language"], data["would_apply"]
    assert (data["cost"], data["would_apply_cost"]) == ("transcode", "header")
    # The skip names how the new file would be made: a transcode (T18D finding N9).
    assert "this plan needs a transcode, which would split it" in data["skip"]["detail"], data["skip"]
    assert '("break" allows the transcode)' in data["skip"]["detail"] and "remux" not in data["skip"]["detail"]
    human = run_vpod(["plan", str(source), "--config", str(config)], env=env).stdout
    assert "cost class transcode (transcode: media encoded" in human  # the whole plan, as before
    assert "vpod run would apply only the header part in place (1 change(s), cost class header (header edit" in human


def test_a_hardware_encode_says_it_falls_back_when_not_usable(source, tmp_path, env):
    """Issue 18 round 3: `vpod plan` does not try the hardware (the executor does), so a
    planned ``encoder = "vaapi"`` says which software encoder runs otherwise; a render
    node that does not exist is said here already (no test encode is run)."""
    device = tmp_path / "no-renderD128"
    policy = {"video_codec": {"codec": "hevc", "preset": "ultrafast", "encoder": "vaapi"}}
    config = write_config(tmp_path / "c.toml", {"policy": policy, "processing": {"vaapi_device": str(device)}})
    data = plan_json(source, config, env)
    [action] = data["actions"]
    why = f"[processing] vaapi_device {device} does not exist"
    assert (action["encoder"], action["hardware_encoder"], action["fallback_encoder"], action["not_usable_here"]) == (
        "vaapi", "hevc_vaapi", "libx265", why,
    )  # fmt: skip
    line = f"track 0: transcode video to HEVC (vaapi, crf 22, preset ultrafast): hevc_vaapi not usable here ({why})"
    assert action["description"] == f"{line}; libx265 encodes instead"
    human = run_vpod(["plan", str(source), "--config", str(config)], env=env)
    assert f"  - {line}; libx265 encodes instead" in human.stdout, human.stdout
    listed = "hevc_vaapi" in subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if listed:
        # /dev/null opens read-write, but it is no DRM render node: said here already (T18C finding 5)
        null = write_config(tmp_path / "n.toml", {"policy": policy, "processing": {"vaapi_device": "/dev/null"}})
        [action] = plan_json(source, null, env)["actions"]
        assert action["not_usable_here"].startswith("[processing] vaapi_device /dev/null is not a DRM render node"), action
    nodes = sorted(Path("/dev/dri").glob("renderD*")) if Path("/dev/dri").is_dir() else []
    if listed and nodes and os.access(nodes[0], os.R_OK | os.W_OK):
        # ffmpeg has the encoder and a real render node opens: only the run can tell
        usable = write_config(tmp_path / "u.toml", {"policy": policy, "processing": {"vaapi_device": str(nodes[0])}})
        [action] = plan_json(source, usable, env)["actions"]
        assert action["description"].endswith(": hevc_vaapi if usable at run time, else libx265")
        assert action["not_usable_here"] is None


def test_plan_says_a_transcode_would_wait_for_the_next_transcode_hours_window(source, tmp_path, env):
    """T18C finding 9: outside every ``transcode_hours`` window the daemon defers a file
    whose plan transcodes (``transcode_deferred``, ``next_window``) and ``vpod process``
    skips it (``outside_transcode_hours``); ``vpod plan`` now says so too, naming the
    window that opens next. The window is computed from now: it opens in 2 hours."""
    import datetime as dt

    opens = dt.datetime.now() + dt.timedelta(hours=2)
    window = f"{opens:%H:%M}-{opens + dt.timedelta(hours=1):%H:%M}"
    later = f"{opens + dt.timedelta(hours=3):%H:%M}-{opens + dt.timedelta(hours=4):%H:%M}"
    closed = {"processing": {"transcode_hours": [window, later]}}
    config = write_config(tmp_path / "c.toml", {"policy": POLICY, **closed})
    data = plan_json(source, config, env)
    assert data["cost"] == "transcode"
    assert data["waits_for_transcode_hours"] == {"next_window": f"{opens:%Y-%m-%dT%H:%M}", "transcode_hours": [window, later]}
    human = run_vpod(["plan", str(source), "--config", str(config)], env=env).stdout
    # The windows as the config writes them (T18D finding N11: it printed a Python list).
    assert f'vpod run would wait for transcode_hours "{window}", "{later}": it is outside every window now; ' in human
    assert f"the next one opens at {opens:%Y-%m-%d %H:%M}" in human and "outside_transcode_hours" in human
    # Header edits and remuxes are not limited by the windows; an open window does not wait.
    header = write_config(tmp_path / "header.toml", {"policy": {"untagged_language": "eng"}, **closed})
    assert plan_json(source, header, env)["waits_for_transcode_hours"] is None
    assert "transcode_hours" not in run_vpod(["plan", str(source), "--config", str(header)], env=env).stdout
    always = write_config(tmp_path / "open.toml", {"policy": POLICY, "processing": {"transcode_hours": ["00:00-00:00"]}})
    assert plan_json(source, always, env)["waits_for_transcode_hours"] is None
    assert plan_json(source, write_config(tmp_path / "any.toml", {"policy": POLICY}), env)["waits_for_transcode_hours"] is None


def test_plan_predicts_target_exists_as_process_reports_it(tmp_path, env):
    """An MP4 whose plan writes NAME.mkv while a NAME.mkv exists: `vpod plan` says the
    run would fail it with target_exists, as `vpod process` then does (T18D finding N4:
    the plan showed no error), and nothing is written."""
    mp4 = make_media(tmp_path / "lib" / "P.mp4", [video(codec="libx264"), audio("eng", default=True)])
    mkv = make_media(tmp_path / "lib" / "P.mkv", [video(codec="libx264")])
    before = mp4.read_bytes(), mkv.read_bytes()
    config = write_config(tmp_path / "c.toml", {"policy": {**POLICY, "container": "mkv"}, "database": {"path": str(tmp_path / "db")}})
    data = plan_json(mp4, config, env)
    assert data["cost"] == "transcode" and data["skip"] is None
    assert data["error"] == {
        "reason": "target_exists",
        "detail": f"{mp4}: cannot transcode into P.mkv: a file with that name already exists",
    }, data["error"]
    assert (data["would_apply"], data["would_apply_cost"]) == ([], "none")
    human = run_vpod(["plan", str(mp4), "--config", str(config)], env=env).stdout
    assert "vpod run would fail it (target_exists), changing nothing: " in human, human
    result = run_vpod(["process", str(mp4), "--config", str(config), "--json"], env=env)
    [entry] = json.loads(result.stdout)["results"]
    assert (entry["reason"], entry["error"]) == ("target_exists", data["error"]["detail"]), entry
    assert (mp4.read_bytes(), mkv.read_bytes()) == before
