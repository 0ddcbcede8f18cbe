"""The PostgreSQL store's schema, versioned in ``vpod_schema`` and upgraded by migrations.

Like SQLite's (:mod:`vpod.db.schema`): each entry of :data:`MIGRATIONS` upgrades from
version i to i + 1, in one transaction, and a released migration is never edited. Nodes
of several vpod versions may share one database: the migration runs under an advisory
lock (one node at a time), and a node refuses a database whose schema is newer than it
understands, naming both versions.

What differs from SQLite's: a library's folder is per node (``library_mounts``), so
``files`` has no ``root``; temp files are kept as library + relative path, so any node
maps them to its own folder; times are epoch seconds of the database clock
(``clock_timestamp()``), the one clock every node shares.
"""

from __future__ import annotations

from vpod.db.pg_pool import PgConnection
from vpod.errors import StoreError

SCHEMA_LOCK_KEY = 0x7670_6F64_0001  # "vpod" + 1: pg_advisory_xact_lock key of migrations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE identity (database_id TEXT NOT NULL);
    INSERT INTO identity (database_id) VALUES (replace(gen_random_uuid()::text, '-', ''));
    CREATE TABLE libraries (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        uid TEXT NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', ''),
        created_at DOUBLE PRECISION NOT NULL,
        moved_at DOUBLE PRECISION
    );
    CREATE TABLE library_mounts (              -- each node's folder of each library
        library_id BIGINT NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
        node TEXT NOT NULL,
        path TEXT NOT NULL,
        PRIMARY KEY (library_id, node),
        UNIQUE (node, path)
    );
    CREATE TABLE owners (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('daemon', 'process')),
        node TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, pid_start TEXT,
        incarnation TEXT NOT NULL, version TEXT, workers INTEGER, clock_offset DOUBLE PRECISION,
        started_at DOUBLE PRECISION NOT NULL, heartbeat_at DOUBLE PRECISION NOT NULL,
        heartbeat_seconds DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION
    );
    CREATE TABLE files (
        id BIGSERIAL PRIMARY KEY,
        library_id BIGINT NOT NULL REFERENCES libraries (id),
        relpath BYTEA NOT NULL, dir BYTEA NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued','processing','done','failed','skipped')),
        size BIGINT, mtime_ns BIGINT, inode BIGINT, device BIGINT,
        fingerprint TEXT, result_fingerprint TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, permanent BOOLEAN NOT NULL DEFAULT false,
        not_before DOUBLE PRECISION NOT NULL DEFAULT 0, reason TEXT, last_error TEXT,
        worker TEXT, owner_id BIGINT REFERENCES owners (id),
        batch_id TEXT, queued_at DOUBLE PRECISION, started_at DOUBLE PRECISION,
        updated_at DOUBLE PRECISION NOT NULL,
        pending_actions TEXT, policy_digest TEXT,
        progress_percent DOUBLE PRECISION, eta_seconds DOUBLE PRECISION, progress_at DOUBLE PRECISION,
        policy_name TEXT, policy_why TEXT,
        lease_token TEXT, lease_until DOUBLE PRECISION,
        UNIQUE (library_id, relpath)
    );
    CREATE INDEX files_queued ON files (not_before, id) WHERE state = 'queued';
    CREATE INDEX files_leased ON files (lease_until) WHERE state = 'processing';
    CREATE INDEX files_by_dir ON files (library_id, dir);
    CREATE INDEX files_by_result ON files (result_fingerprint);
    CREATE INDEX files_by_owner ON files (owner_id) WHERE owner_id IS NOT NULL;
    CREATE TABLE tracks (
        file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL, type TEXT NOT NULL, codec TEXT, language TEXT, title TEXT,
        is_default BOOLEAN NOT NULL, is_forced BOOLEAN NOT NULL, channels INTEGER,
        PRIMARY KEY (file_id, idx)
    );
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY, source TEXT NOT NULL, node TEXT,
        started_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION,
        total_files INTEGER, success_count INTEGER, fail_count INTEGER, skipped_count INTEGER,
        total_duration_seconds DOUBLE PRECISION, stopped_early BOOLEAN
    );
    CREATE TABLE results (
        id BIGSERIAL PRIMARY KEY,
        batch_id TEXT, file_id BIGINT REFERENCES files (id) ON DELETE SET NULL,
        path BYTEA NOT NULL, success BOOLEAN NOT NULL, skipped BOOLEAN NOT NULL,
        changes INTEGER NOT NULL, actions TEXT, reason TEXT, error TEXT,
        started_at DOUBLE PRECISION, duration_seconds DOUBLE PRECISION,
        fingerprint_before TEXT, fingerprint_after TEXT, node TEXT
    );
    CREATE INDEX results_by_batch ON results (batch_id);
    CREATE TABLE temps (                        -- temp files, in a library (any node maps them) or not
        id BIGSERIAL PRIMARY KEY,
        library_id BIGINT REFERENCES libraries (id) ON DELETE CASCADE,
        node TEXT NOT NULL,                     -- who registered it (the folder's node when library_id is NULL)
        relpath BYTEA NOT NULL,                 -- below the library, or the absolute path on node
        created_at DOUBLE PRECISION NOT NULL,
        job_id BIGINT, lease_token TEXT
    );
    CREATE UNIQUE INDEX temps_in_library ON temps (library_id, relpath) WHERE library_id IS NOT NULL;
    CREATE UNIQUE INDEX temps_on_node ON temps (node, relpath) WHERE library_id IS NULL;
    CREATE TABLE daemon (node TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (node, key))
    """,
    # 2: each file's st_ctime (ns) with its other stat fields (vpod.fingerprint.StatKey),
    # as SQLite's migration 9: rows from before stay NULL and never prove a file untouched.
    """
    ALTER TABLE files ADD COLUMN ctime_ns BIGINT
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: PgConnection, location: str) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` inside the caller's transaction, one
    node at a time (a transaction-level advisory lock); returns the version found before.

    Raises:
        StoreError: the database's schema is newer than this vpod understands (another
            node runs a newer vpod: upgrade this one).
        psycopg.Error: a migration failed (the caller's transaction rolls it back).
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
    conn.execute("CREATE TABLE IF NOT EXISTS vpod_schema (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM vpod_schema").fetchone()
    found = int(row["version"]) if row is not None else 0
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"database {location} has schema version {found}, newer than this vpod understands "
            f"({SCHEMA_VERSION}); upgrade vpod on this node"
        )
    for version in range(found, SCHEMA_VERSION):
        for statement in MIGRATIONS[version].split(";"):
            if statement.strip():
                conn.execute(statement.encode())
    if row is None:
        conn.execute("INSERT INTO vpod_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
    elif found != SCHEMA_VERSION:
        conn.execute("UPDATE vpod_schema SET version = %s", (SCHEMA_VERSION,))
    return found


def schema_version(conn: PgConnection) -> int | None:
    """The schema version of the database (``None``: no vpod schema yet), for ``vpod doctor``."""
    exists = conn.execute("SELECT to_regclass('vpod_schema') IS NOT NULL AS present").fetchone()
    if exists is None or not exists["present"]:
        return None
    row = conn.execute("SELECT version FROM vpod_schema").fetchone()
    return None if row is None else int(row["version"])
