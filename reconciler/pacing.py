"""Pacing requests: exponential backoff with jitter between retries, and a shared rate limit."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base * 2**n, capped."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** attempt))
        return max(backoff, min(retry_after or 0.0, self.cap * 4))


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
