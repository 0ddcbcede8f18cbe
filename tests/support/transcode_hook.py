"""A test-only stand-in for transcoding, so the transcode lane can be tested before the
policy keys and the executor exist (issue 18: those are other branches).

* a policy hook: files whose name contains ``marker`` get a plan with one
  :class:`~vpod.policy.plan.TranscodeVideo` action more (cost class ``transcode``);
* an encoder stand-in: such a plan is "applied" by a real ffmpeg encode at real-time
  speed (``-re``, ``seconds`` long, with ``-progress pipe:1``) into the pipeline's own
  temp file, through the pipeline's ToolRunner (so shutdown and fences kill it as they
  would kill the real encoder). Its output does not match the plan: the file then fails
  verification, which these tests never look at.

Nothing here is shipped. :func:`install` patches the running process; the daemon
subprocess gets it through a ``sitecustomize.py`` (:func:`sitecustomize_env`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MARKER_ENV = "VPOD_TEST_TRANSCODE_MARKER"
SECONDS_ENV = "VPOD_TEST_TRANSCODE_SECONDS"

_SITECUSTOMIZE = """\
import os
if os.environ.get({marker!r}):
    import transcode_hook
    transcode_hook.install(os.environ[{marker!r}], float(os.environ.get({seconds!r}, "30")))
"""


def install(marker: str, seconds: float, patch: object = None) -> None:
    """Plan a transcode for files named with ``marker`` and encode them for ``seconds``.

    ``patch``: pytest's ``monkeypatch`` (undone after the test); ``None``: plain setattr
    (a daemon subprocess)."""
    import vpod.media.remux as remux
    import vpod.pipeline as pipeline
    from vpod.media.tool_progress import FFMPEG_ARGS
    from vpod.policy.plan import TranscodeVideo

    real_plan = pipeline.make_plan
    real_remux = remux.Remuxer.remux

    def planned(policy, media, original=None, **kwargs):  # type: ignore[no-untyped-def]
        plan = real_plan(policy, media, original, **kwargs)
        if marker in media.path.name and not kwargs.get("header_only"):
            video = next(t.index for t in media.tracks if t.type == "video")
            encode = TranscodeVideo(video, "hevc", crf=22, preset="medium", why="test hook")
            plan = plan._replace(actions=(*plan.actions, encode))
        return plan

    def encode(self, media, plan, output, on_progress=None):  # type: ignore[no-untyped-def]
        if not plan.transcodes:
            return real_remux(self, media, plan, output, on_progress)
        reader = _with_speed(on_progress, seconds) if on_progress else None
        if on_progress:
            on_progress(0.0)
        self.runner.run(
            ["ffmpeg", *FFMPEG_ARGS, "-nostdin", "-y", "-v", "error", "-re", "-f", "lavfi", "-i",
             f"testsrc=size=64x48:rate=10:duration={seconds}", "-c:v", "mpeg4", "-f", "matroska", str(output)],
            on_output_line=reader, timeout_seconds=seconds + 120,
        )  # fmt: skip
        return "ffmpeg"

    setter = patch.setattr if patch is not None else setattr  # type: ignore[attr-defined]
    setter(pipeline, "make_plan", planned)
    setter(remux.Remuxer, "remux", encode)


def _with_speed(sink, seconds: float):  # type: ignore[no-untyped-def]
    """A ``-progress pipe:1`` reader passing ``sink(percent, speed=..., fps=...)``, the
    sink signature the executor's reader will use (issue 18 SPEC: exec's part)."""
    from vpod.media.tool_progress import ffmpeg_line_reader

    seen: dict[str, float | None] = {"speed": None, "fps": None}
    percent = ffmpeg_line_reader(lambda p: sink(p, speed=seen["speed"], fps=seen["fps"]), seconds)

    def read(line: str) -> None:
        key, _, value = line.partition("=")
        if key in ("speed", "fps"):
            try:
                seen[key] = float(value.strip().rstrip("x"))
            except ValueError:
                seen[key] = None  # "N/A" at the start
        percent(line)

    return read


def sitecustomize_env(folder: Path, marker: str, seconds: float) -> dict[str, str]:
    """Environment for a vpod subprocess that installs the hook at start: a
    ``sitecustomize.py`` and a copy of this module in ``folder``, on ``PYTHONPATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(marker=MARKER_ENV, seconds=SECONDS_ENV))
    # A copy of this module alone: tests/support on the path would shadow the standard library's http.
    shutil.copyfile(__file__, folder / "transcode_hook.py")
    paths = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths), MARKER_ENV: marker, SECONDS_ENV: str(seconds)}

