"""Which ffmpeg encoder writes a planned codec, and how encoders run.

A :class:`~vpod.policy.plan.TranscodeVideo` names a codec family (``hevc``, ``av1``,
``h264``) and an encoder family (``software``, ``vaapi``, ``nvenc``, ``qsv``). The
software encoders are libx265, libsvtav1 and libx264. A hardware one is used only when
this ffmpeg has it (``ffmpeg -encoders``) AND a one-second test encode with it works
(the device opens, the driver takes the format); otherwise the software encoder runs
and the choice says why (logged ``encoder_fallback``). FFmpeg 5.1 has no AV1 hardware
encoder (``av1_vaapi`` and ``av1_nvenc`` came in FFmpeg 6), so ``av1`` there is always
libsvtav1. Answers are remembered for the life of the :class:`EncoderCatalog` (one per
pipeline): the hardware does not come and go between files.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from typing import TYPE_CHECKING, NamedTuple

from vpod.errors import ToolError
from vpod.media.tools import ToolRunner

if TYPE_CHECKING:
    from vpod.config import ProcessingConfig

SOFTWARE = {"hevc": "libx265", "av1": "libsvtav1", "h264": "libx264"}
"""Codec family → the software encoder that writes it."""

HARDWARE = {
    "vaapi": {"hevc": "hevc_vaapi", "av1": "av1_vaapi", "h264": "h264_vaapi"},
    "nvenc": {"hevc": "hevc_nvenc", "av1": "av1_nvenc", "h264": "h264_nvenc"},
    "qsv": {"hevc": "hevc_qsv", "av1": "av1_qsv", "h264": "h264_qsv"},
}
"""Hardware family → codec family → the ffmpeg encoder's name."""

_TEST_SECONDS = 30.0  # a test encode of one small frame that takes longer is a broken device
_ENCODER_LINE = re.compile(r"^\s*[VAS][A-Z.]{5}\s+(\S+)\s")
_PIXEL_FORMATS = re.compile(r"Supported pixel formats:\s*(.+)")


class TranscodeSettings(NamedTuple):
    """How encoders run (``[processing]``; README "Configuration").

    Attributes:
        nice: nice(1) value 0-19 of an encoder (0: as vpod).
        ionice: ionice(1) class: ``idle`` (-c 3), ``best-effort`` (-c 2 -n 7), ``none``.
        vaapi_device: the DRM render node VAAPI encoders use.
    """

    nice: int = 10
    ionice: str = "idle"
    vaapi_device: str = "/dev/dri/renderD128"

    @classmethod
    def from_config(cls, processing: "ProcessingConfig") -> "TranscodeSettings":
        """The settings ``[processing]`` gives (``transcode_nice``, ``transcode_ionice``, ``vaapi_device``)."""
        return cls(processing.transcode_nice, processing.transcode_ionice, processing.vaapi_device)

    def wrapper(self) -> tuple[str, ...]:
        """The priority prefix an encoder runs under (:meth:`ToolRunner.run` ``wrapper``):
        ``nice -n N`` (nice(1)) and ``ionice -t -c 3`` / ``-t -c 2 -n 7`` (ionice(1),
        classes idle and best-effort lowest level; ``-t``: the encoder still runs where
        the I/O class cannot be set); empty when both are off."""
        prefix: tuple[str, ...] = ("nice", "-n", str(self.nice)) if self.nice else ()
        if self.ionice == "idle":
            prefix += ("ionice", "-t", "-c", "3")
        elif self.ionice == "best-effort":
            prefix += ("ionice", "-t", "-c", "2", "-n", "7")
        return prefix


class EncoderChoice(NamedTuple):
    """The encoder a video transcode runs with.

    Attributes:
        name: ffmpeg's encoder name (``libx265``, ``hevc_vaapi``).
        hardware: its hardware family, or ``""`` for software.
        fallback: why the planned hardware encoder is not used (``""``: it is, or none was asked).
        pixel_formats: the pixel formats it takes (``ffmpeg -h encoder=NAME``).
        short: the fallback's reason in a few words for the recorded action (``""``:
            "<asked> not usable").
    """

    name: str
    hardware: str
    fallback: str
    pixel_formats: tuple[str, ...]
    short: str = ""


