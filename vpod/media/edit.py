"""Apply header-only plan actions in place with ``mkvpropedit``, and never leave a
half-edited file behind.

mkvpropedit rewrites Matroska track headers without touching the media data, so it
costs about as much as one process start whatever the file's size, and keeps the
file's inode (hard links stay linked). Property names are those of
``mkvpropedit --list-property-names`` (MKVToolNix docs, mkvpropedit(1)).

But it edits the file itself: when the new headers do not fit where the old ones were,
it turns the old ones into Void padding first and then appends the new ones at the end
of the file. If that append fails (a full disk), mkvpropedit exits 2 ("The file has
been modified") and leaves a file without its Tracks, which players and ``mkvmerge
-J`` read as a file with no tracks at all. :func:`edit_in_place` therefore:

1. walks the file's top-level elements (:mod:`vpod.media.ebml`) and saves every byte
   mkvpropedit may change (:mod:`vpod.media.undo`): in memory up to 64 MiB, else in a
   temp file beside it. A file it cannot walk (a top-level element of unknown size, a
   truncated file) is saved whole;
2. refuses to start (:class:`vpod.diskspace.InsufficientSpace`) unless the filesystem
   has room for the worst case (every header element appended again at the end, plus
   the edit's own bytes), the undo file if any, and a 1 MiB margin;
3. reserves that worst case for the file (``fallocate``, where the filesystem can), so
   other programs filling the disk meanwhile cannot make the append fail;
4. runs mkvpropedit and verifies the result; if either fails (any exit status above 1,
   a kill, a timeout, a file that does not verify), writes the saved bytes back,
   truncates the file to its old size and checks it: the file is then byte for byte
   what it was.
"""

from __future__ import annotations

import errno
import io
import os
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from vpod.diskspace import EDIT_MARGIN_BYTES, InsufficientSpace, SpaceLedger, free_bytes, format_bytes
from vpod.diskspace import release_reserved, reserve_after_end
from vpod.errors import MediaError, ToolError
from vpod.media.limits import SIZE_KEYS
from vpod.media.ebml import CLUSTER_ID, SEEK_HEAD_ID, VOID_ID, EbmlError, MatroskaLayout, walk
from vpod.media.flags import FLAGS_BY_NAME
from vpod.media.model import MediaInfo
from vpod.media.tools import ToolRunner
from vpod.media.undo import EditUndo, UndoFailed, ranges_to_save
from vpod.outcomes import Reason
from vpod.policy.plan import Plan, SetFlag, SetLanguage, SetTitle
from vpod.tempfiles import TempRegistry, temp_beside

UNDO_IN_MEMORY_BYTES = 64 << 20  # saved bytes above this go to a temp file beside the source
UNWALKABLE_APPEND_BYTES = 64 << 20  # assumed append of a file whose elements cannot be walked
_EDIT_OVERHEAD_BYTES = 16  # per argument: an element's ID and size field, a longer parent size field

T = TypeVar("T")


def mkvpropedit_args(media: MediaInfo, plan: Plan) -> list[str]:
    """The mkvpropedit argument list (without the program name) for a header-only plan.

    Tracks are selected by Matroska track number (``track:@N``), which stays valid
    whatever order mkvmerge reports them in. A flag turned off is written as 0, not
    deleted: for ``FlagOriginal`` an explicit 0 says "not the original language", the
    same as a remux writes (:mod:`vpod.media.flags`).

    Raises:
        MediaError: the plan holds structural actions, or a track has no number.
    """
    numbers = {t.index: t.number for t in media.tracks}
    edits: dict[int, list[str]] = {}
    for action in plan.actions:
        if isinstance(action, SetFlag):
            setting = f"{FLAGS_BY_NAME[action.flag].mkvpropedit}={int(action.value)}"
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


def append_bound(layout: MatroskaLayout, args: list[str]) -> int:
    """The most bytes mkvpropedit may append to the walked file for ``args``: each
    top-level element that is neither a Cluster nor a Void once (it may move any of
    them, and the Cues it rewrites when it shifts a Cluster's header), every SeekHead
    once more (it may move one to the end and write a new one at the start), and
    what the edit adds: every argument's bytes plus 16 for element headers."""
    elements = sum(c.header_size + c.size for c in layout.children if c.id not in (CLUSTER_ID, VOID_ID))
    seek_heads = sum(c.header_size + c.size for c in layout.children if c.id == SEEK_HEAD_ID)
    added = sum(len(os.fsencode(a)) + _EDIT_OVERHEAD_BYTES for a in args)
    return elements + seek_heads + added


