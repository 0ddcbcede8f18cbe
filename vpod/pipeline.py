"""The per-file pipeline shared by ``vpod run`` and ``vpod process``.

lock → fingerprint → probe → plan → apply → verify → fingerprint again. The source is
changed only by ``mkvpropedit`` (headers, in place) or replaced atomically by a
verified remux; every failure leaves it as it was.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vpod.errors import MediaError
from vpod.fingerprint import StatKey, fingerprint_fd, fingerprint_path
from vpod.media.edit import edit_in_place
from vpod.media.model import MediaInfo
from vpod.media.probe import probe
from vpod.media.tools import ToolRunner
from vpod.policy.plan import Plan
from vpod.policy.planner import plan as make_plan
from vpod.policy.policy import Policy
from vpod.results import FileProcessingResult
from vpod.safety import Skip, open_for_processing
from vpod.tempfiles import TempRegistry


@dataclass(frozen=True)
class PipelineOptions:
    """How the pipeline treats files.

    Attributes:
        roots: folders vpod may write in (watch roots, or what ``vpod process`` was given).
        follow_symlinks: process symlinks pointing outside ``roots``.
        dry_run: plan only; never write a media file.
        wait_for_lock: wait for another process's lock instead of failing with ``locked``.
    """

    roots: tuple[Path, ...]
    follow_symlinks: bool = False
    dry_run: bool = False
    wait_for_lock: bool = False


@dataclass(frozen=True)
class PipelineOutput:
    """A result plus what the Store needs to recognize the file later."""

    result: FileProcessingResult
    fingerprint_before: str | None = None
    fingerprint_after: str | None = None
    stat_after: StatKey | None = None
    media_after: MediaInfo | None = None


class FileProcessor:
    """Runs the pipeline on one file at a time; share one instance between threads.

    Args:
        runner: runs the external tools (its timeout applies to each run).
        options: see :class:`PipelineOptions`.
        temps: records temp files (the Store), so a crash cannot leave one behind.
    """

    def __init__(self, runner: ToolRunner, options: PipelineOptions, temps: TempRegistry) -> None:
        self.runner = runner
        self.options = options
        self.temps = temps

    def process(
        self, path: Path, policy: Policy, before_apply: Callable[[Plan], None] | None = None
    ) -> PipelineOutput:
        """Make ``path`` conform to ``policy``. Never raises for a bad file: the
        returned result says what happened (``success``, ``skipped`` with ``reason``,
        or ``error`` with the tool's message).

        ``before_apply(plan)`` runs after planning and before the file is touched.

        Raises:
            vpod.db.pool.DatabaseBusy / DatabaseError: only from ``before_apply``.
        """
        started = time.time()
        clock = time.monotonic()

        def finish(**fields: object) -> FileProcessingResult:
            return FileProcessingResult(
                path=path,
                duration_seconds=time.monotonic() - clock,
                started_at=started,
                ended_at=time.time(),
                **fields,  # type: ignore[arg-type]
            )

        fingerprint_before = None
        try:
            with open_for_processing(
                path,
                self.options.roots,
                follow_symlinks=self.options.follow_symlinks,
                wait=self.options.wait_for_lock,
            ) as locked:
                fingerprint_before = fingerprint_fd(locked.fd, locked.stat.st_size)
                media = probe(locked.path, self.runner)
                plan = make_plan(policy, media)
                if plan.is_empty:
                    return PipelineOutput(
                        finish(success=True, final_path=locked.path),
                        fingerprint_before,
                        fingerprint_before,
                        StatKey.of(locked.stat),
                        media,
                    )
                if self.options.dry_run:
                    return PipelineOutput(
                        finish(
                            success=False,
                            skipped=True,
                            reason="dry_run",
                            actions=plan.describe(),
                            permanent=False,
                        ),
                        fingerprint_before,
                    )
                if before_apply is not None:
                    before_apply(plan)
                final_path, media_after = self._apply(media, plan, policy, locked.stat)
                fingerprint_after, stat_after = fingerprint_path(final_path)
                return PipelineOutput(
                    finish(
                        success=True,
                        changes=len(plan.actions),
                        actions=plan.describe(),
                        final_path=final_path,
                    ),
                    fingerprint_before,
                    fingerprint_after,
                    stat_after,
                    media_after,
                )
        except Skip as exc:
            return PipelineOutput(
                finish(success=False, skipped=True, reason=exc.reason, error=str(exc), permanent=exc.permanent),
                fingerprint_before,
            )
        except MediaError as exc:
            return PipelineOutput(
                finish(success=False, reason=exc.reason, error=str(exc), permanent=exc.permanent),
                fingerprint_before,
            )
        except OSError as exc:
            message = f"{path}: {exc.strerror or exc}"
            return PipelineOutput(
                finish(success=False, reason="os_error", error=message, permanent=False), fingerprint_before
            )

    def _apply(self, media: MediaInfo, plan: Plan, policy: Policy, st: os.stat_result) -> tuple[Path, MediaInfo]:
        """Apply ``plan`` and verify the result; returns (final path, probe of it).

        Raises:
            Skip: the container cannot be edited in place and remuxing is not allowed.
            MediaError: a tool failed or the result does not conform (the source is
                untouched unless an in-place header edit had already succeeded).
        """
        if plan.needs_remux or not media.is_matroska:
            raise Skip(
                f"{media.path}: {media.container} files need a remux, which this vpod cannot do yet",
                "container_not_supported",
            )
        final_path = edit_in_place(media, plan, self.runner)
        return final_path, self._verify(final_path, media, policy)

    def _verify(self, path: Path, before: MediaInfo, policy: Policy) -> MediaInfo:
        """Probe the written file: same track count and types, and nothing left to do.

        Raises:
            MediaError: reason ``verify_failed`` with what differs.
        """
        after = probe(path, self.runner)
        if [t.type for t in after.tracks] != [t.type for t in before.tracks]:
            raise MediaError(f"{path}: verification failed: tracks changed unexpectedly", reason="verify_failed")
        leftover = make_plan(policy, after)
        if not leftover.is_empty:
            raise MediaError(
                f"{path}: verification failed: still to do after applying: {'; '.join(leftover.describe())}",
                reason="verify_failed",
            )
        return after
