"""vpod's in-process Matroska reader against ``mkvmerge -J``, and verification built on it.

Verification reads every written file with :mod:`vpod.media.matroska` instead of
starting ``mkvmerge -J`` and ``ffprobe``. These tests prove that it may:

* over files generated here (by ffmpeg, by mkvmerge, edited by mkvpropedit, converted
  from MP4 by both remuxers; every track type, IETF-only languages, every flag on and
  off, non-ASCII titles, attachments, nested chapters in two editions, a codec zoo) and
  over ../shared/corpus when present, the reader gives the :class:`MediaInfo` that
  ``mkvmerge -J`` gives on every field vpod uses, or refuses;
* verification read by it still fails a written file that is wrong (a flag, a language,
  the Language element alone, a title, a missing track, attachment or chapter, a short
  duration);
* a remux now runs two tools (``mkvmerge -J``, ``mkvmerge``) and an in-place edit two
  (``mkvmerge -J``, ``mkvpropedit``): no read-back process.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import CORPUS
from support.daemon import run_vpod, write_config
from support.media import audio, make_media, subtitle, video

from vpod.errors import MediaError
from vpod.media.ebml import EbmlError
from vpod.media.matroska import MKVMERGE_CODEC_NAMES, MatroskaUnsure, read_headers, to_media_info
from vpod.media.model import MediaInfo
from vpod.media.probe import probe
from vpod.media.remux import mkvmerge_args
from vpod.media.tools import ToolRunner
from vpod.media.verify import read_back, verify_written
from vpod.outcomes import Reason
from vpod.policy.planner import plan as make_plan
from vpod.policy.policy import policy_from_table

pytestmark = pytest.mark.integration

_CHAPTERS = (
    '<?xml version="1.0"?><Chapters><EditionEntry>{a}{b}</EditionEntry><EditionEntry>{c}</EditionEntry></Chapters>'
)


def _atom(start: str, inner: str = "") -> str:
    return f"<ChapterAtom><ChapterTimeStart>{start}</ChapterTimeStart><ChapterDisplay><ChapterString>C {start}" \
        f"</ChapterString></ChapterDisplay>{inner}</ChapterAtom>"  # fmt: skip


def _mkvmerge(*args: str) -> None:
    done = subprocess.run(["mkvmerge", "-q", *args], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stdout + done.stderr


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True)


def _mkvmerge_json(path: Path) -> dict:
    return json.loads(subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, check=True).stdout)


def _extras(folder: Path) -> tuple[Path, Path, Path]:
    (folder / "notes.txt").write_text("notes")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    chapters = folder / "chapters.xml"
    chapters.write_text(
        _CHAPTERS.format(
            a=_atom("00:00:00.000", _atom("00:00:00.100") + _atom("00:00:00.200", _atom("00:00:00.250"))),
            b=_atom("00:00:00.500"),
            c=_atom("00:00:00.000") + _atom("00:00:00.300") + _atom("00:00:00.600"),
        )
    )
    return folder / "notes.txt", folder / "cover.jpg", chapters


def _codec_zoo(path: Path) -> Path:
    """One file with a track of every codec ffmpeg here encodes fast, written by ffmpeg."""
    video_codecs = ["libx264", "libx265", "libvpx-vp9", "mpeg2video", "mjpeg", "ffv1", "libtheora", "mpeg4"]
    audio_codecs = ["aac", "ac3", "eac3", "flac", "mp2", "libmp3lame", "libopus", "libvorbis", "pcm_s16le", "alac",
                    "dca", "truehd"]  # fmt: skip
    srt = path.parent / "zoo.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nHi\n\n")
    args = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5"]
    args += ["-f", "lavfi", "-i", "sine=duration=0.5:sample_rate=48000"] * len(audio_codecs)
    args += ["-i", str(srt)] * 2
    split = "".join(f"[v{i}]" for i in range(len(video_codecs)))
    args += ["-filter_complex", f"[0]split={len(video_codecs)}{split}"]
    args += [a for i in range(len(video_codecs)) for a in ("-map", f"[v{i}]")]
    args += [a for i in range(len(audio_codecs) + 2) for a in ("-map", str(i + 1))]
    args += [a for i, c in enumerate(video_codecs) for a in (f"-c:v:{i}", c)]
    args += [a for i, c in enumerate(audio_codecs) for a in (f"-c:a:{i}", c)]
    args += ["-c:s:0", "srt", "-c:s:1", "ass", "-strict", "-2", "-x265-params", "log-level=none", str(path)]
    _ffmpeg(*args)
    return path


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Matroska files as each tool writes them (see the module docstring)."""
    folder = tmp_path_factory.mktemp("reader")
    notes, cover, chapters = _extras(folder)
    files: list[Path] = []
    by_ffmpeg = make_media(
        folder / "ffmpeg.mkv",
        [video(title="Vidéo — ünïcode 字幕"), audio("fre", title="Français", default=True), audio("jpn"),
         subtitle("eng", forced=True), subtitle(None, title="")],
    )  # fmt: skip
    files.append(by_ffmpeg)  # ffmpeg writes CRC-32 elements in every master
    flags = make_media(
        folder / "flags-on.mkv",
        [video(), audio("eng", default=True, visual_impaired=True, original=True),
         audio("ger", commentary=True, forced=True), subtitle("eng", hearing_impaired=True, text_descriptions=True)],
    )  # fmt: skip
    files.append(flags)
    off = folder / "flags-off.mkv"
    options = ["--default-track-flag", "--forced-display-flag", "--hearing-impaired-flag", "--visual-impaired-flag",
               "--commentary-flag", "--original-flag", "--text-descriptions-flag"]  # fmt: skip
    _mkvmerge("-o", str(off), *[a for tid in range(4) for o in options for a in (o, f"{tid}:0")], str(flags))
    files.append(off)
    ietf = folder / "ietf.mkv"
    _mkvmerge("-o", str(ietf), "--language", "1:pt-BR", "--language", "2:zh-Hant-TW", "--language", "3:sr-Latn",
              "--language", "4:es-419", "--track-name", "2:中文 (繁體)", str(by_ffmpeg))  # fmt: skip
    files.append(ietf)
    # Languages without an ISO 639-2 code: mkvmerge writes Language chi/ara/sgn/und beside them
    macro = folder / "macrolanguages.mkv"
    _mkvmerge("-o", str(macro), "--language", "1:yue", "--language", "2:cmn-Hans-CN", "--language", "3:arb",
              "--language", "4:yue-HK", str(by_ffmpeg))  # fmt: skip
    files.append(macro)
    extras = folder / "attachments-chapters.mkv"
    _mkvmerge("-o", str(extras), "--attach-file", str(notes), "--attach-file", str(cover), "--chapters", str(chapters),
              str(by_ffmpeg))  # fmt: skip
    files.append(extras)
    edited = folder / "propedit.mkv"  # Tracks grow past their room: mkvpropedit moves them behind the Clusters
    shutil.copyfile(by_ffmpeg, edited)
    subprocess.run(["mkvpropedit", "-q", str(edited), "--edit", "track:@2", "--set", "name=" + "long title " * 60,
                    "--set", "language=eng", "--set", "language-ietf=fr", "--edit", "track:@1", "--delete", "language"],
                   check=True)  # fmt: skip
    files.append(edited)
    mp4 = make_media(  # H.264, as MP4 files hold; MPEG-4 part 2 in MP4 becomes V_MS/VFW/FOURCC (the zoo has one)
        folder / "film.mp4",
        [video(codec="libx264"), audio("eng", default=True), audio("jpn", title="日本語"), subtitle("eng")],
    )
    from_mp4 = folder / "from-mp4-mkvmerge.mkv"
    _mkvmerge("-o", str(from_mp4), str(mp4))
    files.append(from_mp4)
    by_ffmpeg_from_mp4 = folder / "from-mp4-ffmpeg.mkv"
    _ffmpeg("-i", str(mp4), "-map", "0", "-c", "copy", "-c:s", "srt", str(by_ffmpeg_from_mp4))
    files.append(by_ffmpeg_from_mp4)
    webm = folder / "clip.webm"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i",
            "sine=duration=0.5:sample_rate=48000", "-c:v", "libvpx-vp9", "-c:a", "libopus", "-metadata:s:a:0",
            "language=ita", str(webm))  # fmt: skip
    files.append(webm)
    zoo = _codec_zoo(folder / "codecs-ffmpeg.mkv")
    files.append(zoo)
    zoo_again = folder / "codecs-mkvmerge.mkv"
    _mkvmerge("-o", str(zoo_again), str(zoo))
    files.append(zoo_again)
    return files


