"""`vpod plan`'s reading of a recorded `not_smaller` outcome (issue 18, keep_if_larger):
the saving is taken from the message the pipeline itself writes (both wordings), and a
message without one (an older vpod's) is shown as it was recorded."""

from __future__ import annotations

from pathlib import Path

from vpod.media.video_saving import VideoBytes, saving_shortfall
from vpod.not_smaller import TRY_AGAIN, NotSmaller
from vpod.policy.policy import Policy

PATH = Path("/media/Film.mkv")


def recorded(result_bytes: int) -> str:
    """The row's message, as the pipeline words it (vpod.pipeline._remux and _video_declined),
    for a source with 10,000,000 bytes of video."""
    shortfall = saving_shortfall(VideoBytes(10_000_000, result_bytes), Policy())
    assert shortfall is not None
    return f"{PATH}: {shortfall}; the encode was discarded and the source's video kept; applied: x"


def test_the_saving_is_read_from_the_pipelines_own_message() -> None:
    less = NotSmaller.from_message(recorded(9_600_000), "default")
    assert less.saved_percent == 4.0 and less.detail is not None
    assert less.detail.startswith("the video encode saved only 4.0 % (") and less.detail.endswith("of video)")
    more = NotSmaller.from_message(recorded(12_000_000), "anime")
    assert more.saved_percent == -20.0 and "made the video 20.0 % larger" in (more.detail or "")
    assert "(anime)" in more.describe() and "made the video 20.0 % larger" in more.describe()
    assert "policy that judges it changes" in more.try_again() and "vpod retry PATH" in more.try_again()


def test_a_record_of_the_whole_file_wording_is_still_read() -> None:
    """The first transcoding release judged the whole file and worded it so; such rows stay."""
    old = NotSmaller.from_message(
        f"{PATH}: the transcode made the file 107.4 % larger (1.1 MiB -> 2.3 MiB without the added tracks); "
        "keep_if_larger asks for a saving of at least min_saving_percent = 5 %; the transcode was discarded", None
    )
    assert old.saved_percent == -107.4 and old.detail == (
        "the transcode made the file 107.4 % larger (1.1 MiB -> 2.3 MiB without the added tracks)"
    )


def test_a_message_without_a_saving_is_shown_as_recorded() -> None:
    old = NotSmaller.from_message("/media/Film.mkv: grew by 3 MB", None)
    assert (old.detail, old.saved_percent) == ("/media/Film.mkv: grew by 3 MB", None)
    assert NotSmaller.from_message(None, None).as_dict() == {
        "detail": None, "saved_percent": None, "policy": None, "try_again": list(TRY_AGAIN),
    }
