"""Database schema, versioned with ``PRAGMA user_version`` and upgraded by migrations.

A file is identified by its library (``libraries``: a name that stays when the folder
moves, see :mod:`vpod.libraries`) and its path relative to the library's folder, stored
as bytes (``os.fsencode``) so that any file name the OS allows, including non-UTF-8
ones, round-trips exactly. A file in progress names its owner (``owners``: which
daemon or ``vpod process``, on which host, alive while its heartbeat is fresh).
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from pathlib import Path
from typing import Callable, Union

from vpod.db.pool import DaemonConnectionPool
from vpod.errors import StoreError
from vpod.libraries import library_names

Migration = Union[str, Callable[[sqlite3.Connection], None]]
"""SQL statements separated by ``;``, or a function run inside the migration's transaction."""


def _named_libraries(conn: sqlite3.Connection) -> None:
    """6: libraries by name, and owners as records (in place, data carried over).

    Each distinct ``files.root`` becomes a library named by the rule of
    :func:`vpod.libraries.library_names` (its folder's name, made unique), so the daemon
    that watches it finds it under the name its config derives and may move it. The
    ``files`` table is rebuilt: identity (library_id, relpath) instead of (root, relpath);
    ``root`` stays as the library's folder on this node, for readers. Rows a
    ``vpod process`` (worker ``process-<pid>_<n>``) left in progress get an owner record
    with no heartbeat: dead, so they are released like any dead owner's.
    """
    conn.execute(
        "CREATE TABLE libraries (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " path TEXT UNIQUE, created_at REAL NOT NULL, moved_at REAL)"
    )
    conn.execute(
        "CREATE TABLE owners (id INTEGER PRIMARY KEY,"
        " kind TEXT NOT NULL CHECK (kind IN ('daemon', 'process')),"
        " host TEXT NOT NULL, pid INTEGER NOT NULL, pid_start TEXT, incarnation TEXT NOT NULL,"
        " started_at REAL NOT NULL, heartbeat_at REAL NOT NULL, heartbeat_seconds REAL NOT NULL, ended_at REAL)"
    )
    texts = [str(r[0]) for r in conn.execute("SELECT DISTINCT root FROM files ORDER BY root")]
    names = library_names([Path(t) for t in texts])
    conn.execute("CREATE TEMP TABLE roots_v5 (root TEXT PRIMARY KEY, library_id INTEGER NOT NULL)")
    for text in texts:  # two spellings of one folder ("/a", "/a/") become one library
        folder = os.fspath(Path(text))
        conn.execute(
            "INSERT INTO libraries (name, path, created_at) VALUES (?, ?, strftime('%s', 'now'))"
            " ON CONFLICT (path) DO NOTHING",
            (names[Path(text)], folder),
        )
        conn.execute(
            "INSERT INTO temp.roots_v5 (root, library_id) SELECT ?, id FROM libraries WHERE path = ?", (text, folder)
        )
    # Rebuilt as https://sqlite.org/lang_altertable.html#otheralter describes: a new table,
    # the rows copied, the old one dropped, the new one renamed. Foreign keys stay on (they
    # cannot be switched off inside a transaction), so dropping the old table fires the
    # ON DELETE actions of tracks and results: what they lose is put back after.
    conn.execute("CREATE TEMP TABLE tracks_v5 AS SELECT * FROM tracks")
    conn.execute("CREATE TEMP TABLE results_v5 AS SELECT id, file_id FROM results WHERE file_id IS NOT NULL")
    conn.execute("""
        CREATE TABLE files_v6 (
            id INTEGER PRIMARY KEY,
            library_id INTEGER NOT NULL REFERENCES libraries (id),
            root TEXT NOT NULL,                -- the library's folder on this node, for readers
            relpath BLOB NOT NULL, dir BLOB NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued','processing','done','failed','skipped')),
            size INTEGER, mtime_ns INTEGER, inode INTEGER, device INTEGER,
            fingerprint TEXT, result_fingerprint TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, permanent INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0, reason TEXT, last_error TEXT,
            worker TEXT,                       -- the thread's name, for people
            owner_id INTEGER REFERENCES owners (id),
            batch_id TEXT, queued_at REAL, started_at REAL, updated_at REAL NOT NULL,
            pending_actions TEXT, policy_digest TEXT,
            progress_percent REAL, eta_seconds REAL, progress_at REAL,
            UNIQUE (library_id, relpath)
        )""")
    columns = (
        "id, root, relpath, dir, state, size, mtime_ns, inode, device, fingerprint, result_fingerprint, attempts,"
        " permanent, not_before, reason, last_error, worker, batch_id, queued_at, started_at, updated_at,"
        " pending_actions, policy_digest, progress_percent, eta_seconds, progress_at"
    )
    conn.execute(
        f"INSERT INTO files_v6 (library_id, {columns}) SELECT m.library_id, {', '.join('f.' + c.strip() for c in columns.split(','))}"
        " FROM files AS f JOIN temp.roots_v5 AS m ON m.root = f.root"
    )
    before, after = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("files", "files_v6"))
    if before != after:
        raise StoreError(f"schema 6: {after} of {before} files carried over; the migration is rolled back")
    conn.execute("DROP TABLE files")
    conn.execute("ALTER TABLE files_v6 RENAME TO files")
    conn.execute("INSERT INTO tracks SELECT * FROM temp.tracks_v5")
    conn.execute(
        "UPDATE results SET file_id = (SELECT file_id FROM temp.results_v5 AS k WHERE k.id = results.id)"
        " WHERE id IN (SELECT id FROM temp.results_v5)"
    )
    conn.execute("DROP TABLE temp.tracks_v5")
    conn.execute("DROP TABLE temp.results_v5")
    conn.execute("DROP TABLE temp.roots_v5")
    conn.execute("CREATE INDEX files_by_state ON files (state, not_before, id)")
    conn.execute("CREATE INDEX files_by_dir ON files (library_id, dir)")
    conn.execute("CREATE INDEX files_by_result ON files (result_fingerprint)")
    conn.execute("CREATE INDEX files_by_owner ON files (owner_id) WHERE owner_id IS NOT NULL")
    legacy = {
        int(m.group(1))
        for (worker,) in conn.execute("SELECT DISTINCT worker FROM files WHERE state = 'processing'")
        if worker and (m := re.match(r"^process-(\d+)_\d+$", worker))
    }
    for pid in sorted(legacy):
        owner = conn.execute(
            "INSERT INTO owners (kind, host, pid, incarnation, started_at, heartbeat_at, heartbeat_seconds)"
            " VALUES ('process', '', ?, 'before-schema-6', 0, 0, 1) RETURNING id",
            (pid,),
        ).fetchone()[0]
        conn.execute(
            "UPDATE files SET owner_id = ? WHERE state = 'processing' AND worker GLOB ?", (owner, f"process-{pid}_*")
        )


