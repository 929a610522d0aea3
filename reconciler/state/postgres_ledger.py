"""The PostgreSQL backend's audit ledger: the file ledger's records, rows of one chain.

Each record is stored as exactly the line `audit.jsonl` would hold (`ledger.seal`), so
`audit verify` judges it with the same rule (`ChainCheck` fed the rows in `seq` order). One
chain holds the records of every workspace, as one file does for a state directory: an append
locks the head row (`reconciler_ledger_head`, `SELECT ... FOR UPDATE`) in the transaction that
writes the record, so concurrent writers, on any workspace, extend it one at a time, without
gap or fork. The per-profile data keys (`keys.ProfileKeys`) are rows of
`reconciler_ledger_keys`, written in the same transaction as the record that needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import psycopg

from reconciler.audit.entry import ERASE_OPERATION, AuditEntry
from reconciler.audit.keys import PERSONAL, Profile, ProfileKeys
from reconciler.audit.ledger import parse_line, seal
from reconciler.audit.verify import ChainCheck
from reconciler.encryption import Encryption
from reconciler.errors import AuditError
from reconciler.state.pgconnect import Connections, backend_error, database_errors, shown_url

_BATCH = 2000  # rows fetched at a time when reading the whole chain


class PostgresLedger:
    """A `Ledger` in tables; every method runs on this thread's connection."""

    def __init__(self, connections: Connections, encryption: Encryption) -> None:
        self._connections = connections
        self.connections = connections  # for `database_errors`
        self.where = f"{shown_url(connections.url)} table reconciler_ledger"
        self.keys = ProfileKeys(_KeyRows(connections), encryption)

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        pass  # the connections belong to the backend

    def sync(self) -> None:
        pass  # every record was committed, durably

    @database_errors
    def check(self) -> None:
        connection = self._connections.get()
        if connection.execute("SELECT seq FROM reconciler_ledger_head").fetchone() is None:
            raise AuditError(f"{self.where}: the chain's head row is missing; run "
                             "`reconciler audit verify`")

    @database_errors
    def prepare(self, profiles: Iterable[Profile]) -> int:
        connection = self._connections.get()
        with connection.transaction():
            return self.keys.ensure(profiles, durable=True)

    @database_errors
    def append(self, entry: AuditEntry) -> None:
        connection = self._connections.get()
        with connection.transaction():
            self.append_in(connection, entry)

    def append_in(self, connection: psycopg.Connection[Any], entry: AuditEntry) -> None:
        """Append `entry` inside the caller's transaction on `connection`."""
        self.append_all_in(connection, [entry])

    def append_all_in(self, connection: psycopg.Connection[Any],
                      entries: Sequence[AuditEntry]) -> None:
        """Append `entries`, in order, inside the caller's transaction: the head is locked
        and moved once, and the rows go in one batch, whatever their number."""
        if not entries:
            return
        head = connection.execute("SELECT seq, hash FROM reconciler_ledger_head WHERE id = 1 "
                                  "FOR UPDATE").fetchone()
        if head is None:
            raise AuditError(f"{self.where}: the chain's head row is missing")
        # The row's key is its position: the record's `seq`, unless a ledger moved here from
        # a file kept a torn line (a row of its own, vouched for by the marker after it).
        last_row = connection.execute("SELECT coalesce(max(seq), 0) FROM "
                                      "reconciler_ledger").fetchone()
        row_key = 0 if last_row is None else int(last_row[0])
        seq, prev = int(head[0]), str(head[1])
        rows: list[tuple[Any, ...]] = []
        for entry in entries:
            body = entry.to_json()
            if entry.distinct_id is not None and entry.operation != ERASE_OPERATION:
                body = self.keys.seal(body, durable=True)
            seq, row_key = seq + 1, row_key + 1
            body["seq"], body["prev"] = seq, prev
            line, prev = seal(body)
            rows.append((row_key, line.rstrip(b"\n"), entry.workspace, entry.version,
                         entry.distinct_id))
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO reconciler_ledger (seq, line, workspace, version, "
                               "distinct_id) VALUES (%s, %s, %s, %s, %s)", rows)
        connection.execute("UPDATE reconciler_ledger_head SET seq = %s, hash = %s WHERE id = 1",
                           (seq, prev))

    @database_errors
    def erase(self, entry: AuditEntry) -> int:
        assert entry.operation == ERASE_OPERATION and entry.distinct_id is not None
        connection = self._connections.get()
        with connection.transaction():
            connection.execute("LOCK TABLE reconciler_ledger_keys IN EXCLUSIVE MODE")
            count = self.keys.erase((entry.workspace, entry.version, entry.distinct_id))
            self.append_in(connection, entry)
        return count

    @database_errors
    def rewrap(self) -> int:
        connection = self._connections.get()
        with connection.transaction():
            connection.execute("LOCK TABLE reconciler_ledger_keys IN EXCLUSIVE MODE")
            return self.keys.rewrap()

    @database_errors
    def unsealed(self, profile: Profile) -> int:
        connection = self._connections.get()
        count = 0
        for (line,) in connection.execute(
                "SELECT line FROM reconciler_ledger WHERE workspace = %s AND version = %s AND "
                "distinct_id = %s", profile):
            record = parse_line(bytes(line), self.where, 0)
            if (isinstance(record, dict) and "sealed" not in record
                    and record.get("operation") != ERASE_OPERATION
                    and any(record.get(name) for name in PERSONAL)):
                count += 1
        return count

    def records(self) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(self._lines(), 1):
            record = parse_line(line.rstrip(b"\n"), self.where, number)
            if isinstance(record, dict):
                yield record

    def lines(self) -> Iterator[bytes]:
        return self._lines()

    @database_errors
    def restore(self, lines: Iterable[bytes], keys: list[bytes]) -> int:
        connection = self._connections.get()
        count, seq, digest = 0, 0, ""
        with connection.transaction(), connection.cursor() as cursor:
            head = cursor.execute("SELECT seq FROM reconciler_ledger_head WHERE id = 1 FOR "
                                  "UPDATE").fetchone()
            if head is None or head[0]:
                raise AuditError(f"{self.where} already holds records: a ledger is only "
                                 "restored into an empty one")
            batch: list[tuple[Any, ...]] = []
            for line in lines:
                body = line.rstrip(b"\n")
                record = parse_line(body, self.where, count + 1)
                count += 1
                if isinstance(record, dict):
                    seq = int(record.get("seq") or count)
                    digest = str(record.get("hash") or "")
                    batch.append((count, body, record.get("workspace"), record.get("version"),
                                  record.get("distinct_id")))
                else:  # a torn line the file kept, and a marker record vouches for
                    batch.append((count, body, None, None, None))
            cursor.executemany("INSERT INTO reconciler_ledger (seq, line, workspace, version, "
                               "distinct_id) VALUES (%s, %s, %s, %s, %s)", batch)
            cursor.execute("UPDATE reconciler_ledger_head SET seq = %s, hash = %s WHERE id = 1",
                           (seq, digest))
            self.keys.lines.replace(keys)
        return count

    def chain(self) -> ChainCheck:
        return ChainCheck(self.where, self._lines)

    def _lines(self) -> Iterator[bytes]:
        """Every record's line, in `seq` order, a batch at a time (a named cursor)."""
        try:
            with self._connections.new(autocommit=False) as connection, \
                    connection.cursor(name="reconciler_ledger_lines") as cursor:
                cursor.itersize = _BATCH
                cursor.execute("SELECT line FROM reconciler_ledger ORDER BY seq")
                for (line,) in cursor:
                    yield bytes(line) + b"\n"
        except psycopg.Error as error:
            raise backend_error(self._connections.url, error) from None


