"""The per-file pipeline shared by ``vpod run`` and ``vpod process``.

lock → fingerprint → probe → plan → apply → verify → fingerprint again. The source is
changed only by ``mkvpropedit`` (headers, in place) or replaced atomically by a
verified remux; every failure leaves it as it was.

Apply, by plan:

* header-only actions on a Matroska file: ``mkvpropedit`` in place (the inode, and so
  every hard link, stays), then verify; a failed edit or verification is undone byte
  for byte (:mod:`vpod.media.edit`);
* anything structural (removal, reorder, container), or a header change the file's
  container cannot take in place: one remux into a temp file beside the source
  (:mod:`vpod.media.remux`), verify it (:mod:`vpod.media.verify`), then put it in place
  (:mod:`vpod.media.replace`);
* a plan that encodes (:attr:`Plan.transcodes`): the same, with one ffmpeg run that
  writes the whole plan (:mod:`vpod.media.transcode`) instead of the remux. Under
  ``keep_if_larger`` (the default) a verified result whose re-encoded video is not
  ``min_saving_percent`` smaller than the source's video (the bytes of those tracks'
  packets in each file, :mod:`vpod.media.video_saving`: the audio, copied or added,
  counts for nothing) is discarded; the rest of the plan (less its video transcode:
  audio encodes included) is applied and the file is skipped as ``not_smaller``
  (:meth:`FileProcessor._video_declined`). So is a video transcode that could not keep
  the picture, found before any encode: HDR (``hdr_not_kept``) or an interlaced source
  (``interlaced_not_kept``), :func:`vpod.media.transcode.check_picture_kept`.

A file with several hard links (``st_nlink > 1``) gets what ``[policy] hardlinks``
allows: ``"skip"`` nothing (an in-place edit changes the bytes a torrent client seeds);
``"headers"`` only the header part of its plan, in place (:func:`header_part`), the
rest skipped as ``hardlinked``; ``"break"`` everything (a remux splits it from its
other links).

Nothing starts that would not fit in the free space with a margin
(:mod:`vpod.diskspace`): the file then fails with reason ``insufficient_space``, not
permanent (the daemon lets it wait; see :class:`vpod.jobs.JobRunner`).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

import structlog

from vpod.arr_config import ArrConfig
from vpod.diskspace import WRITE_MARGIN_BYTES, SpaceLedger, format_bytes, remux_need
from vpod.errors import MediaError
from vpod.fingerprint import StatKey, fingerprint_fd, fingerprint_path
from vpod.media.attributes import check_owner_can_be_kept, read_attributes
from vpod.media.edit import edit_in_place
from vpod.media.encoders import TranscodeSettings
from vpod.media.model import MediaInfo
from vpod.media.probe import probe
from vpod.media.remux import Remuxer, unsupported_stream_error
from vpod.media.replace import backup_path, keep_backup, put_in_place
from vpod.media.tool_progress import ProgressSink
from vpod.media.tools import ToolRunner
from vpod.media.transcode import Transcoder
from vpod.media.verify import verify_written, without_video_transcodes
from vpod.media.video_saving import is_judged, measure_video, saving_shortfall
from vpod.original.resolver import OriginalResolver
from vpod.outcomes import VIDEO_DECLINED, Reason
from vpod.policy.original import OriginalLanguage
from vpod.policy.plan import AddAudio, ChangeContainer, ConvertAudio, Plan
from vpod.policy.planner import plan as make_plan
from vpod.policy.policy import Policy
from vpod.policy.transcode_keys import default_bitrate_kbps
from vpod.results import FileProcessingResult, display_path
from vpod.safety import LockedFile, Skip, is_under, open_for_processing
from vpod.tempfiles import TempRegistry, temp_beside
from vpod.watch.writers import has_writer
from vpod.writability import DAEMON_AGAIN, refusal_for_error, why_not_writable


class PipelineOptions(NamedTuple):
    """How the pipeline treats files.

    Attributes:
        roots: folders vpod may write in (watch roots, or what ``vpod process`` was given).
        follow_symlinks: process symlinks pointing outside ``roots``.
        dry_run: plan only; never write a media file. A plan the run could not apply
            (:func:`obstacle`) is reported as the run would report it.
        wait_for_lock: wait for another process's lock instead of failing with ``locked``.
        refusal: says why a file must be left alone because it lies in the library of a
            vpod with another database (:mod:`vpod.watch.ownership`), or ``None``; such
            a file is skipped (``claimed_elsewhere``) before it is opened.
        confirm_lease: the compare-and-set of the file's claim
            (:meth:`vpod.leases.LeaseKeeper.confirm`), called with the file's path just
            before it is replaced or edited in place; it raises
            :class:`~vpod.errors.LeaseLost` to discard the result (nothing is replaced,
            the temp file is removed; the error propagates out of :meth:`FileProcessor.process`).
        try_again: how a refused write's message says to try the file again once its
            cause is fixed (:data:`vpod.writability.DAEMON_AGAIN`, ``vpod retry PATH``;
            ``vpod process`` passes :data:`~vpod.writability.PROCESS_AGAIN`).
        claimed_lock_wait: how long (seconds) the file's ``flock`` held by another
            process is waited for when this thread holds a live claim on it
            (:meth:`vpod.leases.LeaseKeeper.lock_wait_seconds`; ``None``: no claim, the
            lock decides as before); then the file is processed without the lock
            (``lock_held_elsewhere`` is logged): :func:`vpod.safety.open_for_processing`.
    """

    roots: tuple[Path, ...]
    follow_symlinks: bool = False
    dry_run: bool = False
    wait_for_lock: bool = False
    refusal: Callable[[Path], str | None] | None = None
    confirm_lease: Callable[[Path], None] | None = None
    claimed_lock_wait: Callable[[], float | None] | None = None
    try_again: str = DAEMON_AGAIN


class PipelineOutput(NamedTuple):
    """A result plus what the Store needs to recognize the file later."""

    result: FileProcessingResult
    fingerprint_before: str | None = None
    fingerprint_after: str | None = None
    stat_after: StatKey | None = None
    media_after: MediaInfo | None = None


def needs_remux(media: MediaInfo, plan: Plan) -> bool:
    """True when ``plan`` needs a new file: a structural action, or any change to a file
    that ``mkvpropedit`` cannot edit in place (not Matroska)."""
    return not plan.is_empty and (plan.needs_remux or not media.is_matroska)


def skip_reason(media: MediaInfo, plan: Plan, policy: Policy, st: os.stat_result) -> Skip | None:
    """Why the pipeline would not apply (all of) ``plan`` to this file, or ``None``.

    ``container_not_supported``: a non-Matroska file needs changes but ``container =
    "keep"``. ``hardlinked``: a file with ``st.st_nlink > 1`` under ``hardlinks =
    "skip"``, or one whose plan needs a remux (which would split it from its other
    links) under ``"headers"``: there, :func:`header_part` is still applied.
    """
    if plan.is_empty:
        return None
    if not media.is_matroska and policy.container == "keep":
        if plan.transcodes:  # an encode writes Matroska, which "keep" does not allow
            return Skip(
                f"{media.path}: its plan transcodes, and an encode writes Matroska, which [policy] container = "
                f'"keep" does not allow for this {media.path.suffix.lstrip(".").upper() or media.container} file; '
                f'set container = "mkv" to let vpod transcode it into {media.path.with_suffix(".mkv").name}',
                Reason.CONTAINER_NOT_SUPPORTED,
            )
        return Skip(
            f"{media.path}: {media.container} files cannot be edited in place; set "
            f'[policy] container = "mkv" to let vpod remux them into MKV',
            Reason.CONTAINER_NOT_SUPPORTED,
        )
    if st.st_nlink > 1 and policy.hardlinks == "skip":
        return Skip(
            f'{media.path}: has {st.st_nlink} hard links and [policy] hardlinks = "skip" leaves such files alone '
            f'("headers" applies the header changes in place, "break" remuxes too)',
            Reason.HARDLINKED,
        )
    if needs_remux(media, plan) and st.st_nlink > 1 and not policy.break_hardlinks:
        rewrite = "transcode" if plan.cost == "transcode" else "remux"  # how the new file would be made
        return Skip(
            f"{media.path}: has {st.st_nlink} hard links and this plan needs a {rewrite}, which would split it "
            f'from its other links; [policy] hardlinks = "headers" applies only its header part in place '
            f'("break" allows the {rewrite})',
            Reason.HARDLINKED,
        )
    return None


def header_part(
    media: MediaInfo, plan: Plan, policy: Policy, st: os.stat_result, original: OriginalLanguage | None = None
) -> Plan:
    """What the run applies in place to a hard-linked file whose ``plan`` it skips
    (:func:`skip_reason`: ``hardlinked``) under ``hardlinks = "headers"``: the policy's
    header-only plan (flags, languages, titles, as if it removed, reordered and
    converted nothing: :func:`vpod.policy.planner.plan` with ``header_only``), for a
    Matroska file. An empty plan otherwise (``"skip"``, ``"break"``, a file with one
    link, a non-Matroska file, which cannot be edited in place). ``original``: as for
    the plan.
    """
    if policy.hardlinks != "headers" or st.st_nlink < 2 or not media.is_matroska or not needs_remux(media, plan):
        return Plan()
    return make_plan(policy, media, original, header_only=True)


def obstacle(media: MediaInfo, plan: Plan, policy: Policy, st: os.stat_result) -> MediaError | None:
    """What stops the pipeline from applying ``plan``, known before anything is written,
    or ``None``. ``vpod plan``, ``--dry-run`` and the run all ask this one function.

    Returns:
        The :class:`Skip` of :func:`skip_reason` (the file is skipped), else, for a plan
        that needs a remux, the ``unsupported_stream`` error of
        :func:`vpod.media.remux.unsupported_stream_error` or the ``target_exists`` error
        of :func:`target_exists_error` (the file fails), else ``None``.
    """
    skip = skip_reason(media, plan, policy, st)
    if skip is not None:
        return skip
    if not needs_remux(media, plan):
        return None
    return unsupported_stream_error(media, plan) or target_exists_error(media, plan)


def new_file_name(media: MediaInfo, plan: Plan) -> Path:
    """The name the file written for ``plan`` (one that needs a remux) takes: the
    source's name with ``.mkv`` for a container change, or for a transcode of a file not
    named ``.mkv`` (an encode always writes Matroska; a .webm cannot hold HEVC or AAC);
    else the source's own name."""
    source = media.path
    changes_container = any(isinstance(a, ChangeContainer) for a in plan.actions)
    to_mkv = changes_container or (plan.transcodes and source.suffix.lower() != ".mkv")
    return source.with_suffix(".mkv") if to_mkv else source


