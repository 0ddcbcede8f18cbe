"""Database schema, versioned with ``PRAGMA user_version`` and upgraded by migrations.

A file is identified by its watch root (library) and its path relative to that root,
stored as bytes (``os.fsencode``) so that any file name the OS allows, including
non-UTF-8 ones, round-trips exactly.
"""

from __future__ import annotations

from vpod.db.pool import DaemonConnectionPool
from vpod.errors import StoreError

# Each entry upgrades from version i to i + 1. Never edit a released migration; append.
MIGRATIONS: tuple[str, ...] = (
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
        for version in range(found, SCHEMA_VERSION):
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found
