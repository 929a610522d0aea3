"""Where the end-to-end tests' CLI processes keep state, lock and ledger: in files (the
default) or in PostgreSQL, chosen per test by the `store` fixture (conftest.py).

`ACTIVE` is the store of the running test. `sandboxproc.reconciler()` and `start_apply()` add
its `env(workdir)` to every CLI process they start, and the tests seed and read the recorded
state and the ledger through it (`sandboxproc.seed_state`, `recorded_state`, `loaded_state`,
`state_snapshot`, `ledgers.ledger_records`), never through the files themselves, so that one
test body checks either backend:

    FileStore       the CLI's default: `state/<workspace>-<version>.json` and
                    `state/audit.jsonl` under the working directory; the environment is left
                    alone
    PostgresStore   RECONCILER_BACKEND=<a database of the test's throwaway server>: one new,
                    empty database per working directory, made on first use (a test that
                    runs in several working directories, as the crash test does, gets one
                    for each, as it gets state files of their own on the file backend)

The test process reads PostgreSQL through the backend itself (`PostgresState`), as the CLI
does, and shows the state as the same JSON document a state file holds (`codec.encode`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from reconciler.audit import query
from reconciler.audit.report import opened
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.state import LocalStateFile, State, codec

if TYPE_CHECKING:
    from reconciler.state.postgres import PostgresState


def state_file(workdir: Path, workspace: str, version: str) -> Path:
    """Where the file backend keeps a workspace's state by default, under `workdir`."""
    return workdir / "state" / f"{workspace}-{version}.json"


class FileStore:
    """The file backend, as the CLI uses it without RECONCILER_BACKEND."""

    kind = "file"

    def env(self, workdir: Path) -> dict[str, str]:
        del workdir
        return {}

    def state_option(self, path: Path | str) -> list[str]:
        return ["--state", str(path)]

    def write(self, workdir: Path, document: dict[str, Any]) -> None:
        path = state_file(workdir, document["workspace"], document["version"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))

    def document(self, workdir: Path, workspace: str, version: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(state_file(workdir, workspace, version).read_text())
        return document

    def load(self, workdir: Path, workspace: str, version: str,
             encryption: Encryption = NO_ENCRYPTION) -> State:
        return LocalStateFile(state_file(workdir, workspace, version), encryption).load(
            workspace, version)

    def snapshot(self, workdir: Path, workspace: str, version: str) -> bytes:
        return state_file(workdir, workspace, version).read_bytes()

    def ledger_records(self, workdir: Path,
                       encryption: Encryption = NO_ENCRYPTION) -> list[dict[str, Any]]:
        return list(query(workdir / "state" / "audit.jsonl", encryption=encryption))

    def kept_elsewhere(self, workdir: Path) -> bytes:
        del workdir
        return b""  # everything is in files under the working directory


class PostgresStore:
    """The PostgreSQL backend, a new database per working directory."""

    kind = "postgresql"

    def __init__(self, new_database: Callable[[], str]) -> None:
        self._new_database = new_database
        self._urls: dict[Path, str] = {}

    def url(self, workdir: Path) -> str:
        """The database of `workdir`, made on first use."""
        key = Path(workdir).resolve()
        if key not in self._urls:
            self._urls[key] = self._new_database()
        return self._urls[key]

    def env(self, workdir: Path) -> dict[str, str]:
        return {"RECONCILER_BACKEND": self.url(workdir)}

    def state_option(self, path: Path | str) -> list[str]:
        del path  # the backend holds the state of FYNO_WSID / FYNO_VERSION
        return []

    def write(self, workdir: Path, document: dict[str, Any]) -> None:
        """The state the document describes, saved through the backend over the one it
        holds, if any; then given the document's lineage and serial, as a state file written
        over the old one would have them."""
        workspace, version = document["workspace"], document["version"]
        state = codec.decode_document(document, "a test's seed")
        with self._backend(workdir, workspace, version) as backend:
            held = backend.load(workspace, version)
            backend.save(dataclasses.replace(state, lineage=held.lineage, serial=held.serial))
            with backend.connections.get().transaction():
                backend.connections.get().execute(
                    "UPDATE reconciler_states SET lineage = %s, serial = %s WHERE workspace = %s "
                    "AND version = %s",
                    (document["lineage"], document["serial"], workspace, version))

    def document(self, workdir: Path, workspace: str, version: str) -> dict[str, Any]:
        document: dict[str, Any] = orjson.loads(self.snapshot(workdir, workspace, version))
        return document

    def load(self, workdir: Path, workspace: str, version: str,
             encryption: Encryption = NO_ENCRYPTION) -> State:
        with self._backend(workdir, workspace, version, encryption) as backend:
            state = backend.load(workspace, version)
        if state.lineage is None:
            raise FileNotFoundError(f"no state of {workspace} {version} in {self.url(workdir)}")
        return state

    def snapshot(self, workdir: Path, workspace: str, version: str) -> bytes:
        """The state as the file backend would hold it: serial and lineage included."""
        return codec.encode(self.load(workdir, workspace, version))

    def ledger_records(self, workdir: Path,
                       encryption: Encryption = NO_ENCRYPTION) -> list[dict[str, Any]]:
        with self._backend(workdir, "", "live", encryption) as backend:
            ledger = backend.ledger()
            return list(opened(ledger.chain().records(), ledger.keys))

    def kept_elsewhere(self, workdir: Path) -> bytes:
        """Every value of every row of the backend's tables (bytea as its bytes)."""
        import psycopg
        from psycopg import sql

        chunks: list[bytes] = []
        with psycopg.connect(self.url(workdir)) as connection:
            tables = [name for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'reconciler%'")]
            for table in tables:
                for row in connection.execute(
                        sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))):
                    chunks.extend(value if isinstance(value, bytes) else str(value).encode()
                                  for value in row)
        return b"\n".join(chunks)

    @contextlib.contextmanager
    def _backend(self, workdir: Path, workspace: str, version: str,
                 encryption: Encryption = NO_ENCRYPTION) -> Iterator[PostgresState]:
        from reconciler.state.postgres import PostgresState  # psycopg only when used

        backend = PostgresState(self.url(workdir), workspace, version, encryption)
        try:
            yield backend
        finally:
            backend.connections.get().close()


Store = FileStore | PostgresStore
ACTIVE: Store = FileStore()  # the `store` fixture sets it for a test, and puts it back after