def _used(media: MediaInfo) -> MediaInfo:
    """``media`` on the fields vpod uses: ``probed_with`` says who read it, and a
    track's ``duration_seconds`` (mkvmerge's ``DURATION`` tag) is used nowhere."""
    return replace(
        media, probed_with="", tracks=tuple(replace(t, duration_seconds=None) for t in media.tracks), extra={}
    )


def _self_sources(data: dict) -> list[tuple[str, str] | None]:
    return [(t["properties"].get("codec_id", ""), t["codec"]) for t in data["tracks"]]


def _compare(path: Path, runner: ToolRunner) -> str:
    """'equal', or 'refused: why'; fails the test on any difference."""
    theirs = probe(path, runner)
    data = theirs.extra["mkvmerge"]
    try:
        headers = read_headers(path)
    except MatroskaUnsure as exc:
        return f"refused: {exc}"
    mine = to_media_info(headers, _self_sources(data))
    assert _used(mine) == _used(theirs), f"{path.name}: reader {mine} != mkvmerge -J {theirs}"
    assert headers.duration_ns == data["container"]["properties"].get("duration"), path.name
    assert headers.chapter_entries == sum(c["num_entries"] for c in data.get("chapters") or []), path.name
    assert headers.attachments == len(data.get("attachments") or []), path.name
    # Without the source's names: the table names every codec it knows as mkvmerge does.
    try:
        alone = to_media_info(headers)
    except MatroskaUnsure:
        return "equal"
    assert _used(alone) == _used(theirs), f"{path.name}: codec names from the table differ from mkvmerge -J's"
    return "equal"