class _KeyRows:
    """`keys.KeyLines` in `reconciler_ledger_keys`, on the caller's transaction."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self.where = f"{shown_url(connections.url)} table reconciler_ledger_keys"
        self._last = 0

    def read_new(self) -> tuple[bool, list[bytes]]:
        connection = self._connections.get()
        restart = False
        if self._last:
            # replaced since (an erasure elsewhere): the ids we read are gone
            row = connection.execute("SELECT count(*) FROM reconciler_ledger_keys WHERE id <= "
                                     "%s", (self._last,)).fetchone()
            restart = row is None or row[0] == 0
            if restart:
                self._last = 0
        rows = connection.execute("SELECT id, line FROM reconciler_ledger_keys WHERE id > %s "
                                  "ORDER BY id", (self._last,)).fetchall()
        if rows:
            self._last = rows[-1][0]
        return restart, [bytes(line) for _, line in rows]

    def append(self, lines: list[bytes], durable: bool) -> None:
        del durable  # committed with the transaction around it
        connection = self._connections.get()
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO reconciler_ledger_keys (line) VALUES (%s)",
                               [(line,) for line in lines])

    def replace(self, lines: list[bytes]) -> None:
        connection = self._connections.get()
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM reconciler_ledger_keys")
            cursor.executemany("INSERT INTO reconciler_ledger_keys (line) VALUES (%s)",
                               [(line,) for line in lines])
        self._last = 0
