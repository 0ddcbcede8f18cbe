"""Apply header-only plan actions in place with ``mkvpropedit``.

mkvpropedit rewrites Matroska track headers without touching the media data, so it
costs about as much as one process start whatever the file's size, and keeps the
file's inode (hard links stay linked). Property names are those of
``mkvpropedit --list-property-names`` (MKVToolNix docs, mkvpropedit(1)).
"""

from __future__ import annotations

from pathlib import Path

from vpod.errors import MediaError, ToolError
from vpod.media.model import MediaInfo
from vpod.media.tools import ToolRunner
from vpod.policy.plan import Plan, SetFlag, SetLanguage, SetTitle

_FLAG_PROPERTIES = {"default": "flag-default", "forced": "flag-forced"}


def mkvpropedit_args(media: MediaInfo, plan: Plan) -> list[str]:
    """The mkvpropedit argument list (without the program name) for a header-only plan.

    Tracks are selected by Matroska track number (``track:@N``), which stays valid
    whatever order mkvmerge reports them in.

    Raises:
        MediaError: the plan holds structural actions, or a track has no number.
    """
    numbers = {t.index: t.number for t in media.tracks}
    edits: dict[int, list[str]] = {}
    for action in plan.actions:
        if isinstance(action, SetFlag):
            setting = f"{_FLAG_PROPERTIES[action.flag]}={int(action.value)}"
            edits.setdefault(action.track, []).extend(["--set", setting])
        elif isinstance(action, SetLanguage):
            edits.setdefault(action.track, []).extend(["--set", f"language={action.tag or action.language}"])
        elif isinstance(action, SetTitle):
            if action.title:
                edits.setdefault(action.track, []).extend(["--set", f"name={action.title}"])
            else:
                edits.setdefault(action.track, []).extend(["--delete", "name"])
        else:
            raise MediaError(f"{media.path}: {action.describe()} needs a remux, not mkvpropedit")
    args: list[str] = [str(media.path)]
    for index, settings in edits.items():
        number = numbers.get(index)
        if number is None:
            raise MediaError(f"{media.path}: track {index} has no Matroska track number")
        args += ["--edit", f"track:@{number}", *settings]
    return args


def edit_in_place(media: MediaInfo, plan: Plan, runner: ToolRunner) -> Path:
    """Apply a header-only ``plan`` to the Matroska file ``media.path``; returns that path.

    Raises:
        MediaError: the file is not Matroska or the plan is structural.
        ToolError / ToolTimeout / ToolMissing: mkvpropedit failed (its message included).
    """
    if not media.is_matroska:
        raise MediaError(f"{media.path}: mkvpropedit edits Matroska files only, not {media.container}")
    try:
        # The size share of the limit: mkvpropedit may have to move header elements.
        limit = runner.limits.for_size(media.size_bytes)
        runner.run(["mkvpropedit", *mkvpropedit_args(media, plan)], ok_codes=(0, 1), timeout_seconds=limit)
    except ToolError as exc:
        raise MediaError(f"{media.path}: {exc}", reason=exc.reason, permanent=exc.permanent) from None
    return media.path
