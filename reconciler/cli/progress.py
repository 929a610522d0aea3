"""Progress of a long run: a bar with ETA on a terminal, a periodic line in CI logs.

The bar is drawn here rather than by `click.progressbar`: click pads each redraw to the
widest line it has drawn and never clips to the terminal, so on a narrow terminal (or one
made narrower during the run) its line wraps, and the carriage return that should redraw it
only returns to the start of the last row: the terminal fills with copies. Here every
redraw is cut to one column less than the terminal's width, measured anew each time, and
clears the rest of the row instead of padding it.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import Final, TextIO

from reconciler.cli import streams
from reconciler.render.common import plural

REDRAW_EVERY: Final = 0.1  # seconds: 100,000 calls need not mean 100,000 redraws
CLEAR_TO_END: Final = "\x1b[K"
MIN_BAR: Final = 5  # narrower than this, the bar says nothing the percentage does not


class Progress:
    """Counts finished calls; thread-safe, since apply's workers report from many threads."""

    def __init__(self, total: int, *, terminal: bool, label: str = "apply",
                 interval: float = 5.0, stream: TextIO | None = None) -> None:
        self._total = total
        self._done = 0
        self._label = label
        self._interval = interval
        self._started = time.monotonic()
        self._last_line = self._started
        self._mutex = threading.Lock()
        self._stream = stream
        self._bar = terminal and total > 0
        self._drawn_at = 0.0
        if self._bar:
            self._draw(self._started)

    def advance(self, calls: int) -> None:
        with self._mutex:
            self._done += calls
            now = time.monotonic()
            if self._bar:
                if now - self._drawn_at >= REDRAW_EVERY or self._done >= self._total:
                    self._draw(now)
                return
            if now - self._last_line >= self._interval:
                self._last_line = now
                streams.echo(self._line(now), err=True)

    def close(self) -> None:
        with self._mutex:
            if self._bar:
                self._draw(time.monotonic())
                self._write("\n")
                self._bar = False

    def _line(self, now: float) -> str:
        rate, done = self._rate(now), min(self._done, self._total)
        percent = 100 * done / self._total if self._total else 100.0
        eta = f", ETA {(self._total - done) / rate:.0f} s" if rate and done < self._total else ""
        return (f"{self._label}: {done}/{plural(self._total, 'call')} ({percent:.0f}%), "
                f"{rate:.1f} calls/s{eta}")

    def _rate(self, now: float) -> float:
        elapsed = now - self._started
        return self._done / elapsed if elapsed else 0.0

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        self._write("\r" + bar_line(self._label, min(self._done, self._total), self._total,
                                    self._rate(now), terminal_columns(self._out()) - 1)
                    + CLEAR_TO_END)

    def _out(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def _write(self, text: str) -> None:
        streams.write(self._out(), text)


def bar_line(label: str, done: int, total: int, rate: float, width: int) -> str:
    """`apply [#####     ] 50% 5/10 ETA 3s`, at most `width` characters.

    The bar takes what the words leave; below `MIN_BAR` it goes, and what still does not fit
    is cut at the end, so that the line never wraps.
    """
    percent = 100 * done // total if total else 100
    eta = f" ETA {(total - done) / rate:.0f}s" if rate and done < total else ""
    words = f" {percent}% {done}/{total}{eta}"
    room = width - len(label) - len(words) - 3  # a space and the brackets
    if room >= MIN_BAR:
        filled = room * done // total if total else room
        line = f"{label} [{'#' * filled}{' ' * (room - filled)}]{words}"
    else:
        line = label + words
    return line[:max(width, 0)]


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to, asked again on every redraw (it may be
    resized); `COLUMNS` or 80 when the stream is not a terminal (`shutil`'s rule)."""
    if "COLUMNS" not in os.environ:
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            pass
    return shutil.get_terminal_size().columns