def target_exists_error(media: MediaInfo, plan: Plan) -> MediaError | None:
    """The ``target_exists`` error when the file ``plan`` writes takes a new name
    (:func:`new_file_name`) that another file (or symlink) already has: vpod never
    overwrites it; ``None`` otherwise. Known before anything is written."""
    source, target = media.path, new_file_name(media, plan)
    if target == source or not os.path.lexists(target):
        return None
    return MediaError(
        f"{source}: cannot {'transcode' if plan.transcodes else 'remux'} into {target.name}: "
        "a file with that name already exists",
        reason=Reason.TARGET_EXISTS,
    )


class FileProcessor:
    """Runs the pipeline on one file at a time; share one instance between threads.

    Args:
        runner: runs the external tools (its timeout applies to each run).
        options: see :class:`PipelineOptions`.
        temps: records temp files (the Store), so a crash cannot leave one behind.
        original: finds each file's original language (``[arr]`` instances, FlagOriginal,
            the policy); ``None``: no instance, the file's flags and the policy only.
        transcoding: how encoders run (``[processing]`` nice, ionice, VAAPI device);
            ``None``: the defaults. A reload passes new ones to ``transcoder.reconfigure``.
    """

    def __init__(
        self, runner: ToolRunner, options: PipelineOptions, temps: TempRegistry, original: OriginalResolver | None = None,
        transcoding: TranscodeSettings | None = None,
    ) -> None:
        self.runner = runner
        self.options = options
        self.temps = temps
        self.original = original or OriginalResolver(ArrConfig())
        self.remuxer = Remuxer(runner, temps)
        self.transcoder = Transcoder(runner, temps, transcoding or TranscodeSettings(), self.remuxer)
        self.space = SpaceLedger()
        self.log = structlog.get_logger("vpod")

    def process(
        self,
        path: Path,
        policy: Policy,
        before_apply: Callable[[Plan], None] | None = None,
        on_progress: ProgressSink | None = None,
    ) -> PipelineOutput:
        """Make ``path`` conform to ``policy``. Never raises for a bad file: the
        returned result says what happened (``success``, ``skipped`` with ``reason``,
        or ``error`` with the tool's message).

        ``before_apply(plan)`` runs after planning and before the file is touched.
        ``on_progress(percent)`` follows a remux (:meth:`Remuxer.remux`), in this thread.

        Raises:
            vpod.db.store.StoreBusy / StoreError: only from ``before_apply``.
            vpod.errors.LeaseLost: from ``options.confirm_lease``: the claim on the file
                is gone; nothing was replaced or edited.
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
            refusal = self.options.refusal(path) if self.options.refusal else None
            if refusal:
                raise Skip(refusal, Reason.CLAIMED_ELSEWHERE)
            with open_for_processing(
                path,
                self.options.roots,
                follow_symlinks=self.options.follow_symlinks,
                wait=self.options.wait_for_lock,
                lock_wait_seconds=self.options.claimed_lock_wait() if self.options.claimed_lock_wait else None,
            ) as locked:
                if not locked.locked:
                    self.log.warning(
                        "lock_held_elsewhere", path=display_path(path),
                        hint="another process still holds the file's lock; this node's claim on it is live, so it "
                        "goes on (the holder's compare-and-set fails before it replaces anything)",
                    )
                fingerprint_before = fingerprint_fd(locked.fd, locked.stat.st_size)
                try:
                    return self._run_locked(locked, fingerprint_before, policy, before_apply, finish, on_progress)
                except (MediaError, OSError) as exc:
                    if isinstance(exc, Skip) or locked.still_current():
                        raise
                    # A tool failed because the file went away under it: that is not a
                    # broken file. Its new name or new content gets its own event.
                    raise Skip(f"{path}: vanished or replaced while being processed", Reason.VANISHED) from exc
        except Skip as exc:
            return PipelineOutput(
                finish(success=False, skipped=True, reason=exc.reason, error=str(exc), permanent=exc.permanent),
                fingerprint_before,
            )
        except (MediaError, OSError) as exc:
            if not os.path.lexists(path):
                # Deleted or renamed while a tool or vpod was reading it: whatever failed
                # (ENOENT, a tool that found nothing), the reason is that it vanished.
                gone = Skip(f"{path}: vanished while being processed", Reason.VANISHED)
                return PipelineOutput(
                    finish(success=False, skipped=True, reason=gone.reason, error=str(gone), permanent=gone.permanent),
                    fingerprint_before,
                )
            if isinstance(exc, MediaError):
                return PipelineOutput(
                    finish(success=False, reason=exc.reason, error=_naming(path, str(exc)), permanent=exc.permanent),
                    fingerprint_before,
                )
            write_refusal = refusal_for_error(exc, path, suggest=self._root_of(path))
            if write_refusal is not None:
                # A write or rename refused although the early check passed (the state
                # changed meanwhile, or a rule os.access cannot see): say why.
                message = f"{write_refusal.message(path, self.options.try_again)} ({exc.strerror})"
                return PipelineOutput(
                    finish(success=False, reason=write_refusal.reason, error=message, permanent=False), fingerprint_before
                )
            message = f"{path}: {exc.strerror or exc}"
            # A full disk (another program took the space after vpod's check): transient.
            reason = Reason.DISK_FULL if exc.errno in (errno.ENOSPC, errno.EDQUOT) else Reason.OS_ERROR
            return PipelineOutput(
                finish(success=False, reason=reason, error=message, permanent=False), fingerprint_before
            )

    def _run_locked(
        self,
        locked: LockedFile,
        fingerprint_before: str,
        policy: Policy,
        before_apply: Callable[[Plan], None] | None,
        finish: Callable[..., FileProcessingResult],
        on_progress: ProgressSink | None = None,
    ) -> PipelineOutput:
        """Probe, plan, apply and verify the locked file (see :meth:`process`)."""
        if locked.stat.st_size == 0:
            # A browser's placeholder or a download not started: nothing to judge yet.
            raise Skip(f"{locked.path}: empty file (0 bytes), nothing to process yet", Reason.EMPTY)
        media = probe(locked.path, self.runner)
        original = self._original_language(media, policy)
        plan = make_plan(policy, media, original)
        for warning in plan.warnings:
            self.log.warning("policy_warning", warning=warning)
        if plan.is_empty:
            return PipelineOutput(
                finish(success=True, final_path=locked.path),
                fingerprint_before,
                fingerprint_before,
                StatKey.of(locked.stat),
                media,
            )
        blocked = obstacle(media, plan, policy, locked.stat)
        part = header_part(media, plan, policy, locked.stat, original)
        if self.options.dry_run:
            if blocked is not None and part.is_empty:
                raise blocked  # reported as the run would report it, with its reason
            if blocked is not None:  # a hard-linked file: the run would apply the header part only
                result = finish(
                    success=False, skipped=True, reason=Reason.HARDLINKED, actions=part.describe(), permanent=False,
                    error=f"{blocked}; would apply in place: {'; '.join(part.describe())}",
                )
                return PipelineOutput(result, fingerprint_before)
            result = finish(success=False, skipped=True, reason=Reason.DRY_RUN, actions=plan.describe(), permanent=False)
            return PipelineOutput(result, fingerprint_before)
        if isinstance(blocked, Skip) and blocked.reason is Reason.HARDLINKED:
            return self._hardlinked(
                media, part, policy, locked, blocked, fingerprint_before, before_apply, finish, original
            )
        if before_apply is not None:
            before_apply(plan)
        try:
            final_path, media_after, done = self._apply(media, plan, policy, locked, on_progress, original)
        except MediaError as exc:
            if exc.reason not in VIDEO_DECLINED:
                raise
            # Not smaller, or a picture the encode cannot keep (HDR, interlacing, two video tracks): the rest.
            declined = exc if isinstance(exc, Skip) else Skip(str(exc), exc.reason)
            return self._video_declined(media, plan, policy, locked, declined, fingerprint_before, finish, original)
        fingerprint_after, stat_after = fingerprint_path(final_path)
        return PipelineOutput(
            finish(
                success=True,
                changes=len(plan.actions),
                actions=done.describe(),
                final_path=final_path,
            ),
            fingerprint_before,
            fingerprint_after,
            stat_after,
            media_after,
        )

    def _original_language(self, media: MediaInfo, policy: Policy) -> OriginalLanguage | None:
        """The file's original language, once per pass: the plan and its verification use it.

        Raises:
            MediaError: ``original_language_unavailable`` (not permanent): a Sonarr/Radarr
                instance with ``when_unavailable = "retry"`` did not answer.
        """
        resolution = self.original.resolve(media, policy)
        waiting = resolution.error(media.path)
        if waiting is not None:
            raise waiting
        if resolution.original is not None or resolution.notes:
            self.log.debug("original_language", description=resolution.describe(), notes=list(resolution.notes))
        return resolution.original
    def _hardlinked(
        self,
        media: MediaInfo,
        part: Plan,
        policy: Policy,
        locked: LockedFile,
        skip: Skip,
        fingerprint_before: str,
        before_apply: Callable[[Plan], None] | None,
        finish: Callable[..., FileProcessingResult],
        original: OriginalLanguage | None = None,
    ) -> PipelineOutput:
        """A hard-linked file whose plan is skipped (``skip``, reason ``hardlinked``):
        apply ``part`` (:func:`header_part`, may be empty) in place and report the file
        as skipped, with the changes made. The outcome carries what vpod left (the
        content after the edit, or as it was), permanent: the Store takes that content
        as handled under this policy only (:meth:`vpod.db.store.Store.enqueue`).

        Raises:
            as :meth:`_apply` for an in-place edit.
        """
        if part.is_empty:
            result = finish(success=False, skipped=True, reason=skip.reason, error=str(skip), permanent=True)
            return PipelineOutput(result, fingerprint_before, fingerprint_before, StatKey.of(locked.stat), media)
        if before_apply is not None:
            before_apply(part)
        media_after = self._edit_in_place(media, part, policy, locked, header_only=True, original=original)
        fingerprint_after, stat_after = fingerprint_path(media.path)
        result = finish(
            success=False, skipped=True, reason=skip.reason, permanent=True, changes=len(part.actions),
            actions=part.describe(), final_path=media.path,
            error=f"{skip}; applied in place: {'; '.join(part.describe())}",
        )
        return PipelineOutput(result, fingerprint_before, fingerprint_after, stat_after, media_after)

    def _video_declined(
        self,
        media: MediaInfo,
        plan: Plan,
        policy: Policy,
        locked: LockedFile,
        skip: Skip,
        fingerprint_before: str,
        finish: Callable[..., FileProcessingResult],
        original: OriginalLanguage | None = None,
    ) -> PipelineOutput:
        """The video transcode of ``plan`` was declined (``skip``, a reason of
        :data:`vpod.outcomes.VIDEO_DECLINED`; its temp file is gone): verified but not
        smaller (``not_smaller``), or refused before any encode because it could not keep
        the picture (``hdr_not_kept``, ``interlaced_not_kept``:
        :func:`vpod.media.transcode.check_picture_kept`). Apply the rest of the plan, less its
        :class:`TranscodeVideo` actions (:func:`vpod.media.verify.without_video_transcodes`: audio encodes,
        flags, order, removals, container kept), through the transcoder again when audio
        encodes remain, else the usual way (in place or by a remux), verified with the
        video transcode allowed to remain, and report the file skipped, permanent, carrying the content
        vpod left, as :meth:`_hardlinked` does: the Store takes that content as handled
        under this policy, so it is not encoded again (:meth:`vpod.db.store.Store.enqueue`).

        Raises:
            as :meth:`_apply`.
        """
        rest = without_video_transcodes(plan)
        if rest.is_empty:
            result = finish(success=False, skipped=True, reason=skip.reason, error=str(skip), permanent=True)
            return PipelineOutput(result, fingerprint_before, fingerprint_before, StatKey.of(locked.stat), media)
        final_path, media_after, rest = self._apply(media, rest, policy, locked, None, original, transcodes_declined=True)
        fingerprint_after, stat_after = fingerprint_path(final_path)
        result = finish(
            success=False, skipped=True, reason=skip.reason, permanent=True, changes=len(rest.actions),
            actions=rest.describe(), final_path=final_path,
            error=f"{skip}; applied: {'; '.join(rest.describe())}",
        )  # fmt: skip
        return PipelineOutput(result, fingerprint_before, fingerprint_after, stat_after, media_after)

    def _apply(
        self, media: MediaInfo, plan: Plan, policy: Policy, locked: LockedFile, on_progress: ProgressSink | None = None,
        original: OriginalLanguage | None = None, *, transcodes_declined: bool = False,
    ) -> tuple[Path, MediaInfo, Plan]:
        """Apply ``plan`` (made with the ``original`` language) and verify the result;
        returns (final path, probe of it, the plan as done: a video transcode whose
        encoder fell back names the one that ran, :func:`vpod.media.transcode.as_done`).

        Raises:
            Skip: reasons ``container_not_supported`` (a non-Matroska file under
                ``container = "keep"``), ``hardlinked``, ``outside_roots``,
                ``cannot_keep_owner`` (a remux would lose the source's owner or group).
            InsufficientSpace: the remux, the backup copy or the in-place edit would not
                fit in the free space with its margin; nothing was written.
            MediaError: ``unsupported_stream`` (see :func:`obstacle`), before anything
                is written; ``hdr_not_kept`` / ``interlaced_not_kept`` (a transcode would lose
                HDR, bit depth or interlacing: :meth:`_video_declined` applies the rest); a tool failed or the result does not conform. The source is
                as it was (a failed in-place edit is undone), except with reason ``undo_failed``.
            OSError: the file system refused (a full disk while copying a backup).
            Skip: reason ``not_smaller``: the verified transcode was discarded (``keep_if_larger``).

        ``transcodes_declined``: ``plan`` is a plan less its transcodes (:meth:`_video_declined`).
        """
        blocked = obstacle(media, plan, policy, locked.stat)
        if blocked is not None:
            raise blocked
        if not needs_remux(media, plan):
            edited = self._edit_in_place(
                media, plan, policy, locked, original=original, transcodes_declined=transcodes_declined
            )
            return media.path, edited, plan
        self._may_write(media.path, in_place=False)
        return self._remux(media, plan, policy, locked, on_progress, original, transcodes_declined=transcodes_declined)

    def _may_write(self, path: Path, *, in_place: bool) -> None:
        """Raise unless vpod may make the change here (see :meth:`_apply`): the file lies
        under the roots, and it (and for a remux its folder) is writable."""
        if not is_under(path, self.options.roots):
            # A followed symlink's target: read for inspection, never written.
            raise Skip(f"{path}: changing it would write outside the watched folders", Reason.OUTSIDE_ROOTS)
        _check_writable(path, in_place, self._root_of(path), self.options.try_again)

    def _edit_in_place(
        self, media: MediaInfo, plan: Plan, policy: Policy, locked: LockedFile, *, header_only: bool = False,
        original: OriginalLanguage | None = None, transcodes_declined: bool = False,
    ) -> MediaInfo:
        """Apply the header-only ``plan`` (made with the ``original`` language) with
        mkvpropedit and verify it (``header_only``: nothing may be left but what only a
        remux can do); returns the file's new probe. Raises as :meth:`_apply`."""
        self._may_write(media.path, in_place=True)
        if policy.backup:
            self._copy_backup(media.path, locked.stat.st_size)
        self._confirm_lease(media.path)
        return edit_in_place(
            media, plan, self.runner, self.temps, self.space,
            verify=lambda: verify_written(
                media.path, media, plan, policy, self.runner, cross_check=False, header_only=header_only,
                original=original, transcodes_declined=transcodes_declined,
            ),
        )  # fmt: skip

    def _copy_backup(self, source: Path, size: int) -> None:
        """Copy ``source`` to its backup name before an in-place edit (a hard link would see
        the edit), unless a backup exists; only when the copy and a margin fit.

        Raises:
            InsufficientSpace: not enough free space (nothing written).
            OSError: the copy failed.
        """
        if os.path.lexists(backup_path(source)):
            return
        what = f"the backup copy {backup_path(source).name}"
        with self.space.claim(source, source.parent, size, WRITE_MARGIN_BYTES, what):
            keep_backup(source, self.temps, copy=True)

    def _remux(
        self, media: MediaInfo, plan: Plan, policy: Policy, locked: LockedFile, on_progress: ProgressSink | None = None,
        original: OriginalLanguage | None = None, *, transcodes_declined: bool = False,
    ) -> tuple[Path, MediaInfo, Plan]:
        """Remux (or, for a plan that encodes, transcode: :class:`Transcoder`) into a temp
        file beside the source, verify, then put it in place. A transcode's result
        whose video is not smaller by ``min_saving_percent`` is discarded under
        ``keep_if_larger`` (:meth:`_video_shortfall`): raises :class:`Skip` ``not_smaller``,
        the source as it was.
        Returns as :meth:`_apply`."""
        source = media.path
        st = locked.stat
        target = new_file_name(media, plan)  # obstacle() checked it is free
        doing = "transcoding" if plan.transcodes else "remuxing"  # what messages say vpod was doing
        need, what = write_need(media, plan, st.st_size)
        with (
            self.space.claim(source, source.parent, need, WRITE_MARGIN_BYTES, what) as claim,
            temp_beside(source, self.temps, suffix=target.suffix) as temp,
        ):
            claim.track(temp)
            # Before any tool writes: a new file that would lose the source's owner is not made.
            check_owner_can_be_kept(temp, st, source)
            tool = None
            done = plan
            streams: list[dict[str, Any]] | None = None  # the source's, for an encode
            try:
                if plan.transcodes:
                    # One ffprobe of the source's streams for the encode and for keep_if_larger's count.
                    streams = self.transcoder.source_streams(media)
                    tool, done = self.transcoder.transcode(media, plan, temp, on_progress, streams)
                else:
                    tool = self.remuxer.remux(media, plan, temp, on_progress)
                media_after = verify_written(
                    temp, media, plan, policy, self.runner, original=original, transcodes_declined=transcodes_declined
                )
            except MediaError as exc:
                # A tool or the verification failed: if the source changed meanwhile (a user
                # copying a new version over it), that is the reason, not a broken remux.
                self._check_unchanged(locked, doing)
                about = _about_source(exc, source, temp, tool, "transcoded" if plan.transcodes else "remuxed")
                if about.reason is Reason.DISK_FULL:
                    about = MediaError(
                        f"{about}; {_free_space_hint(source.parent, need, what, self.options.try_again)}",
                        reason=about.reason, permanent=about.permanent,
                    )  # fmt: skip
                raise about from None
            self._check_unchanged(locked, doing)
            shortfall = self._video_shortfall(media, plan, policy, locked, temp, streams)
            if shortfall is not None:
                raise Skip(
                    f"{source}: {shortfall}; the encode was discarded and the source's video kept", Reason.NOT_SMALLER
                )
            if has_writer(locked.fd, source):
                # Replacing it now would leave that writer's next bytes in a deleted file.
                raise MediaError(
                    f"{source}: opened for writing by another process during the {'transcode' if plan.transcodes else 'remux'}; left as it was",
                    reason=Reason.LOCKED,
                    permanent=False,
                )
            self._confirm_lease(source)
            if policy.backup:
                keep_backup(source, self.temps, copy=False)
            attrs = read_attributes(locked.fd, source)
            put_in_place(temp, source, target, attrs, keep_mtime=policy.keep_mtime)
        return target, replace(media_after, path=target), done

    def _video_shortfall(
        self, media: MediaInfo, plan: Plan, policy: Policy, locked: LockedFile, temp: Path,
        streams: list[dict[str, Any]] | None,
    ) -> str | None:
        """Why the verified result ``temp`` of ``plan`` is not kept under ``keep_if_larger``,
        or ``None``: its re-encoded video tracks (located by the source's ffprobe
        ``streams``, as the encode used them) against the source's, in bytes
        (:func:`vpod.media.video_saving.measure_video`, one ffprobe pass over each file),
        judged by :func:`vpod.media.video_saving.saving_shortfall`. Measured only for a plan
        that re-encodes video under ``keep_if_larger`` (:func:`vpod.media.video_saving.is_judged`).

        Raises:
            MediaError: ffprobe could not count a file's video bytes; the message names the
                source (and the transcoded copy when that is the file it could not read).
            Skip: ``vanished`` / ``source_changed``: the source changed while it was read
                (:meth:`_check_unchanged`, asked again: the pass reads the whole file).
        """
        if streams is None or not is_judged(plan, policy):
            return None
        try:
            video = measure_video(media, plan, temp, streams, self.runner)
        except MediaError as exc:
            self._check_unchanged(locked, "transcoding")  # a source rewritten meanwhile is the reason, not ffprobe
            raise _about_source(exc, media.path, temp, None, "transcoded") from None
        self._check_unchanged(locked, "transcoding")
        return saving_shortfall(video, policy)

    def _confirm_lease(self, path: Path) -> None:
        """The claim's compare-and-set just before ``path`` is changed (see
        :attr:`PipelineOptions.confirm_lease`).

        Raises:
            vpod.errors.LeaseLost: the claim is gone.
            vpod.errors.StoreBusy: the database was locked; the caller retries the file.
        """
        if self.options.confirm_lease is not None:
            self.options.confirm_lease(path)

    def _root_of(self, path: Path) -> Path:
        """The root ``path`` lies under (what a ``ReadWritePaths=`` hint names), else its folder."""
        return next((root for root in self.options.roots if is_under(path, (root,))), path.parent)

    @staticmethod
    def _check_unchanged(locked: LockedFile, doing: str = "remuxing") -> None:
        """Raise unless the locked path still names the same, unmodified inode (size and
        mtime as read when the file was locked). ``doing``: what the message says vpod
        was doing meanwhile (``remuxing``, ``transcoding``).

        Raises:
            Skip: reason ``vanished`` (the name is gone) or ``source_changed`` (rewritten
                in place, or another file renamed over it); neither is permanent.
        """
        try:
            now = os.stat(locked.path, follow_symlinks=False)
        except FileNotFoundError:
            raise Skip(f"{locked.path}: vanished while vpod was {doing} it", Reason.VANISHED) from None
        except OSError:
            return  # cannot tell; the replace itself would fail on a real problem
        before = locked.stat
        if (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) != (
            before.st_ino, before.st_dev, before.st_size, before.st_mtime_ns
        ):  # fmt: skip
            raise Skip(
                f"{locked.path}: changed while vpod was {doing} it (another program wrote or replaced it); "
                "vpod's copy was discarded and the new content left as written, to be looked at again "
                "(the daemon does so once it settles; after `vpod process`, run it again)",
                Reason.SOURCE_CHANGED,
            )


PCM_KBPS_PER_CHANNEL = 768
"""FLAC's estimate per channel (kb/s): 16-bit 48 kHz PCM, what lossless audio at that
depth takes at most before compression."""


def encoded_audio_bytes(media: MediaInfo, plan: Plan) -> int:
    """The estimated size (bytes) of the audio tracks ``plan`` adds or re-encodes
    (:class:`AddAudio`, :class:`ConvertAudio`): each one's bitrate (the policy's, or the
    codec's default for its channels; FLAC: :data:`PCM_KBPS_PER_CHANNEL` per channel)
    × the file's duration (0 when unknown)."""
    seconds = media.duration_seconds or 0.0
    channels_of = {t.index: t.channels for t in media.tracks}
    total = 0
    for action in plan.actions:
        if isinstance(action, AddAudio):
            channels = action.channels
        elif isinstance(action, ConvertAudio):
            channels = action.channels or channels_of.get(action.track) or 2
        else:
            continue
        kbps = action.bitrate_kbps or default_bitrate_kbps(action.codec, channels) or PCM_KBPS_PER_CHANNEL * channels
        total += int(kbps * 1000 / 8 * seconds)
    return total


def write_need(media: MediaInfo, plan: Plan, size: int) -> tuple[int, str]:
    """The bytes a remux or transcode of ``media`` (``size`` bytes) into a new file may
    write, and how the estimate is made, for the space check's message: the source's
    size + 5 % (a remux copies, and a video encode is kept only when smaller:
    ``keep_if_larger``), plus for a transcode the audio tracks it adds or converts
    (:func:`encoded_audio_bytes`; a converted track's source is still counted in the
    source's size)."""
    base = remux_need(size)
    if not plan.transcodes:
        return base, f"the remux (the new file: at most the source's {format_bytes(size)} + 5 %)"
    audio = encoded_audio_bytes(media, plan)
    extra = f" + {format_bytes(audio)} for the audio tracks it adds or converts (bitrate × duration)" if audio else ""
    return base + audio, f"the transcode (the new file, estimated: the source's {format_bytes(size)} + 5 %{extra})"


def _free_space_hint(folder: Path, need: int, what: str, again: str) -> str:
    """What to do after a write ran out of space in ``folder``: free the bytes ``need``
    the write was estimated at (:func:`write_need`, described by ``what``) plus
    :data:`WRITE_MARGIN_BYTES` there, then ``again`` (:attr:`PipelineOptions.try_again`).
    The space check passed before the write, so something else filled the filesystem
    meanwhile, or the estimate was short."""
    return (
        f"free space on the filesystem of {folder} (`df -h {folder}`): {what} needs about {format_bytes(need)}, "
        f"and vpod keeps {format_bytes(WRITE_MARGIN_BYTES)} free besides; then {again}"
    )


def _about_source(exc: MediaError, source: Path, temp: Path, tool: str | None, made: str = "remuxed") -> MediaError:
    """``exc``, from the remux (or transcode: ``made``) of ``source`` into ``temp`` or from
    checking ``temp``, reworded to name the source first (errors are about the user's
    file); the temp file's name and the tool that wrote it follow."""
    text = str(exc)
    if text.startswith(f"{temp}: "):
        text = f"{source}: the {made} copy {temp.name}: {text[len(str(temp)) + 2:]}"
    elif not text.startswith(f"{source}: "):
        text = f"{source}: {text}"
    if tool is not None:
        text += f" (written by {tool})"
    return MediaError(text, reason=exc.reason, permanent=exc.permanent)


def _check_writable(path: Path, in_place: bool, root: Path, again: str) -> None:
    """Fail early, before any tool runs, when vpod may not write what the change needs:
    the file itself, and for a remux also its folder (temp file + rename). A file its
    owner made read-only to vpod is respected by a remux too, although the folder would
    let vpod replace it. ``root`` (the watch root) is the folder a ``ReadWritePaths=``
    hint names; ``again`` how the message says to try again (:attr:`PipelineOptions.try_again`).

    Raises:
        MediaError: the reason says why (:mod:`vpod.writability`): ``read_only_filesystem``,
            ``systemd_sandbox``, ``immutable`` or ``not_writable``; not permanent: fixing
            the cause and trying again (``vpod retry PATH``, or ``vpod process`` again) is
            enough (it is not a content change).
    """
    for target, what in ((path, "the file"), *(() if in_place else ((path.parent, f"its folder {path.parent}"),))):
        refusal = why_not_writable(target, what, suggest=root)
        if refusal is not None:
            raise MediaError(refusal.message(path, again), reason=refusal.reason, permanent=False)


def _naming(path: Path, message: str) -> str:
    """``message`` led by the file's name unless it names the file already (a tool's
    timeout or exit status says which tool, not which file)."""
    shown = display_path(path)
    return message if shown in message or str(path) in message else f"{shown}: {message}"
