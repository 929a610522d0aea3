"""The PostgreSQL backend: one state, one lock and one ledger for every runner of a team.

Selected by `--backend postgresql://user@host/db` (or RECONCILER_BACKEND); the password comes
from libpq's usual places (PGPASSWORD, ~/.pgpass), never from the URL. The schema is kept by
`schema.py`'s migrations, run on first use and by `reconciler backend migrate`:

    reconciler_states     a row per workspace/version: lineage, serial
    reconciler_profiles   a row per profile: its channel object, what our calls wrote and its
                          requests in doubt (sealed with a key); unconfirmed, missing
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
from dataclasses import dataclass
from typing import Any, Final

import orjson
import psycopg

from reconciler import strictjson
from reconciler.audit.entry import AuditEntry
from reconciler.encryption import NO_ENCRYPTION, SEALED_MARK, Encryption
from reconciler.errors import StateCorruptError, StateError, StateLockedError
from reconciler.heap import collector_paused
from reconciler.model import ChannelData
from reconciler.state import codec
from reconciler.state.base import LockInfo, State, StateBackend
from reconciler.state.events import Begun, Event, apply_event, drop_profiles
from reconciler.state.pgconnect import (
    Connections,
    backend_error,
    database_errors,
    shown_url,
)
from reconciler.state.postgres_ledger import PostgresLedger
from reconciler.state.schema import migrate

LOCK_POLL_SECONDS: Final = 0.2
HOLDER_RETRIES: Final = 20
# A profile's row, in clear: its channel object's JSON, the JSON of what our calls wrote and
# its requests in doubt (`codec.profile_part`'s other members), unconfirmed, missing.
_Row = tuple[bytes | None, bytes | None, bool, bool]


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
        self._objects: dict[str, ChannelData] = {}  # the channel data each row was made of
        self._serial: int | None = None  # the stored serial this object last read or wrote
        self._lock_depth = 0
        self._lock_connection: psycopg.Connection[Any] | None = None
        self._mutex = threading.Lock()

    def describe(self) -> str:
        return f"{shown_url(self.url)} (workspace {self.workspace} version {self.version})"

    # loading and saving ----------------------------------------------------------------------

    @database_errors
    def load(self, workspace: str | None, version: str | None) -> State:
        # 100,000 rows and their objects: the collector paused, as the file backend does
        with collector_paused():
            return self._load(workspace, version)

    def _load(self, workspace: str | None, version: str | None) -> State:
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
                self._rows, self._objects, self._serial = {}, {}, None
                return State.new(*wanted)
            # Most rows hold channel data only: those come as two columns, the few others
            # whole (fewer values to convert at 100,000 rows).
            cursor.execute("SELECT distinct_id, channel FROM reconciler_profiles WHERE "
                           "workspace = %s AND version = %s AND extra IS NULL AND NOT "
                           "unconfirmed AND NOT missing", wanted, binary=True)
            fetched = [(distinct_id, channel, None, False, False)
                       for distinct_id, channel in cursor.fetchall()]
            cursor.execute("SELECT distinct_id, channel, extra, unconfirmed, missing FROM "
                           "reconciler_profiles WHERE workspace = %s AND version = %s AND "
                           "(extra IS NOT NULL OR unconfirmed OR missing)", wanted, binary=True)
            fetched += cursor.fetchall()
        if self.encryption.encrypts or any(
                (channel or b"").startswith(SEALED_MARK) or (extra or b"").startswith(SEALED_MARK)
                for _, channel, extra, _, _ in fetched):
            rows: dict[str, _Row] = {
                distinct_id: (self._open(distinct_id, channel), self._open(distinct_id, extra),
                              unconfirmed, missing)
                for distinct_id, channel, extra, unconfirmed, missing in fetched}
        else:  # in clear, as expected: nothing to open, row by row (a load reads 100,000)
            rows = {row[0]: row[1:] for row in fetched}
        state = codec.decode_document(self._document(head, rows), self.describe())
        self._rows, self._serial = rows, state.serial
        self._objects = dict(state.profiles)
        return state

    def _document(self, head: tuple[Any, ...], rows: dict[str, _Row]) -> dict[str, Any]:
        """The state document of the rows, for `codec` to check and build as a file's: the
        channel objects joined into one JSON text and parsed at once (strictly), which is
        several times faster than a parse per profile."""
        source = self.describe()
        channels = b",".join(orjson.dumps(distinct_id) + b":" + channel
                             for distinct_id, (channel, *_) in rows.items()
                             if channel is not None)
        try:
            profiles = strictjson.loads(b"{" + channels + b"}", what=f"{source} profiles")
            extras = {distinct_id: strictjson.loads(extra, what=f"{source} {distinct_id}")
                      for distinct_id, (_, extra, *_) in rows.items() if extra is not None}
        except strictjson.JSONError as error:
            raise StateCorruptError(str(error)) from None
        parts = [(distinct_id, {**(extras.get(distinct_id) or {}),
                                **({"unconfirmed": True} if row[2] else {}),
                                **({"missing": True} if row[3] else {})})
                 for distinct_id, row in rows.items()]
        document = codec.document_of(
            {"format_version": codec.FORMAT_VERSION, "lineage": str(head[0]),
             "serial": head[1], "workspace": self.workspace, "version": self.version}, parts)
        document["profiles"] = profiles
        return document

    @database_errors
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
            self._remember(saved, rows)
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
        """The rows to write: a profile whose channel data is the very object its row was
        made of, and which holds nothing else, is unchanged without being encoded again."""
        special = (state.unconfirmed | state.missing | state.doubts.keys()
                   | state.managed.keys())
        changed: dict[str, _Row | None] = {}
        for distinct_id in state.profiles.keys() | special | self._rows.keys():
            stored = self._rows.get(distinct_id)
            data = state.profiles.get(distinct_id)
            if (data is not None and distinct_id not in special and stored is not None
                    and stored[1:] == (None, False, False)
                    and self._objects.get(distinct_id) is data):
                continue
            row = _row(state, distinct_id)
            if row != stored:
                changed[distinct_id] = row
        return changed

    def _remember(self, state: State, rows: dict[str, _Row | None]) -> None:
        """Rows written: what is stored now, and the objects they were made of."""
        for distinct_id, row in rows.items():
            if row is None:
                self._rows.pop(distinct_id, None)
                self._objects.pop(distinct_id, None)
                continue
            self._rows[distinct_id] = row
            data = state.profiles.get(distinct_id)
            if data is None:
                self._objects.pop(distinct_id, None)
            else:
                self._objects[distinct_id] = data

    def _write(self, cursor: psycopg.Cursor[Any], rows: dict[str, _Row | None]) -> None:
        """Upsert the rows that hold something, delete those that no longer do."""
        gone = [name for name, row in rows.items() if row is None]
        if gone:
            cursor.execute("DELETE FROM reconciler_profiles WHERE workspace = %s AND version = "
                           "%s AND distinct_id = ANY(%s)", (self.workspace, self.version, gone))
        kept = [(self.workspace, self.version, name, self._seal(row[0]), self._seal(row[1]),
                 row[2], row[3]) for name, row in rows.items() if row is not None]
        if kept:
            cursor.executemany(
                "INSERT INTO reconciler_profiles (workspace, version, distinct_id, channel, "
                "extra, unconfirmed, missing) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT "
                "(workspace, version, distinct_id) DO UPDATE SET channel = EXCLUDED.channel, "
                "extra = EXCLUDED.extra, unconfirmed = EXCLUDED.unconfirmed, missing = "
                "EXCLUDED.missing", kept)

    def _seal(self, value: bytes | None) -> bytes | None:
        return None if value is None else self.encryption.seal_file("profile", value)

    def _open(self, distinct_id: str, stored: bytes | None) -> bytes | None:
        if stored is None:
            return None
        return self.encryption.open_file(bytes(stored), f"{self.describe()} profile "
                                                        f"{distinct_id}")

    # an apply's changes, call by call ------------------------------------------------------

    def open_journal(self, state: State) -> PostgresEventLog:
        if self._lock_depth == 0:
            raise StateError("an apply's changes are only recorded under the state lock")
        if state.lineage is None:
            raise StateError("a run's changes extend a saved state: save the new state first")
        return PostgresEventLog(self, state)

    @database_errors
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
                self._rows, self._objects = {}, {}
                rows = self._changed_rows(state)
                self._write(cursor, rows)
            self._remember(state, rows)
            self._serial = state.serial

    def ledger(self, *, durable: bool = False) -> PostgresLedger:
        del durable  # every commit is durable
        return PostgresLedger(self.connections, self.encryption)

    # erasure and sealing -------------------------------------------------------------------

    @database_errors
    def erase(self, state: State, distinct_ids: Collection[str]) -> State:
        if self._lock_depth == 0:
            raise StateError("profiles are only erased under the state lock")
        ids = set(distinct_ids)
        if ids & state.profiles.keys():
            raise StateError(f"still recorded: {', '.join(sorted(ids & state.profiles.keys()))}")
        drop_profiles(state, ids)
        return self.save(state)  # rows hold no history: a deleted row is gone

    @database_errors
    def reseal(self, state: State) -> State:
        # every row is written again, under the encryption now configured
        self._rows, self._objects = {}, {}
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
                                   "version = %s AND session = %s",
                                   (self.workspace, self.version, _backend_pid(connection)))
                connection.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key(),))
            connection.close()

    @database_errors
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

    @database_errors
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


@dataclass(slots=True)
class _Change:
    """One `record` call, waiting for the transaction that stores it."""

    event: Event | None
    row: _Row | None
    entries: Sequence[AuditEntry]
    done: bool = False
    error: BaseException | None = None


class PostgresEventLog:
    """An apply's changes, each with its ledger records, stored before `record` returns.

    Group commit: the calls that finish while a transaction is being committed are stored
    together in the next one (the first of them writes it, the others wait), so sixteen
    workers do not queue for sixteen commits, each holding the ledger's head row. A change
    and its records are always in one transaction; a batch is never split.
    """

    def __init__(self, backend: PostgresState, state: State) -> None:
        self._backend = backend
        self._ledger = backend.ledger()
        # A copy of its own: the apply changes its state after each record, with the same
        # `apply_event`; this copy tells which row an event leaves.
        self._shadow = dataclasses.replace(
            state, profiles=dict(state.profiles), unconfirmed=set(state.unconfirmed),
            missing=set(state.missing), doubts=dict(state.doubts), managed=dict(state.managed))
        self._mutex = threading.Lock()
        self._ready = threading.Condition()
        self._pending: list[_Change] = []
        self._writing = False
        self._bumped = False

    def record(self, event: Event | None, entries: Sequence[AuditEntry] = ()) -> None:
        with self._mutex:
            row = None
            if event is not None:
                apply_event(self._shadow, event)
                row = _row(self._shadow, event.distinct_id)
        change = _Change(event, row, entries)
        with self._ready:
            self._pending.append(change)
            while not change.done and self._writing:
                self._ready.wait()
            if not change.done:  # nobody is writing: this thread writes what is waiting
                self._writing = True
                batch, self._pending = self._pending, []
        if not change.done:
            error: BaseException | None = None
            try:
                self._store(batch)
            except psycopg.Error as failure:
                error = backend_error(self._backend.connections.url, failure)
            except BaseException as failure:
                error = failure
            with self._ready:
                for item in batch:
                    item.done, item.error = True, error
                self._writing = False
                self._ready.notify_all()
        if change.error is not None:
            raise change.error

    def _store(self, batch: list[_Change]) -> None:
        backend = self._backend
        bump = not self._bumped
        connection = backend.connections.get()
        with connection.transaction(), connection.cursor() as cursor:
            if all(isinstance(change.event, Begun) and not change.entries for change in batch):
                # As the file journal's `begin` line: handed over before the request is sent
                # (it survives our death, the server keeps it), not waited on to reach the
                # disk; the commit that settles the call flushes it too.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            # in one go: the records in the order their calls finished, then the rows
            self._ledger.append_all_in(connection, [entry for change in batch
                                                    for entry in change.entries])
            backend._write(cursor, {change.event.distinct_id: change.row for change in batch
                                    if change.event is not None})
            if bump:
                cursor.execute("UPDATE reconciler_states SET serial = serial + 1 WHERE "
                               "workspace = %s AND version = %s RETURNING serial",
                               (backend.workspace, backend.version))
                bumped = cursor.fetchone()
        with self._mutex:
            for change in batch:
                if change.event is not None:
                    backend._remember(self._shadow, {change.event.distinct_id: change.row})
            if bump and bumped is not None:
                self._bumped = True
                backend._serial = int(bumped[0])

    def close(self, *, discard: bool = False) -> None:
        del discard  # every change is already stored


def _row(state: State, distinct_id: str) -> _Row | None:
    part = codec.profile_part(state, distinct_id)
    if part is None:
        return None
    channel = part.pop("channel", None)
    unconfirmed, missing = part.pop("unconfirmed", False), part.pop("missing", False)
    return (None if channel is None else orjson.dumps(channel),
            orjson.dumps(part, option=orjson.OPT_SORT_KEYS) if part else None,
            unconfirmed, missing)


def _halves(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: its high and low 32 bits, unsigned."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _backend_pid(connection: psycopg.Connection[Any]) -> int:
    return int(connection.info.backend_pid)


if __debug__:
    def _check(backend: PostgresState) -> StateBackend:
        return backend  # mypy proves that the backend is a complete `StateBackend`