class EncoderCatalog:
    """What this ffmpeg can encode with; thread-safe, each question asked once.

    Args:
        runner: runs ``ffmpeg -encoders``, ``ffmpeg -h encoder=NAME`` and test encodes.
        settings: the VAAPI device of a test encode.
    """

    def __init__(self, runner: ToolRunner, settings: TranscodeSettings) -> None:
        self.runner = runner
        self.settings = settings
        self._lock = threading.Lock()
        self._names: frozenset[str] | None = None
        self._formats: dict[str, tuple[str, ...]] = {}
        self._works: dict[tuple[str, str], str] = {}  # (encoder, device) -> "" or why not

    def choose(self, codec: str, hardware: str) -> EncoderChoice:
        """The encoder for codec family ``codec`` asked as ``hardware`` (``software`` or a
        key of :data:`HARDWARE`).

        Raises:
            ToolError: ``codec`` is no family vpod encodes, or ffmpeg lacks its software encoder.
            ToolMissing: ffmpeg is not installed.
        """
        if codec not in SOFTWARE:
            raise ToolError(f"vpod cannot encode video into {codec!r} (it knows {', '.join(SOFTWARE)})")
        software = SOFTWARE[codec]
        fallback = ""
        if hardware in HARDWARE:
            name = HARDWARE[hardware][codec]
            why = self._usable(name, hardware)
            if not why:
                return EncoderChoice(name, hardware, "", self.pixel_formats(name))
            fallback = f"{name} is not usable ({why}); {software} encodes instead"
        elif hardware not in ("software", ""):
            fallback = f"unknown encoder {hardware!r}; {software} encodes instead"
        if software not in self.encoder_names():
            raise ToolError(f"this ffmpeg has no {software} encoder (ffmpeg -encoders)")
        return EncoderChoice(software, "", fallback, self.pixel_formats(software))

    def encoder_names(self) -> frozenset[str]:
        """Every encoder ``ffmpeg -encoders`` lists (asked once)."""
        with self._lock:
            if self._names is None:
                self._names = encoder_names_in(self.runner.run(["ffmpeg", "-hide_banner", "-encoders"]).stdout)
            return self._names

    def pixel_formats(self, name: str) -> tuple[str, ...]:
        """The pixel formats encoder ``name`` takes (``ffmpeg -h encoder=NAME``, asked once)."""
        with self._lock:
            if name not in self._formats:
                out = self.runner.run(["ffmpeg", "-hide_banner", "-h", f"encoder={name}"]).stdout
                match = _PIXEL_FORMATS.search(out)
                self._formats[name] = tuple(match.group(1).split()) if match else ()
            return self._formats[name]

    def _usable(self, name: str, hardware: str) -> str:
        """``""`` when hardware encoder ``name`` encodes a test frame, else why not."""
        if name not in self.encoder_names():
            return "this ffmpeg has no such encoder (ffmpeg -encoders)"
        key = (name, self.settings.vaapi_device if hardware == "vaapi" else "")
        with self._lock:
            known = self._works.get(key)
        if known is not None:
            return known
        # A missing or closed render node is said plainly, without a test encode.
        why = vaapi_device_problem(self.settings.vaapi_device) if hardware == "vaapi" else ""
        if not why:
            try:
                self.runner.run(test_encode_args(name, hardware, self.settings.vaapi_device), timeout_seconds=_TEST_SECONDS)
            except ToolError as exc:  # a timeout too (ToolTimeout is a ToolError)
                why = str(exc).splitlines()[-1][:300] if str(exc) else "the test encode failed"
        with self._lock:
            self._works[key] = why
        return why


class PlannedEncoder(NamedTuple):
    """What ``vpod plan`` can say of a planned video encode without encoding anything: the
    executor tries the hardware at run time (:meth:`EncoderCatalog.choose`: listed by
    ffmpeg, the VAAPI device opens, a one-frame test encode works), the plan only looks.

    Attributes:
        hardware: ffmpeg's name of the hardware encoder asked (``hevc_vaapi``), ``""``
            when software was asked.
        software: the software encoder that runs when the hardware one is not usable (or
            always, when software was asked): ``libx265``, ``libsvtav1``, ``libx264``.
        not_usable: why the hardware encoder is already known not to be usable here (not
            listed by this ffmpeg, or ``[processing] vaapi_device`` does not open); ``""``
            when only the run can tell.
    """

    hardware: str
    software: str
    not_usable: str = ""

    def describe(self) -> str:
        """``hevc_vaapi if usable at run time, else libx265``, or ``hevc_vaapi not usable
        here (WHY); libx265 encodes instead``; ``""`` for a software encode."""
        if not self.hardware:
            return ""
        if self.not_usable:
            return f"{self.hardware} not usable here ({self.not_usable}); {self.software} encodes instead"
        return f"{self.hardware} if usable at run time, else {self.software}"