def test_the_reader_gives_what_mkvmerge_gives(sample_files: list[Path]) -> None:
    runner = ToolRunner(60)
    outcomes = {path.name: _compare(path, runner) for path in sample_files}
    assert all(outcome == "equal" for outcome in outcomes.values()), "\n".join(f"{k}: {v}" for k, v in outcomes.items())
    seen = {t["properties"]["codec_id"] for path in sample_files for t in _mkvmerge_json(path)["tracks"]}
    unproven = set(MKVMERGE_CODEC_NAMES) - seen
    assert not unproven, f"table entries no generated file proves: {unproven}"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"sample media folder {CORPUS} is absent")
def test_the_reader_gives_what_mkvmerge_gives_on_the_corpus(tmp_path: Path) -> None:
    """Every Matroska file of the corpus, and each as mkvmerge writes it again (what
    verification reads after a remux): equal, or refused."""
    runner = ToolRunner(60)
    outcomes = {}
    for path in sorted(CORPUS.iterdir()):
        if path.suffix.lower() not in (".mkv", ".webm", ".mka", ".mks"):
            continue
        written = tmp_path / f"written-{path.name}"
        done = subprocess.run(["mkvmerge", "-q", "-o", str(written), str(path)], capture_output=True)
        for candidate in (path, written) if done.returncode in (0, 1) else (path,):
            try:
                outcomes[candidate.name] = _compare(candidate, runner)
            except MediaError as exc:  # mkvmerge -J itself rejects it (truncated, not media): so does the reader
                outcomes[candidate.name] = f"mkvmerge -J: {exc.reason}"
                with pytest.raises(EbmlError):
                    read_headers(candidate)
    assert outcomes, "no Matroska file in the corpus"
    print("\n".join(f"{name}: {outcome}" for name, outcome in outcomes.items()))


