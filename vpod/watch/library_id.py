"""The library identity marker ``.vpod-library-id``: proof that a node's folder is the library.

Several nodes reach one library through their own paths (``[watch.libraries] NAME =
"/path"`` on each), often a network mount. A mount that is not ready (an empty mount
point) or a path that names another folder must not make a node take that library's
jobs: it would find none of their files and fail them all, or queue another folder's
files under this library's name. So each library root holds a small JSON file, written
once, naming the library's identity (:attr:`vpod.db.records.Library.uid`, its name when
the database has no uid) and the database's (:meth:`vpod.db.store.Store.database_id`).

Only on a database several nodes share (a server: :func:`vpod.instance.several_nodes`).
With SQLite (one machine, one node) every library folder counts as verified and no
marker is written, as before several nodes existed: a user who starts over with a new
SQLite file is not locked out of libraries an old one marked.

A node's folder for a library is **verified** only when the marker there names this
database and this library: a node claims jobs of a library, and queues its files, only
from a folder that holds its marker. It is not (``library_mount_unverified``, with the
reason) when the folder is missing or not a folder, holds no marker, or the marker names
another database or another library or cannot be read. A node claims no job of an
unverified library and queues none of its files; it never infers that a file was
deleted and requeues nothing. The check runs again every :data:`RECHECK_SECONDS`, so a
NAS that mounts late becomes verified without a restart (``library_mount_verified``),
and the folder is then walked for files that came meanwhile.

**When the marker is first written.** By a node (not ``--dry-run``) that finds no marker
in its folder of a library, when that folder holds something (an empty folder is what
an unmounted mount point looks like: it is never marked, never verified) and either the
database knows no file of the library yet (a new library) or one of the first files
found in the folder is a file the database knows in this library (a library from before
markers, proven by its content; a wrong folder shows none). So a brand-new library is
claimed from by no node until a file appears in some node's folder; that node marks it
at its next check, walks it, and the other nodes find the marker at theirs.

A node records in its daemon record each library it saw marked
(``library_marked.<uid>``), and from then on a marker that disappears (a mount point
whose share is gone but that holds files written while it was unmounted, a folder
re-created, a user who deleted the hidden file) makes that library unverified on it and
is never written again by it: the ``hint`` says how to restore the marker (a node that
never saw it may write it again, on the evidence above). The file is created with
``O_EXCL`` (open(2)): two nodes marking at once write one marker, and each then reads
the one that won (waiting up to :data:`_SETTLE_SECONDS` for its content). Its hidden
name is never queued (the default ``ignore`` has ``.*``, and it has no media extension).

:meth:`LibraryMounts.lost` answers, for a file a worker found gone, whether its library's
marker is gone too (the mount went away since the last check): then the file did not
vanish, the job is given back and the library is unverified at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import structlog

from vpod.db.records import Library
from vpod.db.store import Store, StoreError
from vpod.watch.intake import root_of

ID_MARKER_NAME = ".vpod-library-id"
RECHECK_SECONDS = 5.0
"""How often each library's folder is checked again (seconds): one stat(2) and one
small read per library."""
MARKED_KEY = "library_marked."
"""Prefix of the daemon-record keys (:meth:`vpod.db.store.Store.set_daemon_info`, this
node's record) that say this node saw a library marked: ``library_marked.<uid>`` =
the marker's time, epoch seconds."""
_MAX_MARKER_BYTES = 4096
_EVIDENCE_FILES = 50  # files of a folder without a marker looked up in the database
_SETTLE_SECONDS = 1.0  # how long a marker another node just created may stay empty (being written)
_OWN_NAMES = (".vpod-",)  # vpod's own files in a root do not make an empty mount point look mounted


@dataclass(frozen=True)
class LibraryIdentity:
    """The content of a ``.vpod-library-id`` marker.

    Attributes:
        database_id: the database's identity (32 hex digits).
        library_uid: the library's identity (32 hex digits); ``None`` when the database
            had none (a store before library uids): the name then identifies it.
        name: the library's name when it was marked (for people; renames keep the uid).
        node: the node that wrote it.
        written_at: when (epoch seconds).
    """

    database_id: str
    library_uid: str | None
    name: str
    node: str
    written_at: float

    @classmethod
    def parse(cls, data: bytes) -> LibraryIdentity | None:
        """The marker in ``data``; ``None`` when it is not one (empty, torn, foreign)."""
        try:
            fields = json.loads(data)
            uid = fields.get("library_uid")
            return cls(
                database_id=str(fields["database_id"]),
                library_uid=None if uid is None else str(uid),
                name=str(fields["name"]),
                node=str(fields.get("node", "")),
                written_at=float(fields.get("written_at", 0.0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def encode(self) -> bytes:
        """The file's bytes: one JSON object and a newline."""
        return (json.dumps({
            "vpod_library_id": 1, "database_id": self.database_id, "library_uid": self.library_uid,
            "name": self.name, "node": self.node, "written_at": self.written_at,
        }, sort_keys=True) + "\n").encode()

    def mismatch(self, database_id: str, library: Library) -> str | None:
        """Why this marker does not prove ``library`` of database ``database_id``, or
        ``None`` when it does (the uids match; by name when either has no uid)."""
        if self.database_id != database_id:
            return f"it marks a library of another vpod database (id {self.database_id})"
        if self.library_uid is not None and library.uid is not None:
            if self.library_uid != library.uid:
                return f"it marks another library of this database ({self.name!r}, uid {self.library_uid})"
        elif self.name != library.name:
            return f"it marks another library of this database ({self.name!r})"
        return None


def identity_key(library: Library) -> str:
    """The daemon-record key saying ``library`` was marked once (:data:`MARKED_KEY`)."""
    return MARKED_KEY + (library.uid or library.name)


def read_identity(root: Path) -> LibraryIdentity | None | str:
    """The marker in ``root``: the identity, ``None`` when there is no marker file, or
    why it cannot be used (unreadable, not a marker)."""
    try:
        fd = os.open(root / ID_MARKER_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{root / ID_MARKER_NAME} cannot be read: {exc.strerror}"
    try:
        data = os.read(fd, _MAX_MARKER_BYTES)
    except OSError as exc:
        return f"{root / ID_MARKER_NAME} cannot be read: {exc.strerror}"
    finally:
        os.close(fd)
    found = LibraryIdentity.parse(data)
    return found if found is not None else f"{root / ID_MARKER_NAME} is not a vpod library marker"


def write_identity(root: Path, identity: LibraryIdentity) -> bool:
    """Create the marker in ``root`` (``O_EXCL``, mode 0644, flushed with fsync(2)).
    False when one exists already (another node was first: read it).

    Raises:
        OSError: the folder is not writable, or the disk is full (a partial file is removed).
    """
    path = root / ID_MARKER_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, identity.encode())
        os.fsync(fd)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)
    return True


def _settled_identity(root: Path) -> None:
    """Wait (at most :data:`_SETTLE_SECONDS`) until the marker in ``root`` that another node
    just created (``O_EXCL``) reads as a marker: it is created empty, then written."""
    deadline = time.monotonic() + _SETTLE_SECONDS
    while isinstance(read_identity(root), str) and time.monotonic() < deadline:
        time.sleep(0.05)


def _holds_something(root: Path) -> bool:
    """Whether ``root`` has an entry that is not vpod's own (an unmounted mount point is empty)."""
    try:
        with os.scandir(root) as entries:
            return any(not entry.name.startswith(_OWN_NAMES) for entry in entries)
    except OSError:
        return False


class LibraryMounts:
    """Which of this node's libraries are verified by their marker; a part of the daemon
    the main loop ticks.

    Args:
        store: the database (libraries, their uids, the "marked once" records).
        names: this node's library folders now (folder -> name; a reload changes them).
        node: this node's name (written into new markers).
        read_only: never write a marker (``vpod run --dry-run``).
        shared: the database is shared by several nodes; when False (SQLite) nothing is
            checked: every library counts as verified.
        on_verified: called (main thread) with the roots of libraries that were
            unverified at the last check and are verified now: the caller walks them
            (their files were not queued meanwhile) and looks for work.
        clock: monotonic seconds, the main loop's.

    :meth:`verified`, :meth:`unverified` and :meth:`refusal` answer any thread.
    """

    def __init__(
        self,
        store: Store,
        names: Callable[[], dict[Path, str]],
        *,
        node: str,
        read_only: bool = False,
        shared: bool = True,
        on_verified: Callable[[list[Path]], None] = lambda roots: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.names = names
        self.node = node
        self.read_only = read_only
        self.shared = shared
        self.on_verified = on_verified
        self.clock = clock
        self._verified: frozenset[str] = frozenset()
        self._unverified: dict[str, str] = {}  # name -> reason
        self._libraries: dict[str, Library] = {}  # name -> the database's library, at the last check
        self._lock = threading.Lock()
        self._next = -float("inf")
        self._database_id: str | None = None
        self.log = structlog.get_logger("vpod")

    def verified(self) -> frozenset[str]:
        """Names of this node's libraries whose folder is proven (claim only these:
        :meth:`vpod.db.store.Store.claim` ``libraries=``). Any thread."""
        with self._lock:
            return self._verified

    def claim_libraries(self) -> frozenset[str] | None:
        """What to pass as :meth:`vpod.db.store.Store.claim` ``libraries=``: the
        :meth:`verified` names on a shared database; ``None`` (every library with a
        folder here, as before several nodes existed) on SQLite. Any thread."""
        return self.verified() if self.shared else None

    def proven(self, root: Path) -> bool:
        """Whether this node may write into ``root``, a watch root: always on SQLite;
        on a shared database, only when its library's folder is verified (never into
        an empty mount point or a folder whose marker is missing or wrong). Any thread."""
        if not self.shared:
            return True
        name = self.names().get(root)
        return name is not None and name in self.verified()

    def unverified(self) -> dict[str, str]:
        """This node's libraries that are not verified now, each with the reason. Any thread."""
        with self._lock:
            return dict(self._unverified)

    def refusal(self, path: Path) -> str | None:
        """Why the file ``path`` must not be queued (its library's folder is not
        verified), or ``None``. No I/O; any thread."""
        names = self.names()
        root = root_of(path, tuple(names))
        if root is None:
            return None
        reason = self.unverified().get(names[root])
        return None if reason is None else f"{path}: library {names[root]!r} at {root} is not verified: {reason}"

    def lost(self, path: Path) -> str | None:
        """Why the folder of the library holding ``path`` (a file a worker found gone) is
        no longer proven here, or ``None`` when it still is: its marker still names the
        library, so the file really vanished (deleted or renamed by someone). Also ``None``
        on SQLite and for a path in no library.

        When the folder is missing or its marker is gone, unreadable or changed (the
        mount went away since the last check), the library is made unverified at once
        (``library_mount_unverified``): this node claims no more of its jobs until a
        check proves the folder again, and the caller gives the job back instead of
        recording it vanished. One stat(2) and one small read; any thread.
        """
        if not self.shared or self._database_id is None:
            return None
        names = self.names()
        root = root_of(path, tuple(names))
        if root is None:
            return None
        name = names[root]
        with self._lock:
            library = self._libraries.get(name)
        if library is None:
            return None
        found = read_identity(root) if root.is_dir() else f"{root} is missing or not a folder (not mounted?)"
        if found is None:
            problem = f"{root / ID_MARKER_NAME} is gone (the share was unmounted?)"
        elif isinstance(found, str):
            problem = found
        else:
            mismatch = found.mismatch(self._database_id, library)
            if mismatch is None:
                return None
            problem = f"{root / ID_MARKER_NAME}: {mismatch}"
        with self._lock:
            known = name in self._unverified
            self._verified = self._verified - {name}
            self._unverified = {**self._unverified, name: problem}
        if not known:
            self.log.error(
                "library_mount_unverified", library=name, root=str(root), reason=problem, hint=self._hint(root, library)
            )
        return problem

    def tick(self, now: float) -> float:
        """Check every library when due (every :data:`RECHECK_SECONDS`); returns the next deadline."""
        if now >= self._next:
            self._next = now + RECHECK_SECONDS
            self.check()
        return self._next

    def reconfigure(self, _config: object) -> None:
        """A reload may have changed the folders: check at the next tick."""
        self._next = -float("inf")

    def check(self) -> None:
        """Check each library's folder now; log what changed (``library_mount_unverified``,
        ``library_mount_verified``) and hand the newly verified roots to ``on_verified``.
        A database that cannot be read keeps the previous answers."""
        if not self.shared:
            with self._lock:
                self._verified = frozenset(self.names().values())
            return
        try:
            if self._database_id is None:
                self._database_id = self.store.database_id()
            libraries = {library.name: library for library in self.store.libraries()}
            marked = {k for k in self.store.daemon_info() if k.startswith(MARKED_KEY)}
        except StoreError as exc:
            self.log.warning("library_mounts_not_checked", error=str(exc), retry_in_seconds=RECHECK_SECONDS)
            return
        verified: set[str] = set()
        unverified: dict[str, str] = {}
        newly: list[Path] = []
        before = self.unverified()
        for root, name in sorted(self.names().items()):
            library = libraries.get(name)
            problem = (
                "the database has no library of that name yet (it could not be recorded)"
                if library is None else self._problem(root, library, marked)
            )
            if problem is None:
                verified.add(name)
                if name in before:  # files that came meanwhile were not queued: walk it
                    newly.append(root)
                    self.log.info("library_mount_verified", library=name, root=str(root))
                continue
            unverified[name] = problem
            if before.get(name) != problem:
                self.log.error(
                    "library_mount_unverified", library=name, root=str(root), reason=problem,
                    hint=self._hint(root, library),
                )
        with self._lock:
            self._verified = frozenset(verified)
            self._unverified = unverified
            self._libraries = libraries
        if newly:
            self.on_verified(newly)

    def _problem(self, root: Path, library: Library, marked: set[str]) -> str | None:
        """Why ``root`` is not proven to be ``library``, or ``None``; writes the first
        marker (the rules in the module docstring)."""
        if not root.is_dir():
            return f"{root} is missing or not a folder (not mounted?)"
        assert self._database_id is not None
        found = read_identity(root)
        if isinstance(found, str):
            return found
        if found is not None:
            mismatch = found.mismatch(self._database_id, library)
            if mismatch is not None:
                return f"{root / ID_MARKER_NAME}: {mismatch}"
            if identity_key(library) not in marked:
                self._remember_marked(library, found.written_at)  # from now on a missing marker is suspicious
            return None
        if identity_key(library) in marked:
            return (
                f"no {ID_MARKER_NAME} in {root}, though this node saw the library marked before: "
                "this folder is not the library (a mount point whose share is not mounted?)"
            )
        if not _holds_something(root):
            return (
                f"{root} is empty and has no {ID_MARKER_NAME} (not mounted yet?): "
                "it is marked once a file of the library is in it"
            )
        if library.files and not self._holds_known_file(root):
            return (
                f"{root} has no {ID_MARKER_NAME} and none of the first {_EVIDENCE_FILES} files found in it is "
                "known in this library: the wrong folder, or one not mounted yet?"
            )
        if self.read_only:
            return f"{root} has no {ID_MARKER_NAME} and a --dry-run writes none (run a node without --dry-run once)"
        identity = LibraryIdentity(self._database_id, library.uid, library.name, self.node, time.time())
        try:
            written = write_identity(root, identity)
        except OSError as exc:
            return f"{root / ID_MARKER_NAME} cannot be written: {exc.strerror or exc}"
        if not written:  # another node was first: its marker decides, once its content is there
            _settled_identity(root)
            return self._problem(root, library, set())
        self._remember_marked(library, identity.written_at)
        self.log.info("library_marker_written", library=library.name, root=str(root), marker=str(root / ID_MARKER_NAME))
        return None

    def _remember_marked(self, library: Library, written_at: float) -> None:
        """Record in this node's daemon record that ``library`` was seen marked."""
        try:
            self.store.set_daemon_info(**{identity_key(library): f"{written_at:.3f}"})
        except StoreError as exc:
            self.log.warning("library_marked_not_recorded", library=library.name, error=str(exc))

    def _holds_known_file(self, root: Path) -> bool:
        """Whether one of the first :data:`_EVIDENCE_FILES` files found below ``root``
        (breadth first, hidden names and symlinks skipped) is one the database knows
        (:meth:`vpod.db.store.Store.file_record`): the folder holds this library's files."""
        folders, looked = [root], 0
        while folders and looked < _EVIDENCE_FILES:
            folder = folders.pop(0)
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(Path(entry.path))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                looked += 1
                if self.store.file_record(Path(entry.path)) is not None:
                    return True
                if looked >= _EVIDENCE_FILES:
                    break
        return False

    def _hint(self, root: Path, library: Library | None) -> str:
        """What to do about an unverified folder: mount it first; restore the marker
        only once the folder is the library (writing it into an empty mount point would
        prove the wrong folder)."""
        base = "this node claims and queues nothing of this library (nothing is requeued or forgotten) and looks again every 5 s"
        if not root.is_dir():
            return (
                f"{base}; mount the library's share at {root} (or correct its folder in [watch.libraries]): "
                f"its {ID_MARKER_NAME} is on the share"
            )
        if library is None or self._database_id is None:
            return base
        identity = LibraryIdentity(self._database_id, library.uid, library.name, self.node, 0.0)
        return (
            f"{base}; first check that {root} is the library with its share mounted (`findmnt {root}`, and its files "
            f"are there): an empty mount point is not; only then restore its marker: "
            f"printf '%s' '{identity.encode().decode().strip()}' > '{root / ID_MARKER_NAME}'"
        )
