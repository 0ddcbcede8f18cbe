"""Building the daemon's parts: the one place that knows how they connect.

:func:`wire` takes the collaborators from outside (the config, an open store, the
systemd notifier, the clock) and returns :class:`Parts`, owned by the
:class:`~vpod.daemon.lifecycle.Daemon`. Tests call it (through the Daemon) with a fake
clock and a store of their own. Nothing here starts a thread or touches the file system
except the library-claim checks' database id.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from vpod import __version__
from vpod.batch import BatchController, BatchWindows
from vpod.config import VPOConfig
from vpod.daemon.abandoned import AbandonedRows
from vpod.daemon.batches import BatchCloser
from vpod.daemon.files import FileHandler
from vpod.daemon.libraries import LibraryBinding
from vpod.daemon.pausing import PauseControl
from vpod.daemon.pool import ActiveFiles, WorkerPool
from vpod.daemon.rejudge import HardlinkedRejudge
from vpod.lanes import TranscodeLane
from vpod.outcomes import Reason
from vpod.daemon.snapshot import StatusSnapshot
from vpod.daemon.systemd import SystemdReporter
from vpod.daemon.threads import Threads
from vpod.daemon.transcodes import TranscodeStatus
from vpod.db.store import Store
from vpod.eventlog import EventLog
from vpod.events import EventBus, FileFinished, FilesQueued, FileStarted
from vpod.feeder import Feeder
from vpod.heartbeat import OwnerHeartbeat
from vpod.hooks.hints import HookHints
from vpod.hooks.receiver import HookReceiver
from vpod.instance import several_nodes
from vpod.integrations.service import Integrations
from vpod.jobs import JobRunner
from vpod.leases import LeaseKeeper
from vpod.media.encoders import TranscodeSettings
from vpod.media.limits import ToolLimits
from vpod.media.tools import ToolRunner
from vpod.metrics import Metrics
from vpod.notify import SystemdNotifier
from vpod.original.resolver import OriginalResolver
from vpod.pipeline import FileProcessor, PipelineOptions
from vpod.policy.selection import PolicySelector
from vpod.tempfiles import TempSweeper
from vpod.watch.filters import PathFilter
from vpod.watch.handler import WatchEventHandler
from vpod.watch.intake import Intake
from vpod.watch.library_id import LibraryMounts
from vpod.watch.observers import WatchManager
from vpod.watch.ownership import LibraryClaims
from vpod.watch.scanner import Scanner
from vpod.watch.stabilizer import Stabilizer
from vpod.watch.supervision import RootSupervisor
from vpod.web.stream import Changes


class Ticking(Protocol):
    """A part with a periodic duty, driven by the main loop."""

    def tick(self, now: float) -> float:
        """Do what is due at ``now`` (seconds); return the next deadline (``inf``: none)."""


class Reconfigurable(Protocol):
    """A part whose settings a reload changes live."""

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply the keys of ``config`` this part uses (see :mod:`vpod.reload`)."""


class ProcessingSettings:
    """The settings of the pipeline's pieces that are not parts themselves: the tool
    time limits, the settle time and the roots the pipeline may write in."""

    def __init__(self, config: VPOConfig, runner: ToolRunner, processor: FileProcessor, stabilizer: Stabilizer) -> None:
        self.config = config
        self.runner = runner
        self.processor = processor
        self.stabilizer = stabilizer

    def reconfigure(self, config: VPOConfig) -> None:
        """Apply the ``[processing]`` tool limits, ``[watch] settle_seconds`` and ``paths``,
        and the ``[arr]`` instances."""
        self.config = config
        self.processor.original.reconfigure(config.arr)
        self.runner.limits = ToolLimits.from_config(config.processing)
        self.processor.transcoder.reconfigure(TranscodeSettings.from_config(config.processing))
        self.stabilizer.settle_seconds = config.watch.settle_seconds
        roots = tuple(p.absolute() for p in config.watch.paths)
        if roots != self.processor.options.roots:
            self.processor.options = self.processor.options._replace(roots=roots)


