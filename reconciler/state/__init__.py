"""The recorded state: what the reconciler believes the server holds, and where it is kept.

Callers use `State`, `StateBackend` and `LockInfo` only; `LocalStateFile` is the default
backend and `default_state_path` its default location. Nothing outside this package may
assume that the state is a file.
"""

from __future__ import annotations

from reconciler.state.base import EventLog, LockInfo, State, StateBackend
from reconciler.state.codec import FORMAT_VERSION
from reconciler.state.local import LocalStateFile, default_state_path

__all__ = [
    "FORMAT_VERSION",
    "EventLog",
    "LocalStateFile",
    "LockInfo",
    "State",
    "StateBackend",
    "default_state_path",
]
