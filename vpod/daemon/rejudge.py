"""Files skipped for good under a policy that no longer judges them go back to the queue:
hard-linked ones (``hardlinked``) and those whose video encode vpod declined
(``not_smaller``, ``hdr_not_kept``, ``interlaced_not_kept``, ``several_video_tracks``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import structlog

from vpod.config import VPOConfig
from vpod.db.store import Store
from vpod.outcomes import Reason
from vpod.policy.selection import PolicySelector


class HardlinkedRejudge:
    """A file skipped as ``hardlinked`` (``[policy] hardlinks``: left alone, or only the
    header part of its plan applied) is done for the policy that judged it, not for
    another: at start and after each reload, those whose policy (the one
    :class:`PolicySelector` chooses for them now) has another digest are queued again
    (:meth:`vpod.db.store.Store.requeue_hardlinked`), logged ``hardlinked_requeued``.
    The same holds for a file skipped as ``not_smaller`` (its video encode was not
    smaller, ``keep_if_larger``): logged ``not_smaller_requeued``; and for one whose video
    encode was declined because it could not keep the picture (``hdr_not_kept``,
    ``interlaced_not_kept``, ``several_video_tracks``): logged ``video_declined_requeued`` with ``outcome``.

    Args:
        store: the Store.
        policies: the selector in force (a reload replaces it).
        queued: called when files were queued (wakes the feeder).
    """

    def __init__(self, store: Store, policies: Callable[[], PolicySelector], queued: Callable[[], None]) -> None:
        self.store = store
        self.policies = policies
        self.queued = queued
        self.log = structlog.get_logger("vpod")

    def run(self) -> int:
        """Queue again the files judged under another policy; returns how many."""
        selector = self.policies()

        def digest_of(library: str, folder: Path, relpath: bytes) -> str | None:
            return selector.digest(folder / os.fsdecode(relpath), root=folder, library=library)

        count = 0
        for reason, event in (
            (Reason.HARDLINKED, "hardlinked_requeued"), (Reason.NOT_SMALLER, "not_smaller_requeued"),
            (Reason.HDR_NOT_KEPT, "video_declined_requeued"), (Reason.INTERLACED_NOT_KEPT, "video_declined_requeued"),
            (Reason.SEVERAL_VIDEO_TRACKS, "video_declined_requeued"),
        ):  # fmt: skip
            paths = self.store.requeue_hardlinked(digest_of, reason)
            if paths:
                extra = {"outcome": reason.value} if event == "video_declined_requeued" else {}
                self.log.info(event, files=len(paths), reason="the policy that judges them changed", **extra)
                count += len(paths)
        if count:
            self.queued()
        return count

    def reconfigure(self, config: VPOConfig) -> None:
        """After a reload: re-judge what the new policies judge differently."""
        self.run()
