"""Outcomes: one file's :class:`FileProcessingResult`, one batch's :class:`BatchResult`."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple, overload

from vpod.outcomes import Reason, Status

_SURROGATE = re.compile("[\ud800-\udfff]")


def display_path(path: Path | str) -> str:
    """A path as text for logs and JSON: undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def one_line(text: str | None) -> str:
    """``text`` for one line of terminal output: control characters (a newline in a file
    name) shown as Python escapes such as ``\\n``; ``None`` as ``""``."""
    if not text:
        return ""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text)


def as_lines(text: str | None, indent: str) -> str:
    """``text`` (a tool's multi-line error) for a terminal, one output line per line of
    text: continuation lines start with ``indent``, blank lines are left out, and other
    control characters are escaped as in :func:`one_line`. ``None`` gives ``""``."""
    lines = [one_line(line) for line in (text or "").splitlines() if line.strip()]
    return ("\n" + indent).join(lines)


@overload
def utf8_text(text: str) -> str: ...


@overload
def utf8_text(text: None) -> None: ...


def utf8_text(text: str | None) -> str | None:
    """``text`` made encodable as UTF-8, for SQLite TEXT columns and JSON; ``None`` stays.

    Messages name files, and a non-UTF-8 file name reaches Python as lone surrogates
    (``os.fsdecode``'s ``surrogateescape``), which UTF-8 cannot encode: SQLite refuses
    such a string with ``UnicodeEncodeError``. Each ``\\udc80``-``\\udcff`` becomes
    ``\\xNN`` (the byte it stands for, as :func:`display_path` shows it), any other lone
    surrogate ``\\uXXXX``. Text that is valid already is returned unchanged.
    """
    if text is None or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


class FileProcessingResult(NamedTuple):
    """What happened to one file.

    Attributes:
        path: the file as it was queued.
        success: True when the file conforms now (changed or already conforming).
        changes: number of plan actions applied (0 when it already conformed).
        duration_seconds: wall time spent on this file.
        error: why it failed or was skipped, with the tool's message; ``None`` on success.
        skipped: True when vpod chose not to process it (``reason`` says why).
        reason: why it was skipped or failed (:class:`vpod.outcomes.Reason`); ``None`` on
            success.
        actions: human descriptions of the actions taken (or planned, in a dry run).
        final_path: where the file is now (differs after a container change).
        permanent: for failures, True when retrying the same bytes cannot help.
        retrying: a transient failure that went back to the queue (backoff); the file
            is not finished, so batches do not count it.
        policy / policy_why: the name of the policy that judged the file and why it was
            chosen (:class:`vpod.policy.selection.Selection`); ``None`` when it was not
            judged (its folder policy file is bad).
        unchanged: ``vpod process`` left it alone, without running any tool: its stat
            proves it untouched since vpod left it conforming under the policy now in
            force (:mod:`vpod.unchanged`); ``success`` is True, ``changes`` 0 (or, for
            a file vpod kept as ``not_smaller``, skipped again with that reason).
    """

    path: Path
    success: bool
    changes: int = 0
    duration_seconds: float = 0.0
    error: str | None = None
    skipped: bool = False
    reason: Reason | None = None
    actions: tuple[str, ...] = ()
    final_path: Path | None = None
    permanent: bool = True
    retrying: bool = False
    started_at: float = 0.0
    ended_at: float = 0.0
    worker: str | None = None
    policy: str | None = None
    policy_why: str | None = None
    unchanged: bool = False

    @property
    def status(self) -> Status:
        """``done``, ``skipped`` or ``failed`` (:class:`vpod.outcomes.Status`)."""
        if self.success:
            return Status.DONE
        return Status.SKIPPED if self.skipped else Status.FAILED

    @property
    def failed(self) -> bool:
        """True for a real failure (not a skip)."""
        return self.status is Status.FAILED

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (texts valid UTF-8, see :func:`utf8_text`)."""
        return {
            "path": display_path(self.path),
            "success": self.success,
            "skipped": self.skipped,
            "changes": self.changes,
            "duration_seconds": round(self.duration_seconds, 6),
            "error": utf8_text(self.error),
            "reason": utf8_text(self.reason),
            "retrying": self.retrying,
            "actions": [utf8_text(a) for a in self.actions],
            "final_path": display_path(self.final_path) if self.final_path else None,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "worker": self.worker,
            "policy": utf8_text(self.policy),
            "policy_why": utf8_text(self.policy_why),
            "unchanged": self.unchanged,
        }


class BatchResult:
    """Outcome of one batch window (daemon) or one ``vpod process`` run.

    Attributes:
        total_files: files in the batch (for ``vpod process``: all files named, including
            those never started because the batch stopped early).
        success_count / fail_count / skipped_count: outcomes among ``results``.
        unchanged_count: files among ``results`` that ``vpod process`` left alone
            without running any tool (:attr:`FileProcessingResult.unchanged`).
        results: one entry per file processed, in completion order (files left alone as
            unchanged first).
        total_duration_seconds: wall time from the first start to the end of the batch.
        stopped_early: True when ``on_error = "fail"`` stopped the batch.
    """

    __slots__ = ("batch_id", "started_at", "ended_at", "total_files", "results", "total_duration_seconds",
                 "stopped_early")

    def __init__(
        self, batch_id: str, started_at: float, ended_at: float = 0.0, total_files: int = 0,
        results: list[FileProcessingResult] | None = None, total_duration_seconds: float = 0.0,
        stopped_early: bool = False,
    ) -> None:
        self.batch_id = batch_id
        self.started_at = started_at
        self.ended_at = ended_at
        self.total_files = total_files
        self.results: list[FileProcessingResult] = [] if results is None else results
        self.total_duration_seconds = total_duration_seconds
        self.stopped_early = stopped_early

    @property
    def success_count(self) -> int:
        """Files that conform now (changed, found conforming, or unchanged since vpod left
        them conforming)."""
        return sum(1 for r in self.results if r.status is Status.DONE)

    @property
    def unchanged_count(self) -> int:
        """Files left alone because their stat proves them unchanged since vpod left them
        conforming under the policy now in force (no tool ran for them)."""
        return sum(1 for r in self.results if r.unchanged)

    @property
    def fail_count(self) -> int:
        """Files that failed (not skips)."""
        return sum(1 for r in self.results if r.status is Status.FAILED)

    @property
    def skipped_count(self) -> int:
        """Files vpod chose not to process (vanished, dry run, hard-linked, ...)."""
        return sum(1 for r in self.results if r.status is Status.SKIPPED)

    def counts(self) -> dict[str, Any]:
        """The summary fields, as logged in ``batch_completed`` (one pass over ``results``:
        a re-run of ``vpod process`` has one per file of the library)."""
        by_status = Counter(r.status for r in self.results)
        return {
            "batch_id": self.batch_id,
            "total_files": self.total_files,
            "success_count": by_status[Status.DONE],
            "fail_count": by_status[Status.FAILED],
            "skipped_count": by_status[Status.SKIPPED],
            "unchanged_count": self.unchanged_count,
            "total_duration_seconds": round(self.total_duration_seconds, 6),
            "stopped_early": self.stopped_early,
        }

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-friendly (``vpod process --json``)."""
        return {
            **self.counts(),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "results": [r.as_dict() for r in self.results],
        }
