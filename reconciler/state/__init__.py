"""The recorded state: what the reconciler believes the server holds, and where it is kept.

Callers use `State`, `StateBackend`, `LockInfo`, the events that change a state with
`apply_event`, the one function that applies them (`events.py`), and `holder_status`
(whether a lock's holder still runs: a question about a process, whatever backend holds
the lock) only; `LocalStateFile` is the default backend and `default_state_path` its
default location. Nothing outside this package may assume that the state is a file.
"""

from __future__ import annotations

from reconciler.state.base import Doubt, EventLog, LockInfo, State, StateBackend
from reconciler.state.codec import FORMAT_VERSION
from reconciler.state.events import (
    Begun,
    Event,
    Forgotten,
    Holds,
    Missing,
    Unchanged,
    apply_event,
)
from reconciler.state.local import LocalStateFile, default_state_path
from reconciler.state.lock import HolderStatus, holder_status

__all__ = [
    "FORMAT_VERSION",
    "Begun",
    "Doubt",
    "Event",
    "EventLog",
    "Forgotten",
    "HolderStatus",
    "Holds",
    "LocalStateFile",
    "LockInfo",
    "Missing",
    "State",
    "StateBackend",
    "Unchanged",
    "apply_event",
    "default_state_path",
    "holder_status",
]
