"""The collector settings and `keep`: data left to the end of the process is never freed one
by one, and a process that runs many commands (a test's) keeps nothing."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

from reconciler import heap

_FREED_AT_EXIT = """
import gc, os, sys
from reconciler import heap

class Loud:
    def __init__(self, name):
        self.name = name
    def __del__(self):
        os.write(1, f"freed {self.name}\\n".encode())  # sys.stdout may be gone by then

{setup}
kept, other = Loud("kept"), Loud("other")
heap.keep(kept)
del kept, other
gc.collect()
os.write(1, b"end\\n")
"""


def _run(setup: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _FREED_AT_EXIT.replace("{setup}", setup)],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.splitlines()


def test_kept_data_is_never_freed_in_a_process_that_ends_with_its_command() -> None:
    lines = _run("heap.ending_with_command()")
    assert lines == ["freed other", "end"]  # what is not kept goes as usual; the rest never


def test_nothing_is_kept_unless_the_process_ends_with_its_command() -> None:
    lines = _run("")
    assert lines == ["freed kept", "freed other", "end"]


def test_keep_in_a_test_process_holds_nothing() -> None:
    class Data:
        pass

    data = Data()
    ref = weakref.ref(data)
    heap.keep(data)
    del data
    gc.collect()
    assert ref() is None


def test_the_collector_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with heap.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
