"""What `vpod plan` says of a planned hardware encode (issue 18 round 3): the hardware
encoder is used only when usable at run time, else the named software encoder; the cheap
checks (ffmpeg lists it, the VAAPI device opens) may already rule it out. Real files for
the device: a missing path, and a folder (which cannot be opened read-write)."""

from __future__ import annotations

from vpod.media.encoders import PlannedEncoder, planned_encoder

LISTED = frozenset({"libx265", "hevc_vaapi", "hevc_nvenc", "libx264"})


def test_a_hardware_encode_names_its_software_fallback(tmp_path) -> None:
    planned = planned_encoder("hevc", "nvenc", LISTED, str(tmp_path / "none"))
    assert planned == PlannedEncoder("hevc_nvenc", "libx265", "")
    assert planned.describe() == "hevc_nvenc if usable at run time, else libx265"
    # ffmpeg's listing unknown (no ffmpeg to ask): only the run can tell
    assert planned_encoder("av1", "qsv", None, "").describe() == "av1_qsv if usable at run time, else libsvtav1"


def test_the_cheap_checks_say_why_it_is_not_usable_here(tmp_path) -> None:
    gone = tmp_path / "renderD128"
    planned = planned_encoder("hevc", "vaapi", LISTED, str(gone))
    assert planned.not_usable == f"[processing] vaapi_device {gone} does not exist"
    assert planned.describe() == (
        f"hevc_vaapi not usable here ([processing] vaapi_device {gone} does not exist); libx265 encodes instead"
    )
    assert "cannot be opened" in planned_encoder("hevc", "vaapi", LISTED, str(tmp_path)).not_usable
    unlisted = planned_encoder("h264", "vaapi", LISTED, str(gone))
    assert unlisted == PlannedEncoder("h264_vaapi", "libx264", "this ffmpeg has no such encoder (ffmpeg -encoders)")


def test_a_software_encode_has_nothing_to_add() -> None:
    planned = planned_encoder("hevc", "software", LISTED, "")
    assert planned == PlannedEncoder("", "libx265", "") and planned.describe() == ""
