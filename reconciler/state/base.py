"""The recorded state as a value, and the interface every state backend implements.

Everything outside `reconciler.state` sees only `State`, `LockInfo` and `StateBackend`:
the local JSON file is the default backend, and a shared PostgreSQL backend will sit behind
the same interface, so no caller may assume that the state is a file.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.model import ChannelData
from reconciler.ownership import Entry
from reconciler.plan import Call

if TYPE_CHECKING:
    from reconciler.audit.base import Ledger
    from reconciler.audit.entry import AuditEntry
    from reconciler.state.events import Event


@dataclass(frozen=True, slots=True)
class Doubt:
    """A write that was sent (or about to be) and never settled: it may or may not have
    changed the server. `request_id` names it in the audit ledger; `call` says what it did if
    it landed, so that a read-back can tell landed, not landed and landed partly apart."""

    request_id: str
    call: Call


@dataclass
class State:
    """The channel data the reconciler believes the server holds, per managed profile.

    Mutable on purpose: apply, import and `state rm` change `profiles` in place and then hand
    the state to `StateBackend.save`, which returns the saved copy with its new serial.
    """

    lineage: str | None  # UUID fixed at first save; None only for a state never saved
    serial: int  # incremented on every save; 0 for a state never saved
    workspace: str
    version: str  # live | test
    profiles: dict[str, ChannelData] = field(default_factory=dict)
    # Profiles whose last call may or may not have reached the server (the run died, or no
    # answer came and no read-back succeeded): `apply` reads them back before acting on them.
    unconfirmed: set[str] = field(default_factory=set)
    # Declared profiles that import or refresh found missing on the server: nothing is
    # planned for them (a warning says why) until the server has them again.
    missing: set[str] = field(default_factory=set)
    # The writes that left profiles unconfirmed, when known (a state written before they were
    # recorded has none): the read-back that settles them names them in the ledger.
    doubts: dict[str, tuple[Doubt, ...]] = field(default_factory=dict)
    # The entries of each profile that a call of ours wrote (`reconciler.ownership`): under
    # `owned`, the only ones a plan may delete without being told to.
    managed: dict[str, frozenset[Entry]] = field(default_factory=dict)

    @classmethod
    def new(cls, workspace: str, version: str) -> State:
        """The state of a workspace and version the reconciler has never recorded."""
        return cls(lineage=None, serial=0, workspace=workspace, version=version)

    def entry_count(self) -> int:
        """Recorded channel entries: the safety rail's denominator."""
        count = 0  # `ChannelData.entry_count` of each, inline: a state has 100,000 of them
        for data in self.profiles.values():
            for value in data.channels.values():
                count += 1 if type(value) is str else len(value)
        return count


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds (or held) the state lock, so that a blocked user knows whom to ask."""

    pid: int
    host: str
    command: str
    started_at: str  # UTC, ISO 8601; kept as text because it is only ever shown

    @classmethod
    def current(cls, command: str) -> LockInfo:
        """The details of this process, about to take the lock to run `command`."""
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return cls(pid=os.getpid(), host=socket.gethostname(), command=command, started_at=now)

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "command": self.command,
                "started_at": self.started_at}

    @classmethod
    def from_json(cls, data: Any) -> LockInfo:
        """Read holder details; anything unreadable becomes "unknown" rather than an error,
        because a damaged lock file must never stop a user from seeing or breaking the lock."""
        if not isinstance(data, dict):
            data = {}
        pid = data.get("pid")
        return cls(
            pid=pid if isinstance(pid, int) else 0,
            host=str(data.get("host", "unknown host")),
            command=str(data.get("command", "unknown command")),
            started_at=str(data.get("started_at", "unknown time")),
        )

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, running {self.command!r} since {self.started_at}"


class EventLog(Protocol):
    """Durable notes of what a running apply learns, folded into the state by the next `load`
    if the process dies before its `save`. Each method returns once its note is durable."""

    def record(self, event: Event | None, entries: Sequence[AuditEntry] = ()) -> None:
        """Put `entries` in the backend's ledger, then note `event` (`reconciler.state.
        events`), never the other way round: a note whose records were lost would settle a
        request the ledger never saw. A backend with transactions does both in one."""
        ...

    def close(self, *, discard: bool = False) -> None:
        """Stop logging; `discard`: nothing logged changes the state, so drop the log."""
        ...


class StateBackend(Protocol):
    """Where the recorded state of one workspace and version lives.

    The life of a changing command: `with backend.lock("apply"): state = backend.load(...)`,
    `log = backend.open_journal(state)`, make calls noting each in `log`, change
    `state.profiles` to match, `log.close()`, `state = backend.save(state)`.
    """

    def describe(self) -> str:
        """Where the state lives, for messages (a path, a database table...)."""
        ...

    def load(self, workspace: str | None, version: str | None) -> State:
        """The stored state, validated.

        Absent: `State.new(workspace, version)`. Unreadable or not a state:
        `StateCorruptError`. Recorded for another workspace or version: `StateMismatchError`;
        None accepts whatever the state records (`state list --state F` without FYNO_WSID),
        and an absent state then has workspace "" (which `save` refuses).
        """
        ...

    def lock(self, command: str) -> contextlib.AbstractContextManager[None]:
        """Hold the exclusive lock for the duration of the block.

        Held by another process: `StateLockedError` naming the holder and how to unlock.
        Re-entrant within one backend object.
        """
        ...

    def save(self, state: State) -> State:
        """Store `state` as the next serial (a first save also fixes a new lineage).

        Returns the saved state. Refuses (`StateError`) if the stored state is no longer
        the one `state` was loaded from, and never overwrites a stored state it cannot read.
        """
        ...

    def restore(self, state: State) -> None:
        """Store `state` exactly as it is (lineage, serial, every profile) where this backend
        holds no state yet: the destination of `state migrate`."""
        ...

    def ledger(self, *, durable: bool = False) -> Ledger:
        """The audit ledger of this state (`durable`: each record survives a power cut)."""
        ...

    def open_journal(self, state: State) -> EventLog:
        """Start the event log of a run on top of `state`, a saved state, under the lock."""
        ...

    def erase(self, state: State, distinct_ids: Collection[str]) -> State:
        """Under the lock: make every trace of `distinct_ids`, which `state` (loaded, current)
        no longer records, unreadable in the state and in every copy the backend keeps (a
        backup, a journal). Returns the state as saved."""
        ...

    def reseal(self, state: State) -> State:
        """Under the lock: store `state` and every copy kept again, under the backend's
        encryption as now configured (`state encrypt`, `state decrypt`)."""
        ...

    def unlock(self) -> LockInfo | None:
        """Break a stale lock; returns the holder it removed, None if there was no lock."""
        ...

    def lock_info(self) -> LockInfo | None:
        """The holder of the lock, None if there is no lock."""
        ...
