"""SIGTERM stops a command as Ctrl-C does.

A CI job that is cancelled, or a `kill`, sends SIGTERM; Python's default ends the process at
once, between any two instructions. Every command already stops cleanly on Ctrl-C (apply
starts no new call, lets those in flight finish, records them and saves the state), so the
console script (`cli.main`) makes SIGTERM raise the same KeyboardInterrupt, in the main
thread, where Python runs every signal handler. Only the exit code and the first word of
the message differ: 143 (128 + 15, as for a process that SIGTERM ended) and "terminated".
A second signal during the clean stop ends it sooner, as a second Ctrl-C does; the journal
keeps what was in flight (`kill -9` is the same case).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Final

EXIT_CODE: Final = 128 + signal.SIGTERM

_received = threading.Event()


def handle_sigterm() -> None:
    """From now on SIGTERM raises KeyboardInterrupt (in the main thread only: call there)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def received() -> bool:
    """Whether SIGTERM has arrived."""
    return _received.is_set()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    _received.set()
    raise KeyboardInterrupt
