"""Garbage-collector settings for building and holding large, acyclic data, and leaving it
to the end of the process."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# What `keep` holds, once `ending_with_command` has made it: a list that holds itself.
_kept: list[object] | None = None


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic data.

    Building 100,000 profiles (configuration or state) allocates millions of small
    containers, which makes CPython rescan all of them again and again: that more than
    doubled load times, and parsed YAML or JSON holds no cycle to find.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def settle() -> None:
    """Exempt everything loaded so far from garbage collection for the rest of the process:
    left in the collector's generations, it would be rescanned by every later collection
    (about 5% of a 100,000-profile plan)."""
    gc.freeze()


def ending_with_command() -> None:
    """Say that this process ends when its command does (the console script, not a test
    that runs commands in its own process): from now on `keep` holds what it is given."""
    global _kept
    if _kept is None:
        _kept = []
        _kept.append(_kept)


def keep(*objects: object) -> None:
    """Leave `objects` to the end of the process, which returns their memory at once.

    Freed one by one as a command's locals go, the data of 100,000 profiles takes a quarter
    of a second. What `keep` holds is never freed: its list holds itself, and `gc.freeze`
    puts that cycle where no collection, not even the interpreter's last, looks. Nothing is
    held unless the process ends with its command (`ending_with_command`), so tests that
    run many commands in one process keep nothing.
    """
    if _kept is not None:
        _kept.extend(objects)
        gc.freeze()
