"""Why a configured watch folder is not watched now, for ``/health`` and ``vpod status``.

Each folder the daemon does not watch gets one reason:

* ``claimed_elsewhere``: another vpod (another database) holds the library
  (:mod:`vpod.watch.ownership`); watched once that vpod stops;
* ``overlaps``: the path, as it is now (a re-pointed symlink, a re-created folder), reaches
  the files of another watched root (:class:`vpod.watch.roots.RuntimeOverlaps`); watched
  once it no longer does;
* ``missing``: missing, deleted, moved away, or not a folder; watched once a folder has
  the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection, Iterable, Mapping

from vpod.outcomes import Unwatched

REASONS: Mapping[str, str] = {reason.value: reason.heading for reason in Unwatched}
"""Each reason's heading in ``vpod status`` (:class:`vpod.outcomes.Unwatched`)."""


def unwatched(
    roots: Iterable[Path],
    *,
    watched: Callable[[Path], bool],
    missing: Collection[Path],
    claimed_elsewhere: Collection[Path],
    overlap: Callable[[Path], str | None],
) -> list[dict[str, str]]:
    """The configured ``roots`` not watched now, each as ``{"path", "reason", "detail"?}``
    (``reason`` the value of an :class:`~vpod.outcomes.Unwatched` member), sorted by path.

    Args:
        roots: the configured roots.
        watched: whether an observer watches a root now.
        missing: roots found missing (deleted, moved away) and not watched again yet.
        claimed_elsewhere: roots another vpod holds.
        overlap: one sentence when a root overlaps another root now, else ``None``.
    """
    found = []
    for root in sorted(roots, key=str):
        if watched(root) and root not in missing:
            continue
        entry = {"path": str(root)}
        detail = overlap(root)
        if root in claimed_elsewhere:
            entry["reason"] = Unwatched.CLAIMED_ELSEWHERE.value
        elif detail is not None:
            entry["reason"], entry["detail"] = Unwatched.OVERLAPS.value, detail
        else:
            entry["reason"] = Unwatched.MISSING.value
        found.append(entry)
    return found
