"""What `vpod plan` says of a planned hardware encode (issue 18 round 3): the hardware
encoder is used only when usable at run time, else the named software encoder; the cheap
checks (ffmpeg lists it, the VAAPI device is a DRM node and opens) may already rule it
out. Real files for the device: a missing path, a folder, /dev/null, and (as root) a
node of the DRM major made with mknod, which no driver answers."""

from __future__ import annotations

import os
import stat

import pytest

from vpod.media.encoders import DRM_MAJOR, PlannedEncoder, planned_encoder, vaapi_device_problem

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
    assert "is not a DRM render node (a folder)" in planned_encoder("hevc", "vaapi", LISTED, str(tmp_path)).not_usable
    unlisted = planned_encoder("h264", "vaapi", LISTED, str(gone))
    assert unlisted == PlannedEncoder("h264_vaapi", "libx264", "this ffmpeg has no such encoder (ffmpeg -encoders)")


def test_a_software_encode_has_nothing_to_add() -> None:
    planned = planned_encoder("hevc", "software", LISTED, "")
    assert planned == PlannedEncoder("", "libx265", "") and planned.describe() == ""


def test_a_device_that_is_not_a_drm_node_is_not_usable(tmp_path) -> None:
    # T18C finding 5: /dev/null opened read-write, so it passed; ffmpeg then failed with
    # "Generic error in an external library". The executor's check is the plan's.
    assert vaapi_device_problem("/dev/null") == (
        "[processing] vaapi_device /dev/null is not a DRM render node (a character device 1:3, not of the DRM "
        "major 226); render nodes are /dev/dri/renderD128 and up (`ls -l /dev/dri`)"
    )
    file = tmp_path / "renderD128"
    file.write_bytes(b"")
    assert "is not a DRM render node (a regular file)" in planned_encoder("hevc", "vaapi", LISTED, str(file)).not_usable


def test_a_drm_node_passes_the_node_check_and_is_then_opened(tmp_path) -> None:
    node = tmp_path / "renderD128"
    try:
        os.mknod(node, 0o660 | stat.S_IFCHR, os.makedev(DRM_MAJOR, 128))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD (root)")
    # No DRM driver answers for it here: it is opened, and that is what fails.
    why = vaapi_device_problem(str(node))
    assert why.startswith(f"[processing] vaapi_device {node} cannot be opened ("), why
