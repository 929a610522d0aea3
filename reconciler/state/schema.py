"""The PostgreSQL backend's schema, created and upgraded by numbered migrations.

`migrate` applies, in order and each in its own transaction, the migrations the database has
not seen, under a transaction-level advisory lock so that runners starting at once do not
race. It runs on first use and as `reconciler backend migrate`. A database migrated by a newer
reconciler (a version above the last known here) is refused rather than misread.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from reconciler.errors import StateError
from reconciler.state.pgconnect import refusal

MIGRATION_LOCK: Final = 0x7265636F6E63696C  # "reconcil": one advisory key for migrations

MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (1, """
CREATE TABLE reconciler_states (
    workspace   text NOT NULL,
    version     text NOT NULL,
    lineage     text NOT NULL,
    serial      bigint NOT NULL,
    PRIMARY KEY (workspace, version)
);
CREATE TABLE reconciler_profiles (
    workspace   text NOT NULL,
    version     text NOT NULL,
    distinct_id text NOT NULL,
    channel     bytea,              -- its channel object as JSON (sealed with a key); NULL: none
    extra       bytea,              -- what our calls wrote and requests in doubt, likewise
    unconfirmed boolean NOT NULL,   -- a call's outcome unknown: read back before acting
    missing     boolean NOT NULL,   -- the server has no such profile
    PRIMARY KEY (workspace, version, distinct_id),
    FOREIGN KEY (workspace, version) REFERENCES reconciler_states ON DELETE CASCADE
);
CREATE TABLE reconciler_locks (
    workspace   text NOT NULL,
    version     text NOT NULL,
    pid         integer NOT NULL,
    host        text NOT NULL,
    command     text NOT NULL,
    started_at  text NOT NULL,
    session     integer NOT NULL,   -- the backend pid holding the advisory lock
    PRIMARY KEY (workspace, version)
);
CREATE TABLE reconciler_ledger (
    seq         bigint PRIMARY KEY,
    line        bytea NOT NULL,     -- the record exactly as the file ledger's line holds it
    workspace   text,
    version     text,
    distinct_id text
);
CREATE INDEX reconciler_ledger_profile ON reconciler_ledger (workspace, version, distinct_id);
CREATE TABLE reconciler_ledger_head (
    id          integer PRIMARY KEY CHECK (id = 1),
    seq         bigint NOT NULL,
    hash        text NOT NULL
);
INSERT INTO reconciler_ledger_head VALUES (1, 0, '');
CREATE TABLE reconciler_ledger_keys (
    id          bigserial PRIMARY KEY,
    line        bytea NOT NULL      -- a line of keys.ProfileKeys, as audit.keys holds it
);
"""),
)
LATEST: Final = MIGRATIONS[-1][0]


def _current(connection: psycopg.Connection[Any]) -> int | None:
    """The schema's version, read without creating anything; None before the first."""
    with connection.transaction():
        exists = connection.execute("SELECT to_regclass('reconciler_migrations')").fetchone()
        if exists is None or exists[0] is None:
            return None
        row = connection.execute("SELECT max(version) FROM reconciler_migrations").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def migrate(connection: psycopg.Connection[Any]) -> list[int]:
    """Bring the schema up to `LATEST`; the versions applied now (none when up to date)."""
    applied: list[int] = []
    try:
        if _current(connection) == LATEST:
            return applied  # no DDL at all: a role that may only read and write rows can run
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS reconciler_migrations (version "
                               "integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT "
                               "now())")
            done = {row[0] for row in connection.execute(
                "SELECT version FROM reconciler_migrations")}
            if done and max(done) > LATEST:
                raise StateError(f"the backend's schema is at version {max(done)}, written by "
                                 f"a newer reconciler (this one knows up to {LATEST}): upgrade "
                                 "reconciler")
            for version, sql in MIGRATIONS:
                if version not in done:
                    connection.execute(sql.encode())
                    connection.execute("INSERT INTO reconciler_migrations (version) VALUES (%s)",
                                       (version,))
                    applied.append(version)
    except psycopg.Error as error:
        raise StateError(f"cannot set up the backend's tables: {refusal(error)}") from None
    return applied
