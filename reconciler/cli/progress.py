"""Progress of a long run: a bar with ETA on a terminal, a periodic line in CI logs."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click


class Progress:
    """Counts finished calls; thread-safe, since apply's workers report from many threads."""

    def __init__(self, total: int, *, terminal: bool, label: str = "apply",
                 interval: float = 5.0) -> None:
        self._total = total
        self._done = 0
        self._label = label
        self._interval = interval
        self._started = time.monotonic()
        self._last_line = self._started
        self._mutex = threading.Lock()
        self._bar: Any = None
        if terminal and total:
            self._bar = click.progressbar(length=total, label=label, show_eta=True,
                                          show_percent=True, file=sys.stderr)
            self._bar.__enter__()

    def advance(self, calls: int) -> None:
        with self._mutex:
            self._done += calls
            if self._bar is not None:
                self._bar.update(calls)
                return
            now = time.monotonic()
            if now - self._last_line >= self._interval:
                self._last_line = now
                click.echo(self._line(now), err=True)

    def close(self) -> None:
        with self._mutex:
            if self._bar is not None:
                self._bar.__exit__(None, None, None)
                self._bar = None

    def _line(self, now: float) -> str:
        elapsed = now - self._started
        rate = self._done / elapsed if elapsed else 0.0
        done = min(self._done, self._total)
        percent = 100 * done / self._total if self._total else 100.0
        eta = f", ETA {(self._total - done) / rate:.0f} s" if rate and done < self._total else ""
        return (f"{self._label}: {done}/{self._total} calls ({percent:.0f}%), "
                f"{rate:.1f} calls/s{eta}")
