"""What ``vpod plan`` learns from the database about a file vpod kept as ``not_smaller``.

Under ``keep_if_larger`` a video encode that was not smaller is thrown away, the rest of
the plan applied, and the file skipped as ``not_smaller``, permanent
(:meth:`vpod.pipeline.FileProcessor._video_declined`). The content vpod left is then handled
under the policy that judged it: the daemon does not queue it again (its content equals
the row's ``result_fingerprint``: :func:`vpod.db.enqueue_rules.decide`, ``UNCHANGED``) and
``vpod process`` skips it without a tool (:func:`vpod.unchanged.left_conforming`), though
its plan still holds the video transcode. :func:`recorded_not_smaller` finds such a
record for ``vpod plan``, which otherwise reads no database: the same row, the same
policy digest, the same content.

It only reads: an existing store is opened (a SQLite file missing means nothing
recorded, and none is made), one row is read, and the store is closed. Run as root on a
SQLite file another user owns (the daemon's), the store is opened with that user's
effective ids, as ``vpod status`` opens it (:func:`vpod.control.open_existing_store`), so
SQLite's side files (``-wal``, ``-shm``) stay the daemon's; unlike ``vpod status``, root
is taken back afterwards: the plan goes on reading the library as root.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple

from vpod.outcomes import Reason

if TYPE_CHECKING:
    from vpod.config import DatabaseConfig, VPOConfig

TRY_AGAIN = (
    "the policy that judges it changes (its digest: e.g. video_codec, min_saving_percent, keep_if_larger)",
    "its content changes",
    "vpod retry PATH, or vpod process --force PATH",
)
"""What makes vpod encode such a file's video again (docs/policy.md "keep_if_larger and
min_saving_percent"; README ``not_smaller_requeued``; ``vpod retry`` queues a skipped file
again with fresh attempts; ``--force`` looks at every file named)."""

_SHORTFALL = (
    r"the (?:video encode|transcode) (?:saved only (?P<saved>[0-9.]+) %|made the (?:video|file) (?P<larger>[0-9.]+) % larger)"
    r"(?: \([^)]*\))?"
)
"""The pattern of the saving in the message :func:`vpod.media.video_saving.saving_shortfall`
wrote (``the video encode made the video 107.4 % larger (1.1 MiB -> 2.3 MiB of video)``),
and in the whole-file wording of the first transcoding release (``the transcode saved only
4.0 % (...)``)."""


class NotSmaller(NamedTuple):
    """A ``not_smaller`` record that holds for the file as it is now (a NamedTuple: this
    module is imported by every ``vpod plan``, see :mod:`vpod.db.records`).

    Attributes:
        detail: how the discarded encode compared, as recorded (e.g. ``the video encode
            saved only 3.1 % (5.0 GiB -> 4.8 GiB of video)``); the whole recorded message
            when it has no such part, ``None`` when none was recorded.
        saved_percent: the saving in percent of the source's video (of the whole file in
            records of the first transcoding release; negative: the encode was that much
            larger); ``None`` when the message does not say.
        policy: the name of the policy that judged it (``None``: not recorded).
    """

    detail: str | None
    saved_percent: float | None
    policy: str | None

    @classmethod
    def from_message(cls, message: str | None, policy: str | None) -> "NotSmaller":
        """Build from the row's recorded error ``message`` (the :class:`~vpod.safety.Skip`
        text, ``PATH: SHORTFALL; the transcode was discarded ...``)."""
        found = re.search(_SHORTFALL, message or "")  # compiled only when a record is found
        if found is None:
            return cls(message, None, policy)
        saved = found.group("saved")
        percent = float(saved) if saved is not None else -float(found.group("larger"))
        return cls(found.group(0), percent, policy)

    def describe(self) -> str:
        """What vpod recorded, for people (one line)."""
        how = f": {self.detail}" if self.detail else ""
        under = f" under this policy ({self.policy})" if self.policy else " under this policy"
        return f"an earlier encode of this content{under} was not smaller (keep_if_larger){how}"

    @staticmethod
    def try_again() -> str:
        """What makes vpod encode the video again, for people (one line: :data:`TRY_AGAIN`)."""
        return f"vpod tries again when {TRY_AGAIN[0]}, when {TRY_AGAIN[1]}, or after {TRY_AGAIN[2]}"

    def as_dict(self) -> dict[str, Any]:
        """The ``not_smaller`` member of ``vpod plan --json``: ``detail``,
        ``saved_percent``, ``policy`` and ``try_again`` (a list of sentences)."""
        return {
            "detail": self.detail, "saved_percent": self.saved_percent, "policy": self.policy,
            "try_again": list(TRY_AGAIN),
        }


class Lookup(NamedTuple):
    """:func:`recorded_not_smaller`'s answer: ``found`` (``None``: no such record holds)
    and ``problem``, one line saying why the database could not be read (``None``: it
    was read, or there is none)."""

    found: NotSmaller | None
    problem: str | None = None


def recorded_not_smaller(config: VPOConfig, path: Path, policy_digest: str) -> Lookup:
    """Whether the configured database holds a ``not_smaller`` outcome for the file at
    ``path`` (absolute) that holds now: its row is skipped with reason ``not_smaller``,
    judged under ``policy_digest`` (:attr:`vpod.policy.policy.Policy.digest` of the policy
    in force for it), and the file's content (:func:`vpod.fingerprint.fingerprint_path`,
    at most 3 MiB read) is the content vpod left (``result_fingerprint``): the rule the
    daemon's queue applies (:func:`vpod.db.enqueue_rules.decide`).

    Reads only. With no database (SQLite: no file at ``[database] path``) nothing is
    opened or created. A path through another name of a library folder (a bind mount, a
    symlink) is looked up as that library's file (:mod:`vpod.library_paths`).

    Never raises for the database: a store that cannot be opened or read (or a file that
    cannot be read) is ``Lookup(None, problem)``.
    """
    database = config.database
    if not database.url and not os.path.exists(database.path):
        return Lookup(None)
    from vpod.fingerprint import fingerprint_path

    try:
        fingerprint, _stat = fingerprint_path(path)  # before the store: its opening may drop root
    except OSError as exc:
        return Lookup(None, f"cannot read {path} to compare it with the database: {exc.strerror or exc}")
    # Imported here: a plan without a video transcode never loads the store.
    from vpod.db.factory import open_store
    from vpod.errors import StoreError
    from vpod.library_paths import store_library_paths

    try:
        with _as_database_owner(database):
            store = open_store(database, node=config.node.node_name)
            try:
                located = store_library_paths(store).locate(path)
                record = store.file_record(located[1] if located is not None else path)
            finally:
                store.close()
    except StoreError as exc:
        return Lookup(None, f"cannot read the database: {exc}")
    except OSError as exc:
        return Lookup(None, f"cannot read the database {database.path}: {exc.strerror or exc}")
    if (
        record is None
        or record.state != "skipped"
        or record.reason != Reason.NOT_SMALLER
        or record.policy_digest != policy_digest
        or record.result_fingerprint != fingerprint
    ):
        return Lookup(None)
    return Lookup(NotSmaller.from_message(record.error, record.policy_name))


@contextmanager
def _as_database_owner(database: DatabaseConfig) -> Iterator[None]:
    """Run the ``with`` block with the effective uid and gid (and no supplementary
    groups) of the SQLite file's owner when this process is root and the file is another
    user's (seteuid(2), setegid(2): the real and saved ids stay root's, so root is taken
    back after the block); otherwise as it is. A PostgreSQL database is no file here.

    Raises:
        OSError: the file cannot be stat'ed.
    """
    if database.url or os.geteuid() != 0:
        yield
        return
    owner = os.stat(database.path)
    if owner.st_uid == 0:
        yield
        return
    gid, groups = os.getegid(), os.getgroups()
    os.setgroups([])
    os.setegid(owner.st_gid)
    os.seteuid(owner.st_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(gid)
        os.setgroups(groups)
