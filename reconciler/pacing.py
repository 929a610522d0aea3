"""Pacing requests: exponential backoff with jitter between retries, and a shared rate limit."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base * 2**n, capped.

    A request is sent at most `attempts` times, and waits at most `max_wait` seconds before
    any of them: a `Retry-After` longer than that (a server asking for hours or days) is not
    waited for; the request gives up at once. So one request, retries included, takes at
    most `attempts` x (the client's overall answer deadline + `max_wait`).
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`; None: give up instead."""
        if retry_after is not None and retry_after > self.max_wait:
            return None
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** attempt))
        return max(backoff, retry_after or 0.0)


DEFAULT_RETRY: Final = RetryPolicy()


class RateLimiter:
    """At most `rate` call starts per second across all workers (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._mutex = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._mutex:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)