def test_a_zero_duration_is_no_duration_as_mkvmerge_says(sample_files: list[Path], tmp_path: Path) -> None:
    """A ``Duration`` of 0 (or one rounding to 0 ns): ``mkvmerge -J`` gives no duration,
    and so does the reader (it once gave 0); 0.6 ns rounds to 1 in both."""
    for seconds, expected in ((0.0, None), (4e-10, None), (6e-10, 1)):
        path = tmp_path / f"duration-{seconds}.mkv"
        shutil.copyfile(next(p for p in sample_files if p.name == "flags-off.mkv"), path)
        _set_duration(path, seconds)
        assert _mkvmerge_json(path)["container"]["properties"].get("duration") == expected
        assert read_headers(path).duration_ns == expected
        assert _compare(path, ToolRunner(60)) == "equal"


def test_the_reader_refuses_what_it_cannot_name(sample_files: list[Path]) -> None:
    """A codec mkvmerge names from its frames (DTS, TrueHD, AC-3) is named only by its
    source: without one the reader refuses, and verification asks mkvmerge -J."""
    zoo = next(p for p in sample_files if p.name == "codecs-ffmpeg.mkv")
    with pytest.raises(MatroskaUnsure, match="no mkvmerge name known for CodecID"):
        to_media_info(read_headers(zoo))


