"""Output written while calls are in flight, and a reader that goes away before the end.

When the program reading a command's output exits first (`reconciler apply ... | head`, a
CI log's reader killed), the next write raises `BrokenPipeError`. For a command that only
reads, that ends it (click exits 1, saying nothing, as `git log | head` does). `apply` writes
while its calls are in flight: a write that raised there would end the run half way, its
requests sent and journaled but the state never saved, for the sake of output nobody reads.

So what a run writes goes through `echo` and `write` here. The first broken pipe points the
stream's file descriptor at /dev/null (the recipe of Python's `signal` documentation), so
every later write, the interpreter's last flush included, succeeds unseen; the run goes on
to its end and records everything as usual; `closed()` names the streams lost, and the
command group then exits 1 saying so (`group.py`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TextIO

import click

_lost: set[str] = set()
_mutex = threading.Lock()

_NAMES = {1: "standard output", 2: "standard error"}


def echo(message: str, *, err: bool = False, nl: bool = True,
         color: bool | None = None) -> None:
    """`click.echo`, which a closed pipe does not stop."""
    try:
        click.echo(message, err=err, nl=nl, color=color)
    except BrokenPipeError:
        _silence(sys.stderr if err else sys.stdout)


def write(stream: TextIO, text: str) -> None:
    """`text` written to `stream` and flushed, which a closed pipe does not stop."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _silence(stream)


def closed() -> list[str]:
    """The streams whose reader went away during the command ("standard output", ...)."""
    with _mutex:
        return sorted(_lost)


def _silence(stream: TextIO) -> None:
    """Send what `stream` is still to write, and all it writes after, to /dev/null."""
    try:
        fd: int | None = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's buffer): it stays
        fd = None
    with _mutex:
        if fd is not None:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        _lost.add(_NAMES.get(fd, "an output") if fd is not None else "an output")
    with contextlib.suppress(OSError, ValueError):
        stream.flush()  # what was held for the closed pipe goes to /dev/null now


def reset() -> None:
    """Start a command with no stream lost (tests run many in one process)."""
    with _mutex:
        _lost.clear()
