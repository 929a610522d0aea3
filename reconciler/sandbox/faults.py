"""Deciding, request by request, which injected fault (if any) a request meets.

All draws come from one RNG seeded by `Faults.seed`, under a lock, so that a sequential run
is replayable; concurrent runs draw in arrival order, which is as reproducible as it gets.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from .settings import Faults


@dataclass(frozen=True)
class Rejection:
    """An answer given instead of handling the request: a 429 or a 5xx."""

    status: int
    message: str
    retry_after: str | None = None


def format_seconds(seconds: float) -> str:
    """A `Retry-After` value: whole seconds as an integer (the RFC form), else a decimal."""
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"


class FaultInjector:
    """The current `Faults`, their RNG and the request-rate bucket; swapped whole at runtime."""

    def __init__(self, faults: Faults) -> None:
        self._lock = threading.Lock()
        self.reset(faults)

    @property
    def faults(self) -> Faults:
        return self._faults

    def reset(self, faults: Faults) -> None:
        """Start over with new settings: a fresh RNG from their seed and a full bucket."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._tokens = max(1.0, faults.max_rps)
            self._refilled = time.monotonic()

    def reject(self) -> Rejection | None:
        """The rate limit, then throttling, then a server error; None lets the request through."""
        with self._lock:
            faults = self._faults
            if faults.max_rps > 0:
                wait = self._take_token(faults.max_rps)
                if wait > 0:
                    # whole seconds, rounded up: the form every client can parse
                    return Rejection(429, "Too many requests", str(max(1, math.ceil(wait))))
            if faults.throttle_rate + faults.error_rate == 0:
                return None
            # one draw for both, so that each rate is its exact share of all requests
            draw = self._rng.random()
            if draw < faults.throttle_rate:
                return Rejection(429, "Too many requests", format_seconds(faults.retry_after))
            if draw < faults.throttle_rate + faults.error_rate:
                if self._rng.random() < 0.5:
                    return Rejection(500, "Internal server error")
                return Rejection(503, "Service temporarily unavailable")
            return None

    def lose(self) -> bool:
        """Whether to drop the answer of a write that is about to be performed."""
        return self._draw(self._faults.lose_rate)

    def reset_connection(self) -> bool:
        """Whether to reset the connection of an API request before reading it."""
        return self._draw(self._faults.reset_rate)

    def malform(self) -> bool:
        """Whether an answer `malformed` covers is malformed this time."""
        return self._draw(self._faults.malformed_rate)

    def _draw(self, rate: float) -> bool:
        # no draw for a switched-off fault, so that it leaves the replay of the others as it was
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def _take_token(self, rate: float) -> float:
        """A token bucket holding one second's worth: 0 if a token was taken, else the wait."""
        now = time.monotonic()
        capacity = max(1.0, rate)
        self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / rate