# -- verification fails on a wrong file, read by the reader ---------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A film needing a remux (subtitle before audio; English must become the default),
    with two attachments and chapters."""
    folder = tmp_path_factory.mktemp("verify")
    notes, cover, chapters = _extras(folder)
    raw = make_media(
        folder / "raw.mkv",
        [video(title="x264 encode"), subtitle("eng", title="English"), audio("jpn", default=True, title="Japanese"),
         audio("eng", title="English")],
        duration=3.0,
    )  # fmt: skip
    path = folder / "source.mkv"
    _mkvmerge("-o", str(path), "--attach-file", str(notes), "--attach-file", str(cover), "--chapters", str(chapters),
              str(raw))  # fmt: skip
    return path


POLICY = policy_from_table({"audio_languages": ["eng"], "clear_track_titles": True}, source=None, base_dir=None)


def _written(source: Path, folder: Path, name: str, *extra: str) -> tuple[MediaInfo, object, Path]:
    runner = ToolRunner(60)
    before = probe(source, runner)
    plan = make_plan(POLICY, before)
    output = folder / name
    args = mkvmerge_args(before, plan, output)
    _mkvmerge(*args[:-3], *extra, *args[-3:])  # extra options before the source file name
    return before, plan, output


def _set_duration(path: Path, seconds: float) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")
    length = data[at + 2] & 0x7F
    data[at + 3 : at + 3 + length] = struct.pack(">d" if length == 8 else ">f", seconds * 1000)
    path.write_bytes(bytes(data))


def test_a_correct_remux_passes_read_by_the_reader(source: Path, tmp_path: Path) -> None:
    before, plan, output = _written(source, tmp_path, "good.mkv")
    assert any(type(a).__name__ == "Reorder" for a in plan.actions)  # type: ignore[attr-defined]
    assert read_back(output, before, []) is not None
    after = verify_written(output, before, plan, POLICY, ToolRunner(60))  # type: ignore[arg-type]
    assert after.probed_with == "matroska-reader"
    assert _used(after) == _used(replace(probe(output, ToolRunner(60)), path=output))


@pytest.mark.parametrize(
    "name, edit, found",
    [
        ("flag", ["--edit", "track:@2", "--set", "flag-default=0"], "default flag is off"),
        ("forced", ["--edit", "track:@3", "--set", "flag-forced=1"], "forced flag is on"),
        ("language", ["--edit", "track:@2", "--set", "language=ger"], "language is 'ger'"),
        ("legacy-language", ["--edit", "track:@2", "--set", "language=ger", "--set", "language-ietf=en"],
         "Language element names another language"),
        ("title", ["--edit", "track:@1", "--set", "name=x264 encode"], "title is 'x264 encode'"),
        ("attachment", ["--delete-attachment", "1"], "1 attachments, expected 2"),
        ("chapters", ["--chapters", ""], "0 chapter entries, expected 5"),
    ],
)  # fmt: skip
def test_a_wrong_file_fails_verification_read_by_the_reader(source, tmp_path, name, edit, found) -> None:
    before, plan, output = _written(source, tmp_path, f"{name}.mkv")
    subprocess.run(["mkvpropedit", "-q", str(output), *edit], check=True)
    assert read_back(output, before, []) is not None, "the reader refused; this would test mkvmerge -J"
    with pytest.raises(MediaError) as failed:
        verify_written(output, before, plan, POLICY, ToolRunner(60))  # type: ignore[arg-type]
    assert failed.value.reason == Reason.VERIFY_FAILED
    assert found in str(failed.value)


def test_a_missing_track_fails_verification(source: Path, tmp_path: Path) -> None:
    before, plan, output = _written(source, tmp_path, "no-subtitles.mkv", "--no-subtitles")
    assert read_back(output, before, []) is not None
    with pytest.raises(MediaError, match="sees tracks video, audio, audio; expected video, audio, audio, subtitle"):
        verify_written(output, before, plan, POLICY, ToolRunner(60))  # type: ignore[arg-type]


def test_a_short_file_fails_verification(source: Path, tmp_path: Path) -> None:
    before, plan, output = _written(source, tmp_path, "short.mkv")
    _set_duration(output, 1.0)
    assert read_back(output, before, []) is not None
    with pytest.raises(MediaError, match=r"duration 1\.000 s, the source lasts 3\.\d+ s"):
        verify_written(output, before, plan, POLICY, ToolRunner(60))  # type: ignore[arg-type]


# -- tool runs per file ------------------------------------------------------------------------------


def _logging_tools(folder: Path) -> Path:
    """Stand-ins for every tool that log their command line and run the real one."""
    log = folder / "runs.log"
    folder.mkdir()
    for tool in ("mkvmerge", "mkvpropedit", "ffprobe", "ffmpeg"):
        real = shutil.which(tool)
        assert real is not None
        (folder / tool).write_text(f'#!/bin/sh\nif [ "$1" = -J ]; then echo "{tool} -J"; else echo {tool}; fi >> {log}\n'
                                   f'exec {real} "$@"\n')
        (folder / tool).chmod(0o755)
    return log


@pytest.mark.parametrize(
    "name, tracks, expected",
    [
        # subtitle before audio: a remux
        ("film.mkv", [video(), subtitle("eng"), audio("jpn", default=True), audio("eng")], ["mkvmerge -J", "mkvmerge"]),
        # only the default flag changes: an in-place edit
        ("film.mkv", [video(), audio("eng"), audio("jpn", default=True)], ["mkvmerge -J", "mkvpropedit"]),
        # a container change: MP4 is probed by both tools, the MKV read back by vpod
        ("film.mp4", [video(codec="libx264"), audio("eng", default=True)], ["mkvmerge -J", "ffprobe", "mkvmerge"]),
        # AC-3, which mkvmerge names from its frames, in a source mkvmerge -J did not name: the reader
        # refuses, and both tools read the written file, as before the reader
        ("film.mp4", [video(codec="libx264"), audio("eng", default=True, codec="ac3")],
         ["mkvmerge -J", "ffprobe", "mkvmerge", "mkvmerge -J", "ffprobe"]),
    ],
)  # fmt: skip
def test_one_probe_and_one_write_per_file(tmp_path: Path, env: dict[str, str], name, tracks, expected) -> None:
    log = _logging_tools(tmp_path / "bin")
    target = make_media(tmp_path / "lib" / name, tracks)
    config = write_config(
        tmp_path / "c.toml", {"database": {"path": str(tmp_path / "db")}, "policy": {"container": "mkv"}}
    )
    result = run_vpod(
        ["process", str(target), "--json", "--config", str(config)],
        env={**env, "PATH": f"{log.parent}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [item] = json.loads(result.stdout)["results"]
    assert item["success"] and item["changes"] > 0, item
    assert log.read_text().splitlines() == expected
