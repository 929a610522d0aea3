"""`show` of a large saved plan as text, read and rendered in two halves on two cores.

Reading a saved plan back (parsing, the schema check, building 500,000 changes for 100,000
profiles) and rendering it are work per call, and the result of rendering is text: cheap to
pass between processes, unlike the calls themselves. So the calls are cut in two at a
profile's first call near the middle, and a process working beside this one
(`reconciler.beside`) reads and renders the second half while this one does the first:

    the file's lines ──> this process:  every line checksummed and its layout checked;
                     │                  calls [0, cut) read and rendered
                     └─> beside:        the same checks; calls [cut, n) read and rendered
                         ──> header, first half, second half, what follows: one text

Both halves are read by `planread.read_part`, the reader every saved plan goes through, so a
plan is refused in either for what `read_document` refuses it; the summary, which counts
every call, is checked here against the two halves' counts. When a file has several
problems, the first half's is named before the second half's. The text is the one
`render_text` gives for the plan read whole (a test compares them).

Only a clear plan of one pair with at least `SPLIT_FROM` calls is read so; anything else
(small, sealed, several pairs, not laid out as `plan --out` writes it) is read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from reconciler.beside import Beside
from reconciler.encryption import is_sealed
from reconciler.errors import PlanFileError
from reconciler.heap import collector_paused, keep, settle
from reconciler.plan import Plan, Summary, summarize, total_summary
from reconciler.plandoc import HEADER_END
from reconciler.planread import AGAIN, built, read_part
from reconciler.render.common import Paint
from reconciler.render.text import profile_lines, text_around

SPLIT_FROM: Final = 5_000
"""Calls from which a plan is read in two processes: below, a fork and the copies cost more
than they save (5,000 calls take about 0.3 s to read and render)."""


FIRST_SHARE: Final = 54
"""Percent of the calls that this process reads, the rest going to the one beside it. It also
checksums every line and writes the text, but the process beside reads lines made before the
fork (each first write to a page copies it) and sends its text back: at 100,000 calls, with
46% this process waited 0.4 s to 2 s for the other; with 56% the other finished first."""


@dataclass(frozen=True, slots=True)
class _Half:
    """What a half of the calls gives: its rendering and its counts."""

    body: str
    summary: Summary
    calls: int


def show_text(path: Path, *, color: bool, show_values: bool,
              split_from: int | None = None) -> str | None:
    """The saved plan at `path` as `render_text` gives it, read in two halves; None when it
    is to be read whole (see the module docstring)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None  # read whole, which names the error
    # Split at "\n" only, as the file is read whole (`bytes.splitlines` also splits at "\r").
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    count = len(lines) - 2  # the header and the trailer
    if count < (SPLIT_FROM if split_from is None else split_from) \
            or not _one_clear_pair(lines[0]):
        return None
    cut = _profile_start(lines, 1 + count * FIRST_SHARE // 100) - 1  # as a call index
    name = str(path)

    def second_half() -> _Half:  # beside this process, which checks the checksum
        with collector_paused():
            _, calls, _ = read_part(iter(lines), name, lambda: data, range(cut, count),
                                    checksummed=False)
            body = "\n".join(profile_lines(calls, Paint(color), show_values=show_values))
        return _Half(body, summarize(calls), len(calls))

    with Beside(second_half) as second:
        with collector_paused():
            header, calls, checksum = read_part(iter(lines), name, lambda: data, range(cut))
            first = _Half("\n".join(profile_lines(calls, Paint(color), show_values=show_values)),
                          summarize(calls), len(calls))
            settle()  # as in `plan`: the calls read are never rescanned
        rest = second.result()
    keep(data, lines, calls)  # 100,000 profiles take 0.1 s to free one by one
    plan = built(header, header, (), checksum)
    summary = _counted(first, rest, plan)
    if summary.to_json() != header["summary"]:
        raise PlanFileError(f"{name} is not a valid saved plan: at /summary: it does not count "
                            f"its calls; {AGAIN}")
    return text_around(plan, summary, first.calls + rest.calls, [first.body, rest.body],
                       Paint(color), show_values=show_values)


def _counted(first: _Half, rest: _Half, plan: Plan) -> Summary:
    """The summary of the whole plan: its halves' counts added (they share no profile: the
    cut is at a profile's first call), and the profiles it forgets."""
    total = total_summary((first.summary, rest.summary))
    return Summary(total.profiles, total.add, total.change, total.remove, total.calls,
                   len(plan.forget))


def _one_clear_pair(first: bytes) -> bool:
    """Whether the first line is the header of a clear plan of one pair."""
    if is_sealed(first) or not (first.startswith(b"{") and first.endswith(HEADER_END)):
        return False
    try:
        header = orjson.loads(first[:-len(HEADER_END)] + b"}")
    except orjson.JSONDecodeError:
        return False
    return isinstance(header, dict) and "pairs" not in header


def _profile_start(lines: list[bytes], index: int) -> int:
    """The first line at or after `index` whose call is the first of its profile (the
    calls of a profile are consecutive); `index` when that cannot be told, since a line
    that is not a call is refused by both halves anyway."""
    previous = _distinct_id(lines[index - 1])
    end = len(lines) - 1
    while index < end:
        current = _distinct_id(lines[index])
        if current is None or current != previous:
            return index
        previous = current
        index += 1
    return index


def _distinct_id(line: bytes) -> str | None:
    try:
        call = orjson.loads(line.rstrip(b",\n"))
    except orjson.JSONDecodeError:
        return None
    distinct_id = call.get("distinct_id") if isinstance(call, dict) else None
    return distinct_id if isinstance(distinct_id, str) else None

