"""When each step of a `plan` or `show` starts and ends, in the command's own process and in
the one working beside it: where the time of a two-process run goes.

    python bench/timeline.py plan bench/_work/100000/profiles.yaml --state ... --no-color

runs the command in this process (output discarded), with the steps below wrapped so that
each prints, on stderr, the wall time since the start, the process (`main` or `beside`), and
the CPU time and the peak memory (RSS) that process has used. A cProfile of a two-process
run sees only one of them; this sees both, and shows which one the other waits for.
"""

from __future__ import annotations

import functools
import io
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

START = time.perf_counter()
MAIN = os.getpid()


def say(event: str) -> None:
    who = "main" if os.getpid() == MAIN else "beside"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{time.perf_counter() - START:7.2f} s  {who:6}  cpu {time.process_time():6.2f} s"
          f"  peak {peak:4} MB  {event}", file=sys.stderr)


def timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        say(f"{label} starts")
        try:
            return original(*args, **kwargs)
        finally:
            say(f"{label} ends")

    setattr(owner, name, wrapper)


def main() -> None:
    import click

    import reconciler.beside as beside
    import reconciler.cli.planning as planning
    import reconciler.cli.prepared as prepared
    import reconciler.config.loader as loader
    import reconciler.planview as planview
    import reconciler.render.formats as formats
    from reconciler.state import LocalStateFile

    say("imported")
    timed(loader, "assumed_text", "parse and assume a file")
    timed(loader, "confirms", "read and check a file again")
    timed(loader, "config_digest", "digest of a pair")
    timed(LocalStateFile, "load", "load a state")
    timed(planning, "plan_pairs", "plan")
    timed(prepared.PreparedOutput, "make", "save and render, held back")
    timed(prepared, "prepare_plans", "save")
    timed(prepared.PreparedOutput, "print", "print")
    timed(beside.Beside, "result", "wait for the process beside")
    timed(formats, "write_json", "write JSON")
    timed(planview, "read_part", "read calls")
    timed(planview, "profile_lines", "render calls")
    timed(planview, "text_around", "the text around the calls")
    timed(click, "echo", "echo")

    from reconciler.cli import main as cli_main

    sys.argv = ["reconciler", *sys.argv[1:]]
    with open(os.devnull, "wb") as devnull:
        sys.stdout = io.TextIOWrapper(devnull)
        try:
            cli_main()
        except SystemExit:
            pass
        finally:
            say("end")


if __name__ == "__main__":
    main()
