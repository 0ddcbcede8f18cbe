"""`vpod plan`'s reading of a recorded `not_smaller` outcome (issue 18, keep_if_larger):
the saving is taken from the message the pipeline itself writes (both wordings), and a
message without one (an older vpod's) is shown as it was recorded."""

from __future__ import annotations

from pathlib import Path

from vpod.media.model import MediaInfo, Track
from vpod.not_smaller import TRY_AGAIN, NotSmaller
from vpod.pipeline import saving_shortfall
from vpod.policy.plan import Plan, TranscodeVideo
from vpod.policy.policy import Policy

MEDIA = MediaInfo(Path("/media/Film.mkv"), "matroska", 600.0, (Track(0, "video", "HEVC/H.265/MPEG-H", "und"),),
                  10_000_000, "mkvmerge")  # fmt: skip
VIDEO = Plan((TranscodeVideo(0, "h264", "software", 20, "medium"),))


def recorded(result_bytes: int) -> str:
    """The row's message, as the pipeline words it (vpod.pipeline._remux and _not_smaller)."""
    shortfall = saving_shortfall(MEDIA, VIDEO, Policy(), result_bytes)
    assert shortfall is not None
    return f"{MEDIA.path}: {shortfall}; the transcode was discarded and the source's video kept; applied: x"


def test_the_saving_is_read_from_the_pipelines_own_message() -> None:
    less = NotSmaller.from_message(recorded(9_600_000), "default")
    assert less.saved_percent == 4.0 and less.detail is not None
    assert less.detail.startswith("the transcode saved only 4.0 % (") and less.detail.endswith(")")
    more = NotSmaller.from_message(recorded(12_000_000), "anime")
    assert more.saved_percent == -20.0 and "made the file 20.0 % larger" in (more.detail or "")
    assert "(anime)" in more.describe() and "made the file 20.0 % larger" in more.describe()
    assert "policy that judges it changes" in more.try_again() and "vpod retry PATH" in more.try_again()


def test_a_message_without_a_saving_is_shown_as_recorded() -> None:
    old = NotSmaller.from_message("/media/Film.mkv: grew by 3 MB", None)
    assert (old.detail, old.saved_percent) == ("/media/Film.mkv: grew by 3 MB", None)
    assert NotSmaller.from_message(None, None).as_dict() == {
        "detail": None, "saved_percent": None, "policy": None, "try_again": list(TRY_AGAIN),
    }
