"""The PostgreSQL backend: one state, one lock and one ledger for every runner of a team.

Selected by `--backend postgresql://user@host/db` (or RECONCILER_BACKEND); the password comes
from libpq's usual places (PGPASSWORD, ~/.pgpass), never from the URL. The schema is kept by
`schema.py`'s migrations, run on first use and by `reconciler backend migrate`:

    reconciler_states     a row per workspace/version: lineage, serial
    reconciler_profiles   a row per profile: all the state holds of it (`codec.profile_part`),
                          sealed when a key is configured; `unconfirmed` shown as a column
    reconciler_locks      who holds each workspace/version's lock (pid, host, command, since)
    reconciler_ledger ... the audit ledger, see `postgres_ledger.py`

Built for scale rather than as a file copied into a table: `save` writes only the profiles
that changed since they were read, and during an apply each finished call changes its
profile's row in the same transaction that appends its ledger record (`PostgresEventLog`):
there is no journal, and a crash loses nothing that was confirmed. The first such change of a
run increments the serial, so a plan made before it is stale, as after a file backend's fold.

The lock is a session-level advisory lock per workspace/version, held on a connection of its
own for as long as the command runs: PostgreSQL frees it the moment the holder's connection
dies (kill -9 included), so a killed holder never needs `state unlock`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Final

import orjson
import psycopg

from reconciler import strictjson
from reconciler.audit.entry import AuditEntry
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.errors import StateCorruptError, StateError, StateLockedError
from reconciler.state import codec
from reconciler.state.base import LockInfo, State, StateBackend
from reconciler.state.events import Event, apply_event, drop_profiles
from reconciler.state.pgconnect import Connections, shown_url
from reconciler.state.postgres_ledger import PostgresLedger
from reconciler.state.schema import migrate

LOCK_POLL_SECONDS: Final = 0.2
HOLDER_RETRIES: Final = 20
_Row = tuple[bytes, bool]  # the part's JSON in clear, and whether the profile is unconfirmed


class PostgresState:
    """A `StateBackend` on PostgreSQL for one workspace and version."""

    def __init__(self, url: str, workspace: str, version: str,
                 encryption: Encryption = NO_ENCRYPTION, *, lock_timeout: float = 0.0) -> None:
        self.url = url
        self.workspace = workspace
        self.version = version
        self.encryption = encryption
        self.lock_timeout = lock_timeout
        self.connections = Connections(url)
        migrate(self.connections.get())
        self._rows: dict[str, _Row] = {}  # as stored, for `save` to write only what changed
        self._serial: int | None = None  # the stored serial this object last read or wrote
        self._lock_depth = 0
        self._lock_connection: psycopg.Connection[Any] | None = None
        self._mutex = threading.Lock()

    def describe(self) -> str:
        return f"{shown_url(self.url)} (workspace {self.workspace} version {self.version})"

    # loading and saving ----------------------------------------------------------------------

    def load(self, workspace: str | None, version: str | None) -> State:
        wanted = (workspace or self.workspace, version or self.version)
        if wanted != (self.workspace, self.version):
            raise StateError(f"{self.describe()} is not the state of workspace {wanted[0]} "
                             f"version {wanted[1]}")
        connection = self.connections.get()
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT lineage, serial FROM reconciler_states "
                           "WHERE workspace = %s AND version = %s", wanted)
            head = cursor.fetchone()
            if head is None:
                self._rows, self._serial = {}, None
                return State.new(*wanted)
            cursor.execute("SELECT distinct_id, part, unconfirmed FROM reconciler_profiles "
                           "WHERE workspace = %s AND version = %s", wanted)
            rows = {distinct_id: (self._open(distinct_id, part), unconfirmed)
                    for distinct_id, part, unconfirmed in cursor}
        source = self.describe()
        try:
            parts = [(distinct_id, strictjson.loads(part, what=f"{source} {distinct_id}"))
                     for distinct_id, (part, _) in rows.items()]
        except strictjson.JSONError as error:
            raise StateCorruptError(str(error)) from None
        state = codec.decode_document(codec.document_of(
            {"format_version": codec.FORMAT_VERSION, "lineage": str(head[0]),
             "serial": head[1], "workspace": wanted[0], "version": wanted[1]}, parts), source)
        self._rows, self._serial = rows, state.serial
        return state

    def save(self, state: State) -> State:
        with self.lock("save"), self._mutex:
            connection = self.connections.get()
            with connection.transaction(), connection.cursor() as cursor:
                serial = self._claim_serial(cursor, state)
                saved = dataclasses.replace(
                    state, lineage=state.lineage or str(uuid.uuid4()), serial=serial,
                    profiles=dict(state.profiles), unconfirmed=set(state.unconfirmed),
                    missing=set(state.missing), doubts=dict(state.doubts),
                    managed=dict(state.managed))
                if state.lineage is None:
                    cursor.execute("INSERT INTO reconciler_states (workspace, version, lineage, "
                                   "serial) VALUES (%s, %s, %s, %s)",
                                   (self.workspace, self.version, saved.lineage, serial))
                rows = self._changed_rows(saved)
                self._write(cursor, rows)
            self._rows.update((name, row) for name, row in rows.items() if row is not None)
            for name in [name for name, row in rows.items() if row is None]:
                self._rows.pop(name, None)
            self._serial = serial
            return saved

    def _claim_serial(self, cursor: psycopg.Cursor[Any], state: State) -> int:
        """The next serial, if the stored state is still the one `state` came from."""
        cursor.execute("SELECT lineage, serial FROM reconciler_states WHERE workspace = %s "
                       "AND version = %s FOR UPDATE", (self.workspace, self.version))
        head = cursor.fetchone()
        stored = None if head is None else (str(head[0]), int(head[1]))
        loaded = None if state.lineage is None else (state.lineage, self._serial)
        if stored != loaded:
            raise StateError(f"the state {self.describe()} changed since this run loaded it; "
                             "nothing was saved. Run the command again to work from the "
                             "current state.")
        serial = 1 if stored is None else stored[1] + 1
        if stored is not None:
            cursor.execute("UPDATE reconciler_states SET serial = %s WHERE workspace = %s AND "
                           "version = %s", (serial, self.workspace, self.version))
        return serial

    def _changed_rows(self, state: State) -> dict[str, _Row | None]:
        ids = (state.profiles.keys() | state.unconfirmed | state.missing | state.doubts.keys()
               | state.managed.keys() | self._rows.keys())
        changed: dict[str, _Row | None] = {}
        for distinct_id in ids:
            row = _row(state, distinct_id)
            if row != self._rows.get(distinct_id):
                changed[distinct_id] = row
        return changed

    def _write(self, cursor: psycopg.Cursor[Any], rows: dict[str, _Row | None]) -> None:
        """Upsert the rows that hold something, delete those that no longer do."""
        gone = [name for name, row in rows.items() if row is None]
        if gone:
            cursor.execute("DELETE FROM reconciler_profiles WHERE workspace = %s AND version = "
                           "%s AND distinct_id = ANY(%s)", (self.workspace, self.version, gone))
        kept = [(self.workspace, self.version, name, self._seal(row[0]), row[1])
                for name, row in rows.items() if row is not None]
        if kept:
            cursor.executemany(
                "INSERT INTO reconciler_profiles (workspace, version, distinct_id, part, "
                "unconfirmed) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (workspace, version, "
                "distinct_id) DO UPDATE SET part = EXCLUDED.part, unconfirmed = "
                "EXCLUDED.unconfirmed", kept)

    def _seal(self, part: bytes) -> bytes:
        return self.encryption.seal_file("profile", part)

    def _open(self, distinct_id: str, stored: bytes) -> bytes:
        return self.encryption.open_file(bytes(stored), f"{self.describe()} profile "
                                                        f"{distinct_id}")

    # an apply's changes, call by call ------------------------------------------------------

    def open_journal(self, state: State) -> PostgresEventLog:
        if self._lock_depth == 0:
            raise StateError("an apply's changes are only recorded under the state lock")
        if state.lineage is None:
            raise StateError("a run's changes extend a saved state: save the new state first")
        return PostgresEventLog(self, state)

    def restore(self, state: State) -> None:
        with self.lock("state migrate"):
            connection = self.connections.get()
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM reconciler_states WHERE workspace = %s AND "
                               "version = %s", (self.workspace, self.version))
                if cursor.fetchone() is not None:
                    raise StateError(f"{self.describe()} already holds a state: a state is only "
                                     "moved to where there is none")
                cursor.execute("INSERT INTO reconciler_states (workspace, version, lineage, "
                               "serial) VALUES (%s, %s, %s, %s)",
                               (self.workspace, self.version, state.lineage, state.serial))
                self._rows = {}
                rows = self._changed_rows(state)
                self._write(cursor, rows)
            self._rows = {name: row for name, row in rows.items() if row is not None}
            self._serial = state.serial

    def ledger(self, *, durable: bool = False) -> PostgresLedger:
        del durable  # every commit is durable
        return PostgresLedger(self.connections, self.encryption)

    # erasure and sealing -------------------------------------------------------------------

    def erase(self, state: State, distinct_ids: Collection[str]) -> State:
        if self._lock_depth == 0:
            raise StateError("profiles are only erased under the state lock")
        ids = set(distinct_ids)
        if ids & state.profiles.keys():
            raise StateError(f"still recorded: {', '.join(sorted(ids & state.profiles.keys()))}")
        drop_profiles(state, ids)
        return self.save(state)  # rows hold no history: a deleted row is gone

    def reseal(self, state: State) -> State:
        self._rows = {}  # every row is written again, under the encryption now configured
        return self.save(state)

    # the lock -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        connection = self.connections.new(autocommit=True)
        try:
            self._acquire(connection, command)
        except BaseException:
            connection.close()
            raise
        self._lock_connection, self._lock_depth = connection, 1
        try:
            yield
        finally:
            self._lock_depth = 0
            self._lock_connection = None
            with contextlib.suppress(psycopg.Error):
                connection.execute("DELETE FROM reconciler_locks WHERE workspace = %s AND "
                                   "version = %s AND pid = %s",
                                   (self.workspace, self.version, _backend_pid(connection)))
                connection.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key(),))
            connection.close()

    def _acquire(self, connection: psycopg.Connection[Any], command: str) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            got = connection.execute("SELECT pg_try_advisory_lock(%s)",
                                     (self._lock_key(),)).fetchone()
            if got is not None and got[0]:
                break
            if time.monotonic() >= deadline:
                holder = self._holder()
                who = "another session" if holder is None else str(holder)
                waited = f" (waited {self.lock_timeout:g} s)" if self.lock_timeout else ""
                raise StateLockedError(
                    f"the state {self.describe()} is locked by {who}{waited}. It is freed the "
                    "moment that process ends, even if it is killed: wait for it, or give "
                    "--lock-timeout SECONDS to wait")
            time.sleep(LOCK_POLL_SECONDS)
        info = LockInfo.current(command)
        connection.execute(
            "INSERT INTO reconciler_locks (workspace, version, pid, host, command, started_at,"
            " session) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (workspace, version) DO "
            "UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host, command = EXCLUDED.command, "
            "started_at = EXCLUDED.started_at, session = EXCLUDED.session",
            (self.workspace, self.version, info.pid, info.host, info.command, info.started_at,
             _backend_pid(connection)))

    def _holder(self) -> LockInfo | None:
        """The holder of a lock just found taken: it writes its row right after taking the
        lock, so a moment later it is there."""
        for _ in range(HOLDER_RETRIES):
            holder = self.lock_info()
            if holder is not None:
                return holder
            time.sleep(LOCK_POLL_SECONDS / 2)
        return None

    def lock_info(self) -> LockInfo | None:
        """The holder, if a live session holds the lock; a killed holder holds nothing."""
        connection = self.connections.get()
        with connection.transaction():
            row = connection.execute(
                "SELECT l.pid, l.host, l.command, l.started_at FROM reconciler_locks l "
                "JOIN pg_locks p ON p.locktype = 'advisory' AND p.granted AND p.pid = l.session "
                "AND p.classid::bigint = %s AND p.objid::bigint = %s "
                "WHERE l.workspace = %s AND l.version = %s",
                (*_halves(self._lock_key()), self.workspace, self.version)).fetchone()
        if row is None:
            return None
        return LockInfo(pid=row[0], host=row[1], command=row[2], started_at=row[3])

    def unlock(self) -> LockInfo | None:
        """Nothing to break: a lock whose holder died is already free. A live holder's lock
        is refused, naming it."""
        holder = self.lock_info()
        if holder is not None:
            raise StateLockedError(f"the state {self.describe()} is locked by {holder}, a live "
                                   "session: stop that process and its lock is freed at once")
        return None

    def _lock_key(self) -> int:
        digest = hashlib.sha256(f"reconciler {self.workspace} {self.version}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


class PostgresEventLog:
    """An apply's changes, each with its ledger records, one transaction per finished call."""

    def __init__(self, backend: PostgresState, state: State) -> None:
        self._backend = backend
        self._ledger = backend.ledger()
        # A copy of its own: the apply changes its state after each record, with the same
        # `apply_event`; this copy tells which row an event leaves.
        self._shadow = dataclasses.replace(
            state, profiles=dict(state.profiles), unconfirmed=set(state.unconfirmed),
            missing=set(state.missing), doubts=dict(state.doubts), managed=dict(state.managed))
        self._mutex = threading.Lock()
        self._bumped = False

    def record(self, event: Event | None, entries: Sequence[AuditEntry] = ()) -> None:
        backend = self._backend
        row = None
        with self._mutex:
            if event is not None:
                apply_event(self._shadow, event)
                row = _row(self._shadow, event.distinct_id)
            bump, self._bumped = not self._bumped, True
        connection = backend.connections.get()
        with connection.transaction(), connection.cursor() as cursor:
            for entry in entries:
                self._ledger.append_in(connection, entry)
            if event is not None:
                backend._write(cursor, {event.distinct_id: row})
            if bump:
                cursor.execute("UPDATE reconciler_states SET serial = serial + 1 WHERE "
                               "workspace = %s AND version = %s RETURNING serial",
                               (backend.workspace, backend.version))
                bumped = cursor.fetchone()
        with self._mutex:
            if event is not None:
                if row is None:
                    backend._rows.pop(event.distinct_id, None)
                else:
                    backend._rows[event.distinct_id] = row
            if bump and bumped is not None:
                backend._serial = int(bumped[0])

    def close(self, *, discard: bool = False) -> None:
        del discard  # every change is already stored


def _row(state: State, distinct_id: str) -> _Row | None:
    part = codec.profile_part(state, distinct_id)
    if part is None:
        return None
    return orjson.dumps(part, option=orjson.OPT_SORT_KEYS), bool(part.get("unconfirmed"))


def _halves(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: its high and low 32 bits, unsigned."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _backend_pid(connection: psycopg.Connection[Any]) -> int:
    return int(connection.info.backend_pid)


if __debug__:
    def _check(backend: PostgresState) -> StateBackend:
        return backend  # mypy proves that the backend is a complete `StateBackend`