class LookAgainWhenChanged:
    """Event subscriber: a file whose source changed while it was processed is handed to
    the stabilizer again (the rewrite's own events may have settled while the row was in
    progress, and then were not queued)."""

    def __init__(self, notify: Callable[[Path], None]) -> None:
        self.notify = notify

    def on_file_finished(self, event: FileFinished) -> None:
        """Look at ``source_changed`` files again once their new content settles."""
        if event.result.reason == Reason.SOURCE_CHANGED and not event.retrying:
            self.notify(event.result.path)


@dataclass
class Parts:
    """The daemon's parts; each has one job (docs/architecture.md)."""

    events: EventBus
    threads: Threads
    metrics: Metrics
    runner: ToolRunner
    processor: FileProcessor
    leases: LeaseKeeper
    feeder: Feeder
    stabilizer: Stabilizer
    scanner: Scanner
    watches: WatchManager
    claims: LibraryClaims
    roots: RootSupervisor
    pool: WorkerPool
    files: FileHandler
    batches: BatchCloser
    pausing: PauseControl
    abandoned: AbandonedRows
    libraries: LibraryBinding
    mounts: LibraryMounts
    sweeper: TempSweeper
    heartbeat: OwnerHeartbeat
    snapshot: StatusSnapshot
    reporter: SystemdReporter
    settings: ProcessingSettings
    rejudge: HardlinkedRejudge
    integrations: Integrations
    hooks: HookReceiver
    hook_hints: HookHints
    changes: Changes  # the web API's event streams wait on it (vpod.web.stream)
    lane: TranscodeLane  # the transcode lane's slots and deferrals (vpod/lanes.py)
    transcodes: TranscodeStatus  # the lane's state and encode speeds for vpod status

    @property
    def ticking(self) -> list[Ticking]:
        """Parts with a periodic duty, in the order the main loop runs them."""
        return [
            self.batches, self.threads, self.heartbeat, self.mounts, self.roots, self.abandoned, self.sweeper,
            self.snapshot, self.reporter, self.transcodes,
        ]

    @property
    def reconfigurable(self) -> list[Reconfigurable]:
        """Parts a reload reconfigures, in order (the pipeline's roots before new roots
        are watched and walked; the library names before new roots are logged)."""
        return [
            self.settings, self.libraries, self.mounts, self.files, self.rejudge, self.pausing, self.batches,
            self.roots, self.pool, self.integrations, self.hooks, self.lane,
        ]


