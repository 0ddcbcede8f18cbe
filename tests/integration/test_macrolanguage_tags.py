"""Tracks tagged with a language that has no ISO 639-2 code of its own (``yue``, ``cmn``, ``arb``).

mkvmerge and mkvpropedit write such a ``LanguageBCP47`` with the legacy ``Language`` set
to the macrolanguage's ISO 639-2 code (``chi``, ``ara``) or ``und``
(:func:`vpod.policy.languages.legacy_language`). vpod once took that pair for a
disagreement: ``vpod plan`` asked to set the language again, which no tool can write any
other way, and the remux failed verification (``ffprobe`` sees ``chi``) at every
``vpod process`` run. These tests prove, with real tools, that the pair agrees (no plan
step; verification passes read by vpod's reader and by ``mkvmerge -J`` + ``ffprobe``), that
a second run leaves the file alone, and that a file that really disagrees is still fixed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.daemon import run_vpod, write_config
from support.media import audio, make_media, mkvmerge_tracks, video

from vpod.media.probe import probe
from vpod.media.remux import mkvmerge_args
from vpod.media.tools import ToolRunner
from vpod.media.verify import read_back, verify_written
from vpod.policy.languages import legacy_language
from vpod.policy.planner import plan as make_plan
from vpod.policy.policy import policy_from_table

pytestmark = pytest.mark.integration

POLICY = policy_from_table({"audio_languages": ["eng"]}, source=None, base_dir=None)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("macro")
    return make_media(folder / "base.mkv", [video(), audio("eng", default=True), audio("eng")])


def _mkvmerge(*args: str) -> None:
    done = subprocess.run(["mkvmerge", "-q", *args], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stdout + done.stderr


def _tagged(base: Path, path: Path, tag: str) -> Path:
    """``base`` with audio track 1 tagged ``tag`` (and default), track 2 ``eng``: the
    tester's file; the policy wants English default, so vpod must remux (reorder)."""
    _mkvmerge("-o", str(path), "--language", f"1:{tag}", "--language", "2:eng", str(base))
    return path


@pytest.mark.parametrize("tag", ["yue", "cmn-Hans-CN", "arb", "swh", "ase", "pes", "pt-BR"])
def test_what_mkvmerge_writes_agrees_and_needs_no_language_step(base: Path, tmp_path: Path, tag: str) -> None:
    path = _tagged(base, tmp_path / "t.mkv", tag)
    runner = ToolRunner(60)
    raw = json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)
    written = raw["tracks"][1]["properties"]
    assert written["language"] == legacy_language(tag), written  # vpod's rule is mkvmerge's
    for media in (probe(path, runner), read_back(path, probe(path, runner), [])):
        if media is None:
            continue  # the reader refused (it could not be sure): mkvmerge -J was read above
        assert media.tracks[1].languages_agree, (media.probed_with, media.tracks[1])
        steps = make_plan(POLICY, media).describe()
        assert not [s for s in steps if "set language" in s], (media.probed_with, steps)


@pytest.mark.parametrize("tag, reader", [("yue", "matroska-reader"), ("yue-x-vpod", "mkvmerge")])
def test_a_remux_of_such_a_file_passes_verification(base: Path, tmp_path: Path, tag: str, reader: str) -> None:
    """Read back by vpod's reader (``yue``) and, where it refuses (a private-use subtag
    it does not parse), by ``mkvmerge -J`` and ``ffprobe`` (which sees ``chi``)."""
    source = _tagged(base, tmp_path / "source.mkv", tag)
    runner = ToolRunner(60)
    before = probe(source, runner)
    plan = make_plan(POLICY, before)
    assert plan.describe() and not [s for s in plan.describe() if "set language" in s], plan.describe()
    output = tmp_path / "written.mkv"
    _mkvmerge(*mkvmerge_args(before, plan, output))
    after = verify_written(output, before, plan, POLICY, runner)  # type: ignore[arg-type]
    assert after.probed_with == reader
    assert [t["language"] for t in mkvmerge_tracks(output)] == ["und", "eng", legacy_language(tag)]


def _process(target: Path, config: Path, env: dict[str, str]) -> dict:
    result = run_vpod(["process", str(target), "--json", "--config", str(config)], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    [item] = json.loads(result.stdout)["results"]
    return item


def test_vpod_process_accepts_it_once_and_then_leaves_it_alone(base: Path, tmp_path: Path, env) -> None:
    """The tester's report: ``vpod plan`` sets no language, the first ``vpod process``
    succeeds (it failed ``verify_failed`` at every run before), the second runs no tool."""
    target = _tagged(base, tmp_path / "tricky" / "t4.mkv", "yue")
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "db")},
                                                "policy": {"audio_languages": ["eng"]}})  # fmt: skip
    shown = run_vpod(["plan", str(target), "--json", "--config", str(config)], env=env)
    assert shown.returncode == 0, shown.stderr
    actions = json.loads(shown.stdout)["actions"]
    assert actions and not [a for a in actions if a["action"] == "set_language"], actions
    first = _process(target, config, env)
    assert first["success"] and first["changes"] > 0, first
    second = _process(target, config, env)
    assert second["success"] and second["unchanged"], second  # vpod left it conforming: no tool runs
    tracks = mkvmerge_tracks(target)
    assert [(t["language"], t["default"]) for t in tracks[1:]] == [("eng", True), ("chi", False)]


def test_a_file_that_really_disagrees_is_still_fixed(base: Path, tmp_path: Path, env) -> None:
    """``Language`` ``eng`` beside ``LanguageBCP47`` ``yue``: set again, to ``chi`` + ``yue``."""
    target = make_media(tmp_path / "lib" / "film.mkv", [video(), audio("eng", default=True)])
    subprocess.run(["mkvpropedit", "-q", str(target), "--edit", "track:a1", "--set", "language=eng",
                    "--set", "language-ietf=yue"], check=True)  # fmt: skip
    before = probe(target, ToolRunner(60))
    assert not before.tracks[1].languages_agree
    assert any("set language yue" in s for s in make_plan(POLICY, before).describe())
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(tmp_path / "db")},
                                                "policy": {"audio_languages": ["eng"]}})  # fmt: skip
    item = _process(target, config, env)
    assert item["success"] and item["changes"] > 0, item
    raw = json.loads(subprocess.run(["mkvmerge", "-J", str(target)], capture_output=True, check=True).stdout)
    props = raw["tracks"][1]["properties"]
    assert (props["language"], props["language_ietf"]) == ("chi", "yue")
