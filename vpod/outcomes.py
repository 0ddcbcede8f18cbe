"""What can happen to a file: its :class:`Status` and the :class:`Reason` behind it.

Both enums are ``str``-valued (``class X(str, Enum)``, as Python 3.10 has no
``StrEnum``), and ``str()`` of a member is its value: logs, JSON, the database
(``files.state``, ``files.reason``) and metric labels show the same words as before,
byte for byte. docs/policy.md ("Reasons") documents every reason; a test checks that
each member is there, in the table of its :attr:`Reason.status`, and that no reason is
written as a string literal anywhere else in vpod.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """How one file's processing ended (``files.state`` of a finished file).

    ``done``: the file conforms now (changed or already conforming). ``failed``: vpod
    could not make it conform. ``skipped``: vpod left it alone on purpose.
    """

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


class Retry(Enum):
    """When a file that ended with a reason is looked at again, as docs/policy.md says.

    For skips: ``CONTENT`` (when its content changes, or ``vpod retry``) or
    ``NEXT_EVENT`` (at its next event, whatever the content). For failures: ``NO``
    (when its content changes, or ``vpod retry``), ``YES`` (up to ``[processing]
    max_attempts`` with backoff), ``ONCE`` (one more try, then for good: a time limit),
    ``WAITS`` (the daemon tries again with backoff for as long as it takes, not
    counted), ``NEXT_START`` (at the daemon's next start, or ``vpod retry``).

    For failures this is the usual case, not an invariant: the producer says whether
    one failure is permanent (``MediaError.permanent``), e.g. a tool's failure is
    permanent, but the same ``tool_failed`` re-raised after an undo keeps the
    permanence of the original error.
    """

    CONTENT = "content"
    NEXT_EVENT = "next_event"
    NO = "no"
    YES = "yes"
    ONCE = "once"
    WAITS = "waits"
    NEXT_START = "next_start"


class Reason(str, Enum):
    """Why a file was skipped or failed: the short tag of logs, the database, ``vpod
    status``, ``vpod process --json`` and the ``reason`` label of metrics.

    Each member has ``status`` (the outcome it is documented under: ``skipped`` or
    ``failed``), ``retry`` (:class:`Retry`) and ``meaning`` (one line; docs/policy.md
    says more). A reason documented as a skip may still end a probe outside the
    pipeline as an error (``empty`` in ``vpod inspect``). The values are the words docs/policy.md documents.
    """

    _value_: str
    status: Status
    retry: Retry
    meaning: str

    def __new__(cls, value: str, status: Status, retry: Retry, meaning: str) -> Reason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.retry = retry
        member.meaning = meaning
        return member

    def __str__(self) -> str:
        return self._value_

    # -- skipped ------------------------------------------------------------------
    CONTAINER_NOT_SUPPORTED = (
        "container_not_supported", Status.SKIPPED, Retry.CONTENT,
        'a non-Matroska file needs changes and container = "keep"',
    )
    HARDLINKED = (
        "hardlinked", Status.SKIPPED, Retry.CONTENT,
        "a hard-linked file: left alone, or only the header part of its plan applied (hardlinks)",
    )
    OUTSIDE_ROOTS = "outside_roots", Status.SKIPPED, Retry.CONTENT, "a remux would write outside the watched folders"
    SOURCE_CHANGED = (
        "source_changed", Status.SKIPPED, Retry.NEXT_EVENT, "another program rewrote the file during the remux"
    )
    CANNOT_KEEP_OWNER = (
        "cannot_keep_owner", Status.SKIPPED, Retry.CONTENT, "a remux would lose the file's owner or group"
    )
    EMPTY = "empty", Status.SKIPPED, Retry.CONTENT, "a 0-byte file"
    VANISHED = "vanished", Status.SKIPPED, Retry.NEXT_EVENT, "the file was gone before or while it was processed"
    NOT_A_REGULAR_FILE = "not_a_regular_file", Status.SKIPPED, Retry.CONTENT, "a folder, FIFO or device"
    SYMLINK_INSIDE = (
        "symlink_inside", Status.SKIPPED, Retry.CONTENT, "a symlink to a file processed under its own name"
    )
    SYMLINK_OUTSIDE = (
        "symlink_outside", Status.SKIPPED, Retry.CONTENT, "a symlink leaving the watched folders, not followed"
    )
    DANGLING_SYMLINK = "dangling_symlink", Status.SKIPPED, Retry.CONTENT, "a symlink whose target is missing"
    SYMLINK_LOOP = "symlink_loop", Status.SKIPPED, Retry.CONTENT, "a symlink that loops"
    SYMLINK_RACE = "symlink_race", Status.SKIPPED, Retry.CONTENT, "the path became a symlink while vpod opened it"
    IN_PROGRESS_ELSEWHERE = (
        "in_progress_elsewhere", Status.SKIPPED, Retry.NEXT_EVENT, "vpod process: the daemon is working on it"
    )
    DRY_RUN = "dry_run", Status.SKIPPED, Retry.NEXT_EVENT, "--dry-run: the file would change"
    OUTSIDE_TRANSCODE_HOURS = (
        "outside_transcode_hours", Status.SKIPPED, Retry.NEXT_EVENT,
        "vpod process outside [processing] transcode_hours: the transcode did not start",
    )
    CLAIMED_ELSEWHERE = (
        "claimed_elsewhere", Status.SKIPPED, Retry.NEXT_EVENT, "the library of another running vpod"
    )
    NOT_SMALLER = (
        "not_smaller", Status.SKIPPED, Retry.CONTENT,
        "the video encode did not save min_saving_percent of the video (keep_if_larger): discarded, the rest of the "
        "plan applied",
    )
    HDR_NOT_KEPT = (
        "hdr_not_kept", Status.SKIPPED, Retry.CONTENT,
        "the planned encoder cannot keep the video's HDR metadata or bit depth (Dolby Vision, PQ into H.264): "
        "the video encode not run, the rest of the plan applied",
    )
    INTERLACED_NOT_KEPT = (
        "interlaced_not_kept", Status.SKIPPED, Retry.CONTENT,
        "the video is interlaced and an encode would make progressive frames of its fields: the video encode "
        "not run, the rest of the plan applied",
    )
    SEVERAL_VIDEO_TRACKS = (
        "several_video_tracks", Status.SKIPPED, Retry.CONTENT,
        "the plan would re-encode more than one video track (FFmpeg 5.1's Matroska muxer writes the second badly): "
        "the video encode not run, the rest of the plan applied",
    )

    # -- failed -------------------------------------------------------------------
    UNSUPPORTED_STREAM = (
        "unsupported_stream", Status.FAILED, Retry.NO, "a kept stream cannot be put into Matroska"
    )
    TARGET_EXISTS = "target_exists", Status.FAILED, Retry.NO, "NAME.mkv already exists beside NAME.mp4"
    VERIFY_FAILED = "verify_failed", Status.FAILED, Retry.NO, "the written file is not what was planned"
    INSUFFICIENT_SPACE = (
        "insufficient_space", Status.FAILED, Retry.WAITS, "the change does not fit in the free space"
    )
    DISK_FULL = "disk_full", Status.FAILED, Retry.YES, "no space left on the device while writing"
    ORIGINAL_LANGUAGE_UNAVAILABLE = (
        "original_language_unavailable", Status.FAILED, Retry.WAITS,
        'a Sonarr/Radarr instance with when_unavailable = "retry" did not answer',
    )
    TOOL_FAILED = "tool_failed", Status.FAILED, Retry.NO, "mkvmerge, ffmpeg or mkvpropedit failed"
    UNDO_FAILED = "undo_failed", Status.FAILED, Retry.NO, "a failed in-place edit could not be undone"
    KILLED = "killed", Status.FAILED, Retry.YES, "the tool was killed by a signal"
    PROBE_TIMEOUT = "probe_timeout", Status.FAILED, Retry.ONCE, "a probe ran past probe_timeout_seconds"
    TIMEOUT = "timeout", Status.FAILED, Retry.ONCE, "a remux or edit ran past its time limit"
    NOT_MEDIA = "not_media", Status.FAILED, Retry.NO, "the first bytes are no video container vpod knows"
    TRUNCATED = "truncated", Status.FAILED, Retry.NO, "not usable media: cut short"
    UNREADABLE = "unreadable", Status.FAILED, Retry.NO, "not usable media: the tools cannot read it"
    NO_TRACKS = "no_tracks", Status.FAILED, Retry.NO, "not usable media: no tracks"
    PERMISSION_DENIED = "permission_denied", Status.FAILED, Retry.NO, "vpod may not read the file"
    NOT_WRITABLE = "not_writable", Status.FAILED, Retry.YES, "vpod may read the file but not change it"
    LOCKED = "locked", Status.FAILED, Retry.YES, "another process writes the file, or another vpod holds its lock"
    OS_ERROR = "os_error", Status.FAILED, Retry.YES, "another error of the operating system"
    TOOL_MISSING = "tool_missing", Status.FAILED, Retry.YES, "a tool is no longer on PATH"
    DATABASE_BUSY = "database_busy", Status.FAILED, Retry.YES, "the database was locked"
    DATABASE_ERROR = "database_error", Status.FAILED, Retry.YES, "the database failed (vpod process)"
    INTERNAL_ERROR = "internal_error", Status.FAILED, Retry.NEXT_START, "a bug in vpod"
    INTERRUPTED = (
        "interrupted", Status.FAILED, Retry.NEXT_START, "the process working on the file ended before it finished"
    )
    ERROR = "error", Status.FAILED, Retry.NO, "a media error with no more specific reason"
    READ_ONLY_FILESYSTEM = (
        "read_only_filesystem", Status.FAILED, Retry.YES, "the file or its folder is on a read-only mount"
    )
    SYSTEMD_SANDBOX = (
        "systemd_sandbox", Status.FAILED, Retry.YES, "outside the systemd unit's ReadWritePaths="
    )
    IMMUTABLE = "immutable", Status.FAILED, Retry.YES, "the immutable or append-only attribute"
    ATTRIBUTES_NOT_KEPT = (
        "attributes_not_kept", Status.FAILED, Retry.NO, "the copy could not get the original's xattrs or ACL"
    )
    BAD_FOLDER_POLICY = (
        "bad_folder_policy", Status.FAILED, Retry.NO, "the folder's .vpod.toml cannot be read or holds a bad key"
    )


VIDEO_DECLINED = frozenset(
    {Reason.NOT_SMALLER, Reason.HDR_NOT_KEPT, Reason.INTERLACED_NOT_KEPT, Reason.SEVERAL_VIDEO_TRACKS}
)
"""The skips of a file whose video transcode vpod declined while applying the rest of its
plan (:meth:`vpod.pipeline.FileProcessor._video_declined`): the encode was not smaller,
or it could not keep the picture (HDR, bit depth, interlacing, more than one video track
to encode). Permanent: the content
vpod left is handled under the policy that judged it."""


class Unwatched(str, Enum):
    """Why a configured watch folder is not watched now (``/health`` ``unwatched``, the
    ``daemon`` table, ``vpod status``): not a file's outcome, so not a :class:`Reason`.

    Each member has ``heading``: its line in ``vpod status``. docs/policy.md ("Reasons",
    "Not watched") documents each; a test checks that they agree.
    """

    _value_: str
    heading: str

    def __new__(cls, value: str, heading: str) -> Unwatched:
        member = str.__new__(cls, value)
        member._value_ = value
        member.heading = heading
        return member

    def __str__(self) -> str:
        return self._value_

    MISSING = "missing", "missing, deleted or moved away; watched again once the folder is there"
    OVERLAPS = "overlaps", "it reaches the files of another watch folder now; watched again once it does not"
    CLAIMED_ELSEWHERE = (
        Reason.CLAIMED_ELSEWHERE.value, "the library of another vpod; watched again once that vpod stops"
    )
