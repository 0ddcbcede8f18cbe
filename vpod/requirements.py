"""The external tools vpod needs, checked before anything starts."""

from __future__ import annotations

import shutil

from vpod.errors import VpodError, package_for_tool

REQUIRED_TOOLS = ("ffprobe", "ffmpeg", "mkvmerge", "mkvpropedit")


def missing_tools(tools: tuple[str, ...] = REQUIRED_TOOLS) -> list[str]:
    """Tools from ``tools`` that are not on ``PATH``."""
    return [tool for tool in tools if shutil.which(tool) is None]


def missing_tools_message(missing: list[str]) -> str:
    """A message naming each missing tool and the Debian/Ubuntu package that ships it."""
    packages = sorted({package_for_tool(t) for t in missing})
    return (
        f"required tool(s) not found on PATH: {', '.join(missing)}. "
        f"Install them (Debian/Ubuntu: sudo apt-get install {' '.join(packages)})."
    )


class ToolsMissing(VpodError):
    """Tools vpod needs are not on ``PATH``; ``missing`` names them. The message names
    each tool and its package (:func:`missing_tools_message`); the CLI exits 69."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(missing_tools_message(missing))
        self.missing = missing
