"""Which vpod owns a library: the marker file ``.vpod-library`` in each watch root.

Two daemons with different databases (and perhaps different policies) watching the same
folder would rewrite each other's files back and forth. So a daemon claims each of its
roots by writing a marker there: its database's identity (a random id stored in the
database), the database's path, host, pid and a heartbeat time (JSON). While the daemon
runs it holds an exclusive ``flock`` on the marker (flock(2); the kernel drops it when
the process ends, however it ends) and renews the heartbeat every
:data:`HEARTBEAT_SECONDS`.

A marker written for another database holds the root when:

* its ``flock`` is held: its daemon runs (on this host; on NFS, whose client maps
  flock to byte-range locks, on any host), or
* it was written on another host, whose locks this host may not see (SMB, sshfs), and
  its heartbeat is younger than :data:`STALE_AFTER_HEARTBEATS` heartbeats.

Otherwise (its daemon ended on this host, a heartbeat gone stale) the marker is taken
over.

Several nodes of ONE database (a database server, :mod:`vpod.instance`) are one vpod:
a marker of this database never holds a root. A node that finds it locked by another
node of its database shares the root (works there without writing the marker) and
takes the marker over once that node gives it up (looked at every few seconds).

Libraries can nest: a vpod watching ``/srv/tv`` with its subfolders covers ``/srv/tv/new``
too. So a root is held elsewhere also when a live marker of another database whose vpod
watches subfolders (``recursive``) lies in a folder *above* it; and a file is left alone
when a live marker of another database lies in a folder between the file and its root (a
subfolder another vpod claimed): the daemon keeps watching the rest of its root and leaves
that subtree to the other vpod, until the other one stops (its subtree is then walked).
Whoever claimed first keeps its folder: a claim already held is not given up for a marker
that appeared above it later. A daemon that stops cleanly removes its markers (marking them ``released`` first,
for a vpod that opened one just before), so a stopped vpod leaves nothing behind. A
``--dry-run`` daemon writes no marker and respects the others'. The hidden name is never
queued by the watcher (the default ``ignore`` has ``.*``; it has no media extension
either).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import stat
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

import structlog

from vpod.hostname import host_name

MARKER_NAME = ".vpod-library"
HEARTBEAT_SECONDS = 300.0
"""How often a daemon renews its markers' heartbeat (seconds). Rare on purpose: each
renewal is a write in the library, which keeps its disk from spinning down; on this host
(and over NFS) the ``flock`` tells a live owner at once."""
STALE_AFTER_HEARTBEATS = 3
"""A marker from another host whose heartbeat is older than this many of its own
intervals belongs to a daemon that is gone."""
_MAX_MARKER_BYTES = 64 * 1024
_MAX_CACHED_FOLDERS = 10_000  # a MarkerLookup with a ttl drops expired answers beyond this
SUBFOLDER_RECHECK_SECONDS = 5.0
"""How long the daemon trusts what it found about the markers in a file's folders
(seconds): a subfolder another vpod claims (or gives up) is seen within this time."""


class Marker(NamedTuple):
    """The content of a ``.vpod-library`` marker.

    Attributes:
        database_id: the owning database's random identity.
        database: that database's path, on ``host``.
        host: the owner's host name.
        pid: the owning daemon's process id.
        heartbeat_at: when the owner last renewed the marker (epoch seconds).
        heartbeat_seconds: the owner's renewal interval (seconds).
        released: True when the owner stopped cleanly and gave the library up.
        recursive: the owner watches the subfolders too (so it covers any folder below);
            markers written before this field existed count as recursive.
    """

    database_id: str
    database: str
    host: str
    pid: int
    heartbeat_at: float
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    released: bool = False
    recursive: bool = True

    @classmethod
    def parse(cls, data: bytes) -> "Marker | None":
        """A marker from the file's bytes; ``None`` when they are not one (empty, torn, foreign)."""
        try:
            fields = json.loads(data)
            return cls(
                database_id=str(fields["database_id"]),
                database=str(fields["database"]),
                host=str(fields["host"]),
                pid=int(fields["pid"]),
                heartbeat_at=float(fields["heartbeat_at"]),
                heartbeat_seconds=float(fields.get("heartbeat_seconds", HEARTBEAT_SECONDS)),
                released=bool(fields.get("released", False)),
                recursive=bool(fields.get("recursive", True)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def encode(self) -> bytes:
        """The file's bytes: one JSON object and a newline."""
        return (json.dumps({"vpod_library": 1, **self._asdict()}, sort_keys=True) + "\n").encode()

    def stale(self, now: float) -> bool:
        """True when the heartbeat is older than :data:`STALE_AFTER_HEARTBEATS` intervals."""
        return now - self.heartbeat_at > STALE_AFTER_HEARTBEATS * self.heartbeat_seconds

    def describe(self, now: float) -> str:
        """Who holds the library, for messages."""
        return (
            f"the vpod of database {self.database} (pid {self.pid} on {self.host}, "
            f"heartbeat {max(0.0, now - self.heartbeat_at):.0f} s ago)"
        )

    def as_report(self, root: Path, now: float) -> dict[str, object]:
        """JSON-friendly form for ``/health`` and ``vpod status``."""
        return {
            "root": str(root),
            "database": self.database,
            "host": self.host,
            "pid": self.pid,
            "heartbeat_age_seconds": round(max(0.0, now - self.heartbeat_at), 1),
        }


_SIBLING_HOLDS = Marker("", "another node of this database", "", 0, 0.0)


def _read(fd: int) -> Marker | None:
    return Marker.parse(os.pread(fd, _MAX_MARKER_BYTES, 0))


def _locked_elsewhere(fd: int) -> bool | None:
    """Whether another open file description holds a ``flock`` on the file: True, False,
    or ``None`` when this filesystem does not support it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _lock_exclusive(fd: int, attempts: int = 5) -> bool | None:
    """Take the marker's exclusive ``flock``: False when taken, True when another holds
    it, ``None`` when this filesystem has no locks. A reader's shared lock lasts
    microseconds, so a refusal is tried again a few times before it counts."""
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            if attempt + 1 < attempts:
                time.sleep(0.01)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return None  # no locks here: the heartbeat decides
            raise
    return True


def holds(marker: Marker | None, locked: bool | None, *, database_id: str, host: str, now: float) -> bool:
    """Whether ``marker`` keeps a vpod of database ``database_id`` on ``host`` out of its
    library (the rules in the module docstring). ``locked``: its ``flock`` is held by
    someone else (``None``: unknown, no locks on this filesystem)."""
    if locked:
        return marker is None or marker.database_id != database_id
    if marker is None or marker.database_id == database_id or marker.released:
        return False
    if marker.host == host and locked is False:
        return False  # its daemon ended: the kernel dropped its lock
    return not marker.stale(now)


def read_marker(root: Path) -> tuple[Marker | None, bool | None] | None:
    """The marker in ``root`` and whether a running vpod holds its lock (``None``: no
    locks on this filesystem); ``None`` when there is no marker file to read. Takes nothing."""
    try:
        fd = os.open(root / MARKER_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return _read(fd), _locked_elsewhere(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def foreign_holder(root: Path, *, database_id: str, host: str | None = None, now: float | None = None) -> Marker | None:
    """The marker of another database that holds ``root`` now, or ``None`` (no marker, this
    database's, released, or its owner gone). Reads the marker; takes nothing."""
    host = host or host_name()
    now = time.time() if now is None else now
    found = read_marker(root)
    if found is None or not holds(*found, database_id=database_id, host=host, now=now):
        return None
    return found[0] or Marker("?", "unknown (the marker is locked but unreadable)", "?", 0, now)


class MarkerLookup:
    """For ``vpod process``: finds, for a file, the marker of another database in its
    folder or any folder above it (a library's root), and says who holds it.

    The innermost marker decides: a folder with a marker of this database (or one that
    holds nothing: released, its owner gone) ends the search.

    Args:
        database_id: this database's identity (files of its own libraries pass).
        host: this host's name (default: the real one).
        ttl_seconds: how long a folder's answer is reused (seconds); ``None``: for the
            life of the object (a ``vpod process`` run). The daemon asks again after a
            few seconds, so a subfolder claimed or given up meanwhile is seen.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        database_id: str,
        host: str | None = None,
        *,
        ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database_id = database_id
        self.host = host or host_name()
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._folders: dict[Path, tuple[tuple[Path, Marker] | None, float]] = {}  # folder -> (answer, expiry)
        self._lock = threading.Lock()  # the batch's worker threads share it

    def holder_of(self, path: Path, below: Path | None = None) -> tuple[Path, Marker] | None:
        """``(root, marker)`` of the library of another database that ``path`` lies in,
        or ``None``. ``below``: look only in folders below this one (the daemon's root,
        whose own marker it handles itself); always pass the same for one folder, as the
        answers are cached per folder (``ttl_seconds``). Costs one open(2) per folder
        not cached, up to the innermost marker."""
        folder = path.parent
        chain: list[Path] = []
        found: tuple[Path, Marker] | None = None
        now = self.clock()
        for current in (folder, *folder.parents):
            if below is not None and below not in current.parents:
                break
            with self._lock:
                entry = self._folders.get(current)
            if entry is not None and entry[1] > now:
                found = entry[0]
                break
            chain.append(current)
            marker = foreign_holder(current, database_id=self.database_id, host=self.host)
            if marker is not None:
                found = (current, marker)
                break
            if os.path.lexists(current / MARKER_NAME):
                break  # a marker that does not hold: the innermost library is free
        expiry = math.inf if self.ttl_seconds is None else now + self.ttl_seconds
        with self._lock:
            if len(self._folders) > _MAX_CACHED_FOLDERS:
                self._folders = {f: e for f, e in self._folders.items() if e[1] > now}
            for current in chain:
                self._folders[current] = (found, expiry)
        return found

    def refusal(self, path: Path) -> str | None:
        """Why ``path`` must be left alone (another vpod's library), or ``None``."""
        found = self.holder_of(path)
        if found is None:
            return None
        root, marker = found
        return (
            f"{path}: {root} is the library of {marker.describe(time.time())}; vpod leaves it to that "
            f"vpod (run this command with its config, or stop it first)"
        )


class LibraryClaims:
    """The daemon's markers: claims its roots, renews the heartbeats, gives them up.

    Args:
        database_id: this database's identity.
        database: this database's location (a path, or a URL without its password;
            written into the markers, for people).
        heartbeat_seconds: renewal interval (seconds).
        read_only: never write a marker (``vpod run --dry-run``), only respect others'.
        roots: the daemon's roots now (they change on reload): :meth:`refusal` looks for
            other vpods' markers only between a file and its innermost root.
        recursive: this vpod watches subfolders (written into the markers: a vpod whose
            root lies below one of ours then leaves it to us).
        clock: epoch seconds (tests pass their own).
        may_write: whether this node may write a marker into a root now: ``False``
            while the root is not proven to be its library's folder (an empty mount
            point whose share is not mounted: :meth:`vpod.watch.library_id.LibraryMounts.proven`).
            Such a root is only looked at (as with ``read_only``) and claimed once it is
            proven (:meth:`renew`).

    The daemon's main thread claims, renews and releases; :meth:`held_elsewhere` and
    :meth:`refusal` answer any thread.
    """

    def __init__(
        self,
        database_id: str,
        database: Path | str,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        read_only: bool = False,
        roots: Callable[[], tuple[Path, ...]] = tuple,
        recursive: bool = True,
        clock: Callable[[], float] = time.time,
        may_write: Callable[[Path], bool] = lambda _root: True,
    ) -> None:
        self.database_id = database_id
        self.may_write = may_write
        self._unproven: set[Path] = set()  # roots looked at but not written: not proven to be the library
        self.read_only = read_only
        self.recursive = recursive
        self.roots = roots
        self.database = str(database)
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self.host = host_name()
        self.pid = os.getpid()
        self._held: dict[Path, tuple[int, float]] = {}  # root -> (locked fd, last heartbeat)
        self._shared: set[Path] = set()  # roots whose marker another node of this database holds
        self._written: dict[Path, Path] = {}  # root -> the marker's real path (a symlinked root may move)
        self._elsewhere: dict[Path, Marker] = {}
        self._elsewhere_lock = threading.Lock()  # read by worker threads and /health
        self.changes = 0  # counts changes of held_elsewhere(), so callers record it only then
        self._subfolders = MarkerLookup(database_id, self.host, ttl_seconds=SUBFOLDER_RECHECK_SECONDS)
        self._subfolders_elsewhere: dict[Path, Marker] = {}  # guarded by _elsewhere_lock
        self.log = structlog.get_logger("vpod")

    def held_elsewhere(self) -> dict[Path, Marker]:
        """Roots another database's vpod holds, with its marker (as last read). Any thread."""
        with self._elsewhere_lock:
            return dict(self._elsewhere)

    def report(self) -> list[dict[str, object]]:
        """:meth:`held_elsewhere` as JSON-friendly data (``/health``, ``vpod status``)."""
        now = self.clock()
        return [marker.as_report(root, now) for root, marker in sorted(self.held_elsewhere().items())]

    def refusal(self, path: Path) -> str | None:
        """Why the file ``path`` must be left alone, or ``None``: it lies in a root another
        vpod holds (no I/O), or below a subfolder of its root that another vpod claimed
        (a marker between the file and its root; a few open(2) calls, each folder's
        answer reused for :data:`SUBFOLDER_RECHECK_SECONDS`). Any thread.

        Logs ``library_claimed_elsewhere`` (error, with ``subfolder = true``) the first
        time such a subfolder is met: this vpod keeps watching the rest of its root.
        """
        now = self.clock()
        for root, marker in self.held_elsewhere().items():
            if path == root or root in path.parents:
                return (
                    f"{path}: {root} is the library of {marker.describe(now)}; vpod leaves it to "
                    "that vpod and takes it over once that one stops"
                )
        inside = [root for root in self.roots() if root in path.parents]
        if not inside:
            return None
        found = self._subfolders.holder_of(path, below=max(inside, key=lambda root: len(root.parts)))
        if found is None:
            return None
        folder, marker = found
        with self._elsewhere_lock:
            known = self._subfolders_elsewhere.get(folder)
            self._subfolders_elsewhere[folder] = marker
        if known is None or known.database_id != marker.database_id:
            self.log.error(
                "library_claimed_elsewhere",
                root=str(folder),
                subfolder=True,
                holder=marker.describe(now),
                hint="another vpod claimed this folder inside a folder this one watches: this one leaves "
                "the folder and everything below it alone, watches the rest, and walks it once the other stops",
            )
        return (
            f"{path}: {folder} is the library of {marker.describe(now)}; vpod leaves it to that vpod "
            "and takes it over once that one stops"
        )

    def freed_subfolders(self) -> list[Path]:
        """Subfolders found claimed by another vpod (:meth:`refusal`) whose claim ended
        since: this vpod should walk them now (logged as ``library_claimed``). Main thread;
        one open(2) per such subfolder."""
        freed = []
        for folder, marker in list(self._subfolders_elsewhere.items()):
            if foreign_holder(folder, database_id=self.database_id, host=self.host, now=self.clock()) is None:
                with self._elsewhere_lock:
                    self._subfolders_elsewhere.pop(folder, None)
                self.log.info("library_claimed", root=str(folder), subfolder=True, previous=marker.describe(self.clock()))
                freed.append(folder)
        return freed

    def held_above(self, root: Path) -> tuple[Path, Marker] | None:
        """``(folder, marker)``: a live marker of another database whose vpod watches
        subfolders, in a folder above ``root`` (symlinks resolved): that vpod covers
        ``root``. ``None`` when there is none. One open(2) per folder above ``root``."""
        try:
            real = Path(os.path.realpath(root))
        except (OSError, ValueError):
            return None
        now = self.clock()
        for folder in real.parents:
            marker = foreign_holder(folder, database_id=self.database_id, host=self.host, now=now)
            if marker is not None and marker.recursive:
                return folder, marker
        return None

    def claim(self, root: Path) -> Marker | None:
        """Claim ``root`` for this database. Returns the marker of the vpod that holds it
        (another database; nothing is written then), or ``None`` when this vpod may work
        there: claimed now or before, or no marker can be kept (a missing or read-only
        folder: then there is nothing to protect or nothing vpod could change). With
        ``read_only``, only looks. A root not held yet is held elsewhere also when a vpod
        of another database that watches subfolders holds a folder above it
        (:meth:`held_above`); a root this vpod holds already stays its own.

        Logs ``library_claimed_elsewhere`` (error; ``marker`` names the marker found) when another vpod holds a root that
        was not known to be held, ``library_claim_taken_over`` (warning) when a marker
        of another database is replaced because its owner is gone,
        ``library_marker_not_written`` (warning) when the marker cannot be written.
        """
        self._shared.discard(root)
        if root in self._held:
            if self._still_named(root):
                return None
            # The marker was removed or replaced, or the path names another folder now (a
            # re-pointed symlink): the one written before is removed where it still is ours.
            self._give_up(root)
        holder: Marker | None
        above = self.held_above(root)
        if above is not None:
            where, holder = above  # a vpod watching a folder above covers this one: nothing is written
        elif self.read_only or not self.may_write(root):
            # Not proven to be the library (an empty mount point): nothing is written there.
            where, holder = root, foreign_holder(root, database_id=self.database_id, host=self.host, now=self.clock())
            if not self.read_only:
                self._unproven.add(root)
        else:
            self._unproven.discard(root)
            where, holder = root, self._claim(root)
        with self._elsewhere_lock:
            known = self._elsewhere.get(root)
            if holder is None:
                self._elsewhere.pop(root, None)
            else:
                self._elsewhere[root] = holder
        if (known is None) != (holder is None):
            self.changes += 1
        if holder is not None and (known is None or known.database_id != holder.database_id):
            self.log.error(
                "library_claimed_elsewhere",
                root=str(root),
                marker=str(where / MARKER_NAME),
                holder=holder.describe(self.clock()),
                hint="two vpods with different databases on one folder would rewrite each other's files: "
                "this one leaves the folder alone, and takes it over once the other stops",
            )
        return holder

    def retake(self, roots: tuple[Path, ...]) -> list[Path]:
        """Claim again each of ``roots`` that another vpod held; returns those now this
        vpod's (their holder stopped: logged as ``library_claimed``)."""
        freed = []
        for root, marker in self.held_elsewhere().items():
            if root in roots and self.claim(root) is None:
                self.log.info("library_claimed", root=str(root), previous=marker.describe(self.clock()))
                freed.append(root)
        return freed

    def _claim(self, root: Path) -> Marker | None:
        """Open, lock and write the marker of ``root``; the holder's marker when it is not ours."""
        path = root / MARKER_NAME
        for _ in range(3):  # a marker unlinked by its stopping owner after we opened it: again
            now = self.clock()
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
            except FileNotFoundError:
                return None  # the root is missing: it is claimed when it is watched
            except OSError as exc:
                self.log.warning("library_marker_not_written", root=str(root), error=f"{path}: {exc.strerror}")
                return None
            try:
                holder = self._take(fd, root, now)
            except OSError as exc:
                os.close(fd)
                self.log.warning("library_marker_not_written", root=str(root), error=f"{path}: {exc.strerror or exc}")
                return None
            if holder is _SIBLING_HOLDS:
                os.close(fd)
                self._shared.add(root)  # another node of this database holds it: shared
                return None
            if holder is not None:
                os.close(fd)
                return holder
            self._held[root] = (fd, now)
            self._written[root] = Path(os.path.realpath(root)) / MARKER_NAME
            if self._still_named(root):
                return None
            self._drop(root)
        return None

    def _take(self, fd: int, root: Path, now: float) -> Marker | None:
        """Lock and write the open marker ``fd``; the holder's marker when it is not ours to take."""
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        locked = _lock_exclusive(fd)
        previous = _read(fd)
        if locked and previous is not None and previous.database_id == self.database_id:
            return _SIBLING_HOLDS  # another node of this database: one vpod, the root is shared
        if locked or holds(previous, locked, database_id=self.database_id, host=self.host, now=now):
            return previous or Marker("?", "unknown (the marker is locked but unreadable)", "?", 0, now)
        if previous is not None and previous.database_id != self.database_id and not previous.released:
            self.log.warning(
                "library_claim_taken_over",
                root=str(root),
                previous=previous.describe(now),
                why="its vpod has ended" if previous.host == self.host and locked is False else "its heartbeat is stale",
            )
        self._write(fd, now)
        return None

    def _write(self, fd: int, now: float, *, released: bool = False) -> None:
        data = Marker(
            self.database_id, self.database, self.host, self.pid, now, self.heartbeat_seconds, released,
            self.recursive,
        ).encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))

    def renew(self) -> list[Path]:
        """Renew the heartbeat of each held marker that is due. A marker deleted or
        replaced meanwhile is claimed again; the roots another vpod took meanwhile are
        returned (logged by :meth:`claim`; the caller stops working there)."""
        now = self.clock()
        lost: list[Path] = []
        for root in list(self._shared):  # its node may have given it up: take it over
            if self.claim(root) is not None:
                lost.append(root)
        for root in [r for r in self._unproven if self.may_write(r)]:  # proven now: claimed
            if self.claim(root) is not None:
                lost.append(root)
        for root, (fd, last) in list(self._held.items()):
            if now - last < self.heartbeat_seconds:
                continue
            if self._still_named(root):
                try:
                    self._write(fd, now)
                    self._held[root] = (fd, now)
                except OSError as exc:
                    self.log.warning("library_marker_not_written", root=str(root), error=str(exc))
                continue
            self._give_up(root)  # removed or replaced: claim it anew
            if self.claim(root) is not None:
                lost.append(root)
        return lost

    def release(self, root: Path) -> None:
        """Give ``root`` up (no longer watched, or stopping): the marker is removed (marked
        ``released`` first, for a vpod that opened it just before) and the lock dropped,
        so another vpod may take the folder at once and nothing is left in it."""
        self._give_up(root)
        self._shared.discard(root)
        self._unproven.discard(root)
        with self._elsewhere_lock:
            if self._elsewhere.pop(root, None) is not None:
                self.changes += 1

    def _give_up(self, root: Path) -> None:
        """Remove the marker this vpod wrote for ``root`` (marked ``released`` first) where
        it was written, if it is still ours there, and drop its lock."""
        held = self._held.get(root)
        written = self._written.get(root, root / MARKER_NAME)  # where it was written, if the link moved
        if held is not None and self._still_named(root, written):
            try:
                self._write(held[0], self.clock(), released=True)
                os.unlink(written)
            except OSError:
                pass  # the lock still goes: on this host that frees the library
        self._drop(root)

    def release_all(self) -> None:
        """:meth:`release` every root (at shutdown)."""
        for root in list(self._held) + list(self._shared) + list(self.held_elsewhere()):
            self.release(root)

    def _still_named(self, root: Path, path: Path | None = None) -> bool:
        """True while ``path`` (default: the marker path of ``root``) names the file this
        vpod locked for ``root``."""
        try:
            ours = os.fstat(self._held[root][0])
            named = os.stat(path or root / MARKER_NAME, follow_symlinks=False)
        except (OSError, KeyError):
            return False
        return (ours.st_dev, ours.st_ino) == (named.st_dev, named.st_ino)

    def _drop(self, root: Path) -> None:
        held = self._held.pop(root, None)
        self._written.pop(root, None)
        if held is not None:
            os.close(held[0])  # closing the last descriptor drops the flock

