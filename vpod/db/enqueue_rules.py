"""What :meth:`vpod.db.store.Store.enqueue` does with one file, decided once for every backend.

The backends differ in SQL only: each reads the file's current row and whether a result
elsewhere vouches for its content, asks :func:`decide`, and carries out the
:class:`Step` it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vpod.db.rows import Row

from vpod.db.store import EnqueueEntry, EnqueueOutcome
from vpod.fingerprint import is_unread
from vpod.outcomes import VIDEO_DECLINED, Reason, Status


class Write(enum.Enum):
    """The write an enqueue needs."""

    NONE = "none"
    SET_FINGERPRINT = "set_fingerprint"  # a queued row takes the new content's fingerprint and stat
    REFRESH_STAT = "refresh_stat"  # only the stat key is refreshed
    UPSERT = "upsert"  # the row is (re)written as ``state`` with fresh attempts


@dataclass(frozen=True)
class Step:
    """:func:`decide`'s answer: the outcome, the write, and for an upsert the state written
    (``queued``, or ``done`` for content a twin vouches for)."""

    outcome: EnqueueOutcome
    write: Write
    state: str | None = None


def decide(row: Row | None, fingerprint: str, *, twin: bool, policy_digest: str | None) -> Step:
    """The enqueue rules, in order, for a file whose current row is ``row`` (``None``: no row;
    keys ``state``, ``fingerprint``, ``result_fingerprint``, ``permanent``,
    ``pending_actions``, ``reason``, ``policy_digest``).

    A file waiting or in progress stays so (a queued one takes the new fingerprint unless
    an interrupted plan is pending: the redo compares against the pre-change one); content
    equal to what vpod left at this path is ``UNCHANGED``; content equal to a permanent
    failure or skip waits for a change; content a result elsewhere vouches for under the
    policy in force (``twin``) is ``SAME_CONTENT_DONE``; anything else is queued. A file
    skipped as ``hardlinked`` or with its video encode declined (``not_smaller``,
    ``hdr_not_kept``, ``interlaced_not_kept``: :data:`vpod.outcomes.VIDEO_DECLINED`) under another policy digest counts as
    having no row (a policy change re-judges it). A ``fingerprint`` not read yet
    (:func:`vpod.fingerprint.unread`, a folder walk's file) decides only for a path with
    no row and no result of its size under the policy in force (``twin`` means "a result
    of its size" then): it is queued, and the worker applies the same-content rule once
    it has read it (:meth:`vpod.db.store.Store.read_content`). Else it is ``UNREAD``,
    nothing written: the caller reads the file and asks again.
    """
    if is_unread(fingerprint) and (row is not None or twin):
        return Step(EnqueueOutcome.UNREAD, Write.NONE)
    if (
        row is not None
        and row["state"] == Status.SKIPPED
        and (row["reason"] == Reason.HARDLINKED or row["reason"] in VIDEO_DECLINED)
        and row["policy_digest"] != policy_digest
    ):
        row = None
    if row is not None and row["state"] in ("queued", "processing"):
        if row["state"] == "queued" and row["fingerprint"] != fingerprint and not row["pending_actions"]:
            return Step(EnqueueOutcome.ALREADY_QUEUED, Write.SET_FINGERPRINT)
        return Step(EnqueueOutcome.ALREADY_QUEUED, Write.NONE)
    if row is not None and row["result_fingerprint"] == fingerprint:
        return Step(EnqueueOutcome.UNCHANGED, Write.REFRESH_STAT)
    if row is not None and row["state"] in ("failed", "skipped") and row["permanent"] and row["fingerprint"] == fingerprint:
        return Step(EnqueueOutcome.FAILED_UNCHANGED, Write.REFRESH_STAT)
    if twin:
        return Step(EnqueueOutcome.SAME_CONTENT_DONE, Write.UPSERT, "done")
    return Step(EnqueueOutcome.QUEUED, Write.UPSERT, "queued")


def digest_of(entry: EnqueueEntry, policy_digest: str | None) -> str | None:
    """The policy digest ``entry`` is judged by: its own, else the batch's."""
    return entry.policy_digest if entry.policy_digest is not None else policy_digest