def edit_in_place(
    media: MediaInfo,
    plan: Plan,
    runner: ToolRunner,
    temps: TempRegistry,
    space: SpaceLedger,
    verify: Callable[[], T],
) -> T:
    """Apply a header-only ``plan`` to the Matroska file ``media.path`` and return what
    ``verify()`` returns; on any failure of mkvpropedit or ``verify`` the file is put
    back byte for byte (see the module docstring).

    Args:
        media: the probed file (Matroska).
        plan: header-only actions.
        runner: runs mkvpropedit.
        temps: registers the undo temp file, when one is needed.
        space: the free space promised to writes in progress.
        verify: reads the edited file back; raises :class:`MediaError` when it does not
            conform.

    Raises:
        InsufficientSpace: reason ``insufficient_space``; nothing was written.
        MediaError: the file is not Matroska or the plan is structural; or mkvpropedit
            failed (reason ``tool_failed``, ``killed``, ``timeout``; ``disk_full`` when the
            filesystem had less room than the edit needed) or ``verify`` failed, and the
            file was put back (the message says so); or reason ``undo_failed``: putting
            it back failed too.
        OSError: the file could not be opened, read or saved.
    """
    if not media.is_matroska:
        raise MediaError(f"{media.path}: mkvpropedit edits Matroska files only, not {media.container}")
    args = mkvpropedit_args(media, plan)
    path = media.path
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        try:
            layout = walk(fd)
            ranges, append = ranges_to_save(layout), append_bound(layout, args)
            whole = None
        except EbmlError as exc:
            ranges, append, whole = [(0, size)], min(size, UNWALKABLE_APPEND_BYTES), str(exc)
        saved = sum(length for _, length in ranges)
        in_memory = saved <= UNDO_IN_MEMORY_BYTES
        what = "an in-place header edit (what mkvpropedit may append to the file"
        if not in_memory:
            what += f", and a copy of {'the whole file' if whole else 'its headers'} beside it to undo a failed edit"
            what += f", since {whole}" if whole else ""
        what += ")"
        with ExitStack() as stack:
            claim_need = append + (0 if in_memory else saved)
            stack.enter_context(space.claim(path, path.parent, claim_need, EDIT_MARGIN_BYTES, what))
            backing: BinaryIO = io.BytesIO()
            if not in_memory:
                undo_file = stack.enter_context(temp_beside(path, temps, suffix=".undo"))
                backing = stack.enter_context(open(undo_file, "r+b"))
            undo = EditUndo.save(path, fd, ranges, backing)
            return _edit_undoably(path, fd, size, append, args, runner, undo, verify)
    finally:
        os.close(fd)


def _edit_undoably(
    path: Path, fd: int, size: int, append: int, args: list[str], runner: ToolRunner, undo: EditUndo,
    verify: Callable[[], T],
) -> T:
    """Reserve ``append`` bytes after the end, run mkvpropedit and ``verify``; undo on failure."""
    try:
        reserved = reserve_after_end(fd, size, append)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            reserved = False  # the statvfs check has to do
        else:
            raise InsufficientSpace(
                f"{path}: cannot reserve the {format_bytes(append)} an in-place header edit may append: "
                f"{exc.strerror}; nothing was written, the file is left as it was until there is room"
            ) from None
    try:
        # The size share of the limit: mkvpropedit may have to move header elements.
        runner.run(["mkvpropedit", *args], ok_codes=(0, 1), timeout_seconds=runner.limits.for_size(size), timeout_keys=SIZE_KEYS)
        return verify()
    except BaseException as exc:
        # Without a reservation, a write mkvpropedit could not make is the likely cause
        # (it does not say why: "An unknown error occurred").
        tool_failed = isinstance(exc, ToolError) and exc.reason == Reason.TOOL_FAILED
        disk_full = tool_failed and not reserved and _short_of(path, append)
        reserved = False  # the restore truncates the file, which frees the reservation too
        try:
            undo.restore()
        except UndoFailed as failed:
            raise UndoFailed(f"{failed} (the edit had failed: {exc})") from None
        if not isinstance(exc, MediaError):
            raise
        text = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        if disk_full:
            raise MediaError(
                f"{text}; the filesystem had less than the {format_bytes(append)} free that the edit may need; "
                f"{_UNDONE}",
                reason=Reason.DISK_FULL,
                permanent=False,
            ) from None
        raise MediaError(f"{text}; {_UNDONE}", reason=exc.reason, permanent=exc.permanent) from None
    finally:
        if reserved:
            try:
                release_reserved(fd)
            except OSError:
                pass  # only blocks past the end stay allocated


def _short_of(path: Path, needed: int) -> bool:
    """True when ``path``'s filesystem has less than ``needed`` bytes free (False when
    that cannot be told)."""
    free = free_bytes(path.parent)
    return free is not None and free < needed


_UNDONE = "the edit was undone: the file is byte for byte as it was before"