# Each entry upgrades from version i to i + 1. Never edit a released migration; append.
MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        root TEXT NOT NULL,                -- watch root (library) the file belongs to
        relpath BLOB NOT NULL,             -- path below root, os.fsencode()d
        dir BLOB NOT NULL,                 -- folder part of relpath, for per-folder lookups
        state TEXT NOT NULL CHECK (state IN ('queued','processing','done','failed','skipped')),
        size INTEGER, mtime_ns INTEGER, inode INTEGER, device INTEGER,
        fingerprint TEXT,                  -- content when queued (size:blake2b of samples)
        result_fingerprint TEXT,           -- content after processing or found conforming
        attempts INTEGER NOT NULL DEFAULT 0,
        permanent INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        reason TEXT, last_error TEXT,
        worker TEXT, batch_id TEXT,
        queued_at REAL, started_at REAL, updated_at REAL NOT NULL,
        UNIQUE (root, relpath)
    );
    CREATE INDEX files_by_state ON files (state, not_before, id);
    CREATE INDEX files_by_dir ON files (root, dir);
    CREATE INDEX files_by_result ON files (result_fingerprint);
    CREATE TABLE tracks (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL, type TEXT NOT NULL, codec TEXT, language TEXT, title TEXT,
        is_default INTEGER NOT NULL, is_forced INTEGER NOT NULL, channels INTEGER,
        PRIMARY KEY (file_id, idx)
    );
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY, source TEXT NOT NULL,
        started_at REAL NOT NULL, ended_at REAL,
        total_files INTEGER, success_count INTEGER, fail_count INTEGER, skipped_count INTEGER,
        total_duration_seconds REAL, stopped_early INTEGER
    );
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        batch_id TEXT, file_id INTEGER REFERENCES files (id) ON DELETE SET NULL,
        path BLOB NOT NULL, success INTEGER NOT NULL, skipped INTEGER NOT NULL,
        changes INTEGER NOT NULL, actions TEXT, reason TEXT, error TEXT,
        started_at REAL, duration_seconds REAL,
        fingerprint_before TEXT, fingerprint_after TEXT
    );
    CREATE INDEX results_by_batch ON results (batch_id);
    CREATE TABLE temp_files (path BLOB PRIMARY KEY, created_at REAL NOT NULL);
    CREATE TABLE daemon (key TEXT PRIMARY KEY, value TEXT);
    """,
    # 2: the plan being applied, noted before the file is touched, so a change made by
    # an attempt killed before recording it is still counted exactly once.
    """
    ALTER TABLE files ADD COLUMN pending_actions TEXT
    """,
    # 3: the policy (Policy.digest) result_fingerprint was judged under, so content
    # handled under one policy is not taken as handled under another. Rows from before
    # stay NULL: they never vouch for a copy elsewhere (at worst it is probed again).
    """
    ALTER TABLE files ADD COLUMN policy_digest TEXT
    """,
    # 4: a remux's progress while the file is processing (vpod status): percent done,
    # the estimated seconds left, and when both were noted (epoch seconds).
    """
    ALTER TABLE files ADD COLUMN progress_percent REAL;
    ALTER TABLE files ADD COLUMN eta_seconds REAL;
    ALTER TABLE files ADD COLUMN progress_at REAL
    """,
    # 5: a random identity of this database, written into the marker (.vpod-library) of
    # each watched folder, so that a vpod with another database leaves the folder alone.
    """
    CREATE TABLE identity (database_id TEXT NOT NULL);
    INSERT INTO identity (database_id) VALUES (lower(hex(randomblob(16))))
    """,
    # 6: libraries by name, owners as records; see _named_libraries.
    _named_libraries,
    # 7: which policy judged the file and why (vpod.policy.selection: a rule, a folder
    # file, the library's policy, the default), for vpod status and people. Rows from
    # before stay NULL: not known.
    """
    ALTER TABLE files ADD COLUMN policy_name TEXT;
    ALTER TABLE files ADD COLUMN policy_why TEXT
    """,
    # 8: several nodes (issue 14; docs/architecture.md "Claims and leases"). A claim's
    # fencing token and when its lease ends (epoch seconds, the database's clock); who an
    # owner is among the nodes (its [node] name, version, workers, and its clock minus the
    # database's at its last heartbeat); each library's identity (its marker file names
    # it; made now for the libraries already there); the claim a temp file belongs to
    # (a sweeper removes it only once that lease is gone); the node that closed a batch.
    """
    ALTER TABLE files ADD COLUMN lease_token TEXT;
    ALTER TABLE files ADD COLUMN lease_until REAL;
    ALTER TABLE owners ADD COLUMN node TEXT;
    ALTER TABLE owners ADD COLUMN version TEXT;
    ALTER TABLE owners ADD COLUMN workers INTEGER;
    ALTER TABLE owners ADD COLUMN clock_offset REAL;
    ALTER TABLE libraries ADD COLUMN uid TEXT;
    UPDATE libraries SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
    CREATE UNIQUE INDEX libraries_by_uid ON libraries (uid);
    ALTER TABLE temp_files ADD COLUMN job_id INTEGER;
    ALTER TABLE temp_files ADD COLUMN lease_token TEXT;
    ALTER TABLE batches ADD COLUMN node TEXT;
    CREATE INDEX files_by_lease ON files (state, lease_until) WHERE state = 'processing'
    """,
    # 9: each file's st_ctime (ns) with its other stat fields (vpod.fingerprint.StatKey):
    # the kernel sets it on every change and no program can set it back, so size, mtime,
    # inode, device and ctime together prove a file untouched (vpod.unchanged). Rows from
    # before stay NULL: they never prove it (the file is looked at once more).
    """
    ALTER TABLE files ADD COLUMN ctime_ns INTEGER
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(pool: DaemonConnectionPool) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; returns the version found before.

    Raises:
        StoreError: the database is newer than this vpod (a downgrade), or a
            migration failed (it is rolled back as a whole).
    """
    with pool.transaction() as conn:
        found: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"database {pool.path} has schema version {found}, newer than this vpod "
                f"understands ({SCHEMA_VERSION}); upgrade vpod"
            )
        if 0 < found < SCHEMA_VERSION:
            holder = _other_daemon(Path(pool.path))
            if holder is not None:
                # Upgrading under it would leave that daemon unable to queue anything.
                raise StoreError(
                    f"database {pool.path} has schema version {found}, from an older vpod whose daemon "
                    f"(pid {holder}) is still running on it; this vpod would upgrade it to version "
                    f"{SCHEMA_VERSION}, which that daemon cannot use: stop that daemon (or restart it "
                    "with this release, which upgrades the database at its start), then run this again"
                )
        for version in range(found, SCHEMA_VERSION):
            step = MIGRATIONS[version]
            if callable(step):
                step(conn)
                continue
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found


def _other_daemon(database: Path) -> str | None:
    """The pid of another process's daemon holding ``DATABASE.lock`` (the flock of
    :class:`vpod.instance.InstanceLock`), or ``None`` when no other daemon runs on it."""
    lock = database.with_name(database.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if holder == str(os.getpid()):
            return None  # this daemon, starting: it upgrades its own database
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return holder or "unknown"
        return None
    finally:
        os.close(fd)