def planned_encoder(codec: str, hardware: str, names: frozenset[str] | None, vaapi_device: str) -> PlannedEncoder:
    """The encoders a video transcode into codec family ``codec`` asked as ``hardware``
    (``software`` or a key of :data:`HARDWARE`) may run with, by the cheap checks only:
    whether ``names`` (:func:`encoder_names_in` of ``ffmpeg -encoders``; ``None``: not
    known) lists the hardware encoder, and for ``vaapi`` whether ``vaapi_device`` opens
    (:func:`vaapi_device_problem`). No test encode is run: a hardware encoder that passes
    both may still fall back at run time."""
    software = SOFTWARE.get(codec, "")
    name = HARDWARE.get(hardware, {}).get(codec, "")
    if not name:
        return PlannedEncoder("", software)
    why = ""
    if names is not None and name not in names:
        why = "this ffmpeg has no such encoder (ffmpeg -encoders)"
    elif hardware == "vaapi":
        why = vaapi_device_problem(vaapi_device)
    return PlannedEncoder(name, software, why)


def encoder_names_in(listing: str) -> frozenset[str]:
    """The encoder names in ``ffmpeg -hide_banner -encoders`` output: each line after the
    legend is six flag characters (``V.....``: video, ``A``: audio, ``S``: subtitle) and
    the name."""
    return frozenset(m.group(1) for m in map(_ENCODER_LINE.match, listing.splitlines()) if m)


DRM_MAJOR = 226
"""The device major number of DRM nodes (``/dev/dri/card0`` minor 0 and up, render nodes
``/dev/dri/renderD128`` minor 128 and up): the Linux kernel's
Documentation/admin-guide/devices.txt, "226 char DRM (Direct Rendering Manager)"."""


def drm_node_problem(device: str) -> str:
    """``""`` when ``device`` is a DRM device node (a character device of major
    :data:`DRM_MAJOR`), else what it is instead, naming ``[processing] vaapi_device``:
    a VAAPI driver opens only those (``/dev/null`` opens, yet ffmpeg then fails with
    "Error parsing global options: Generic error in an external library").

    Raises:
        OSError: ``device`` cannot be looked at (FileNotFoundError: it does not exist).
    """
    st = os.stat(device)
    if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == DRM_MAJOR:
        return ""
    if stat.S_ISCHR(st.st_mode):
        what = f"a character device {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}, not of the DRM major {DRM_MAJOR}"
    elif stat.S_ISDIR(st.st_mode):
        what = "a folder"
    elif stat.S_ISREG(st.st_mode):
        what = "a regular file"
    else:
        what = "not a character device"
    return (
        f"[processing] vaapi_device {device} is not a DRM render node ({what}); "
        "render nodes are /dev/dri/renderD128 and up (`ls -l /dev/dri`)"
    )


def vaapi_device_problem(device: str) -> str:
    """``""`` when the VAAPI render node ``device`` (``[processing] vaapi_device``) is a
    DRM device node (:func:`drm_node_problem`) and opens for reading and writing, as the
    driver opens it, else why not, naming the key."""
    try:
        why = drm_node_problem(device)
        if why:
            return why
        os.close(os.open(device, os.O_RDWR | os.O_CLOEXEC))
    except FileNotFoundError:
        return f"[processing] vaapi_device {device} does not exist"
    except OSError as exc:
        return f"[processing] vaapi_device {device} cannot be opened ({exc.strerror or exc})"
    return ""


def test_encode_args(name: str, hardware: str, vaapi_device: str) -> list[str]:
    """An ffmpeg command that encodes one 256x256 frame with hardware encoder ``name`` and
    throws it away: it fails when the device does not open or the driver refuses."""
    head = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"]
    if hardware == "vaapi":
        head += ["-vaapi_device", vaapi_device]
    elif hardware == "qsv":
        head += ["-init_hw_device", "qsv=hw", "-filter_hw_device", "hw"]
    upload = {"vaapi": ["-vf", "format=nv12,hwupload"], "qsv": ["-vf", "format=nv12,hwupload=extra_hw_frames=64"]}
    return [
        *head, "-f", "lavfi", "-i", "color=size=256x256:duration=0.1:rate=10", "-frames:v", "1",
        *upload.get(hardware, []), "-c:v", name, "-f", "null", "-",
    ]  # fmt: skip