def wire(
    config: VPOConfig,
    store: Store,
    *,
    notifier: SystemdNotifier,
    stop: threading.Event,
    crashed: threading.Event,
    wake: Callable[[], None],
    started_at: float,
    node: str,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Parts:
    """Build every part of a daemon for ``config`` on an open ``store``.

    Args:
        stop: set to stop every thread; ``crashed``: set when one died of a bug.
        wake: wakes the main loop.
        started_at: the daemon's start, epoch seconds.
        node: this node's name (``[node] name``; the host name by default), for
            ``/health`` and ``/metrics``.
        dry_run: plan and log, never write media files.
        clock: monotonic seconds, the clock of the main loop's deadlines.

    The store's owner must be registered (:meth:`Store.register_owner`): the parts
    renew its heartbeat.
    """
    events = EventBus()
    libraries = LibraryBinding(store, config)
    paused = threading.Event()
    threads = Threads(stop, crashed, wake)
    roots = tuple(p.absolute() for p in config.watch.paths)
    claims = LibraryClaims(
        store.database_id(), store.location, read_only=dry_run, recursive=config.watch.recursive,
        roots=lambda: supervisor.roots,  # the roots now (a reload changes them)
        may_write=lambda root: mounts.proven(root),  # no marker into an unproven folder (an empty mount point)
    )
    runner = ToolRunner(ToolLimits.from_config(config.processing))
    leases = LeaseKeeper(
        store, runner, stop, lease_seconds=config.database.lease_seconds,
        heartbeat_seconds=config.database.lease_heartbeat_seconds,
    )
    hook_hints = HookHints(clock=clock)  # what Sonarr/Radarr webhooks said about files (vpod/hooks/)
    processor = FileProcessor(
        runner,
        PipelineOptions(
            roots=roots, follow_symlinks=config.watch.follow_symlinks, dry_run=dry_run, refusal=claims.refusal,
            confirm_lease=leases.confirm, claimed_lock_wait=leases.lock_wait_seconds,
        ),
        leases.temps,  # the Store's temp registry, each temp tied to its claim
        OriginalResolver(config.arr, hinted=hook_hints.original),  # a webhook's payload first
        TranscodeSettings.from_config(config.processing),
    )
    lane = TranscodeLane.from_config(config.processing)  # on_free: the feeder's poke, below
    job_runner = JobRunner(
        store,
        processor,
        lane=lane,
        max_attempts=config.processing.max_attempts,
        stop=stop,
        on_outcome=lambda result, retrying: events.publish(FileFinished(result, retrying)),
        on_start=lambda job, worker, batch_id: events.publish(FileStarted(job.path, worker, batch_id)),
        wait_for_space=True,
        leases=leases,
        lease_seconds=config.database.lease_seconds,
        mount_lost=lambda path: mounts.lost(path),  # a file gone with its library's marker did not vanish
        on_hung=lambda job: feeder.avoid(job),  # feeder: made below, called only once files run
    )
    controller = BatchController(config.policy.on_error)
    windows = BatchWindows(config.processing.batch_window_seconds)
    # No prefetch: a free worker claims its next job, from the libraries whose folder
    # here is proven (LibraryMounts; None on SQLite: every library with a folder here).
    mounts = LibraryMounts(
        store, lambda: libraries.names, node=config.node.node_name, read_only=dry_run,
        shared=several_nodes(config.database.path, store.location),
        on_verified=lambda roots: verified_again(roots), clock=clock,
    )
    feeder = Feeder(
        store, stop, paused, batch_id=windows.next_batch_id, libraries=mounts.claim_libraries,
        lease_seconds=config.database.lease_seconds, passed_over=lane.passed_over,
    )
    lane.on_free = feeder.poke  # a freed slot: the workers claim the files passed over
    path_filter = PathFilter.from_config(config.watch)

    def verified_again(roots: list[Path]) -> None:
        for root in roots:  # its files were not queued while it was unverified
            if root in watches.roots():
                scanner.request(root, root, catch_up=True)
        feeder.poke()

    def queued() -> None:
        feeder.poke()
        events.publish(FilesQueued())

    def make_handler(root: Path) -> WatchEventHandler:
        return WatchEventHandler(
            root, path_filter, stabilizer,
            walk_folder=lambda r, folder: scanner.request(r, folder),
            on_root_deleted=supervisor.root_deleted,
            events_lost=supervisor.events_lost,  # counts overflow loops, then rescans
        )

    watches = WatchManager(
        make_handler,
        observer=config.watch.observer,
        poll_interval_seconds=config.watch.poll_interval_seconds,
        recursive=config.watch.recursive,
    )
    intake = Intake(
        store,
        lambda: supervisor.roots,
        policy_digest=lambda root, path: files.policies.digest(path, root=root),  # the policies in force now
        follow_symlinks=config.watch.follow_symlinks,
        on_queued=queued,
        retry=lambda paths, delay: stabilizer.notify_later(paths, delay),
        refusal=claims.refusal,  # a subfolder another vpod claimed is not queued
        unverified=mounts.refusal,  # nor a file of a library folder not proven here
        still_writing=lambda paths: stabilizer.still_writing(paths),  # a walk's files: one open for lease + fingerprint
        by_name=lambda root: files.policies.by_name(root),  # else one policy digest per folder of a batch
    )
    stabilizer = Stabilizer(config.watch.settle_seconds, intake.files_ready, stop, on_walked=intake.files_walked)
    scanner = Scanner(
        store, path_filter, stabilizer, stop, recursive=config.watch.recursive,
        trust_ctime=lambda root: watches.kind(root) == "inotify",
        library_of=libraries.library_of, write_behind=intake.behind,
        child_walk=sys.executable,  # a catch-up's walk in a child process, on the second CPU
        bulk=intake.folders_walked if store.bulk_walk else None,  # new folders: one statement each (SQLite)
    )
    supervisor = RootSupervisor(
        roots, watches=watches, claims=claims, scanner=scanner, events=events, wake=wake,
        recursive=config.watch.recursive,
        library_of=libraries.library_of,
    )
    settings = ProcessingSettings(config, runner, processor, stabilizer)
    active = ActiveFiles()
    snapshot = StatusSnapshot(
        store, stop=stop, paused=paused, workers=lambda: pool.count(), active=active.count, roots=supervisor,
        claims=claims, dead_threads=threads.dead, started_at=started_at, node=node,
    )
    reporter = SystemdReporter(notifier, text=snapshot.text, dead_threads=threads.dead, wake=wake)
    transcodes = TranscodeStatus(lane, job_runner.progress_board, snapshot.record, wake=wake)
    lane.on_change = transcodes.changed  # an encode started or ended: vpod status shows it now
    active.changed = reporter.changed
    pausing = PauseControl(
        controller, paused, store=store, record=snapshot.record, feeder=feeder, events=events, changed=reporter.changed
    )
    files = FileHandler(
        job_runner=job_runner, feeder=feeder, windows=windows, controller=controller,
        policies=PolicySelector.from_config(config),
        active_changed=active.add, pause=pausing.pause, wake=wake,
    )
    pool = WorkerPool(feeder, stop, files, threads.spawn, active)
    threads.others += [pool.dead_threads, watches.dead_observers]
    metrics = Metrics(
        queue_depth=store.ping, active=pool.active, workers=pool.count, paused=paused.is_set, started_at=started_at,
        node=node, version=__version__, lane=lane, progress=job_runner.progress_board.points,
    )
    batches = BatchCloser(
        windows, store, events, busy=lambda: pool.active() > 0 or feeder.inflight() > 0,
        paused=paused,
    )
    changes = Changes()
    for subscriber in (metrics, snapshot, LookAgainWhenChanged(stabilizer.notify), EventLog(), reporter, changes):
        events.subscribe(subscriber)
    integrations = Integrations(config, resolver=processor.original, node=node, metrics=metrics)
    integrations.subscribe(events)  # after the log: a notification follows the line it is about
    return Parts(
        events=events, threads=threads, metrics=metrics, runner=runner, processor=processor, leases=leases, feeder=feeder,
        stabilizer=stabilizer, scanner=scanner, watches=watches, claims=claims, roots=supervisor, pool=pool,
        files=files, batches=batches, pausing=pausing, abandoned=AbandonedRows(store, lambda: supervisor.roots,
        stabilizer.notify), libraries=libraries, mounts=mounts,
        sweeper=TempSweeper(store, clock=clock), heartbeat=OwnerHeartbeat(
            store, clock=clock, watch_clock=True, info=lambda: {"workers": pool.count()}
        ), snapshot=snapshot, reporter=reporter, settings=settings,
        rejudge=HardlinkedRejudge(store, lambda: files.policies, queued), integrations=integrations,
        hooks=HookReceiver(config, roots=lambda: supervisor.roots, queue=stabilizer.notify_done, hints=hook_hints,
                           clock=clock),
        hook_hints=hook_hints, changes=changes, lane=lane,
        transcodes=transcodes,
    )
