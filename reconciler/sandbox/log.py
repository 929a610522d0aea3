"""The record of API requests the sandbox received, for tests to read over HTTP.

It holds what a test needs to judge a client (method, raw path, decoded distinct_id, body,
answer, whether the write happened, whether its answer was lost, which fault met it) and never
a header, so the API key cannot end up in it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

MAX_ENTRIES = 100_000
"""Oldest entries are dropped beyond this, so that a long benchmark cannot exhaust memory."""


@dataclass(frozen=True)
class LogEntry:
    """One API request and what became of it."""

    method: str
    path: str
    """The path exactly as received, still percent-encoded, with any query string."""
    distinct_id: str | None
    """The decoded distinct_id of the path, if the route has one."""
    body: Any
    """The request body as JSON, or its text if it was not JSON, or None if empty."""
    status: int
    """The status answered, or that would have been answered had the answer not been lost;
    0 when the connection was reset before the request was read."""
    performed: bool
    """The request reached the store and was carried out (a 2xx, or a partial delete)."""
    lost: bool
    """The connection was closed instead of answering (a lost answer, or a reset)."""
    time: float
    """`time.monotonic()` when the request was received."""
    fault: str | None = None
    """The injected fault that shaped the answer: reset | gateway | rejected (429, 5xx) |
    malformed; None otherwise (a lost answer says so in `lost`)."""


class RequestLog:
    """A thread-safe, bounded list of `LogEntry`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LogEntry] = deque(maxlen=MAX_ENTRIES)

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._entries)
        return [asdict(entry) for entry in entries]
