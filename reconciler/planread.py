"""Reading a saved plan back: its lines checked one batch at a time, then built into `Plan`s.

The layout is `reconciler.plandoc`'s: the plan of one workspace/version pair, or the plans of
several. A plan is refused, in this order, when it is a masked rendering or of another format
(said at once: neither has a checksum of its own to check), edited (its checksum does not
match the lines as written: an edit is named as an edit even when it also broke the form,
since every other problem waits for the checksum), or malformed: the header (its schema; of
several pairs, also pairs sorted by workspace and version, each once), the call lines (their
schema, a batch at a time; of several pairs, also each call's pair index in range and never
going backwards), then the summaries (each pair's counts its calls; the top-level one of
several pairs is their sum).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import orjson

from reconciler import strictjson
from reconciler.errors import PlanEditedError, PlanFileError
from reconciler.ownership import Policy
from reconciler.plan import (
    PLAN_FORMAT_VERSION,
    Call,
    DeleteTokens,
    Plan,
    call_from_json,
    total_summary,
)
from reconciler.plandoc import HEADER_END, TRAILER_START, trailer_checksum

AGAIN: Final = "run `reconciler plan --out` again"
_BATCH: Final = 1_000  # call lines parsed and checked at once: one parse, one schema check
_SCHEMA: Final = "plan.schema.json"
_ANY_CHECKSUM: Final = "sha256:" + "0" * 64  # the header is checked before the trailer is read


class _Reading:
    """The state of one read: the running checksum, the calls so far, the first problem."""

    def __init__(self, name: str, part: range | None = None, checksummed: bool = True) -> None:
        self.name = name
        self.hasher = hashlib.sha256()
        # The calls (by index) to parse and build; the others are only checksummed and
        # checked for their layout (`reconciler.planview` reads a plan in two halves), or
        # not even that when the reader is not `checksummed`.
        self.part = part
        self.checksummed = checksummed
        self.calls: list[Call] = []
        self.problem: PlanFileError | None = None
        self.batch: list[tuple[int, bytes]] = []  # (line number, line)
        # Of a several-pairs plan: how many pairs its header lists, and each call's pair.
        self.pairs: int | None = None
        self.pair_of: list[int] = []

    def fail(self, message: str) -> None:
        if self.problem is None:
            self.problem = PlanFileError(f"{self.name} is not a valid saved plan: {message}")

    def invalid_json(self, error: strictjson.JSONError) -> None:
        if self.problem is None:
            self.problem = PlanFileError(
                f"{error}: it is not a saved plan as `plan --out` writes it")

    def flush(self) -> None:
        """Parse and check the pending call lines: at once, or one by one to say where."""
        batch, self.batch = self.batch, []
        if not batch or self.problem is not None:
            return
        text = b"[" + b"".join(line for _, line in batch)[:-2] + b"]"
        first_index = len(self.calls) + (self.part.start if self.part is not None else 0)
        try:
            items = strictjson.loads(text, what="")
        except strictjson.JSONError:
            items = None
        several = self.pairs is not None
        if not (isinstance(items, list) and len(items) == len(batch) and strictjson.validator(
                _SCHEMA, "pair_calls" if several else "calls").is_valid(items)):
            items = self._one_by_one(batch, first_index)
            if items is None:
                return
        for offset, item in enumerate(items):
            if several and not self._in_order(item["pair"], first_index + offset):
                return
            call = call_from_json(item)
            if not _request_can_be_made(call):
                self.fail(f"at /calls/{first_index + offset}: a webpush token to delete is "
                          "not the JSON text of a token")
                return
            self.calls.append(call)
            if several:
                self.pair_of.append(item["pair"])

    def _in_order(self, pair: int, index: int) -> bool:
        """Whether call `index` of a several-pairs plan names a pair its header lists, and
        none before the previous call's (the calls are ordered by pair)."""
        assert self.pairs is not None
        if pair >= self.pairs:
            self.fail(f"at /calls/{index}/pair: there is no pair {pair} (the header lists "
                      f"{self.pairs})")
            return False
        if self.pair_of and pair < self.pair_of[-1]:
            self.fail(f"at /calls/{index}/pair: a call of pair {pair} after one of pair "
                      f"{self.pair_of[-1]} (the calls are ordered by pair)")
            return False
        return True

    def _one_by_one(self, batch: list[tuple[int, bytes]],
                    first_index: int) -> list[Any] | None:
        """The batch's calls, or None after naming the first line that is wrong, and how."""
        checker = strictjson.validator(_SCHEMA, "call" if self.pairs is None else "pair_call")
        items = []
        for offset, (number, line) in enumerate(batch):
            try:
                item = strictjson.loads(line.rstrip(b",\n"), what=f"{self.name} line {number}")
            except strictjson.JSONError as error:
                self.invalid_json(error)
                return None
            if problems := strictjson.schema_problems(checker, item):
                place = f"/calls/{first_index + offset}"
                self.fail("; ".join(_under(place, problem) for problem in problems))
                return None
            items.append(item)
        return items


def _under(place: str, problem: str) -> str:
    """A schema problem of one call, placed in the document: "at /calls/3/operation: …"."""
    where, _, what = problem.partition(": ")
    inner = where.removeprefix("at ")
    return f"at {place}{'' if inner == 'the top level' else inner}: {what}"


def _request_can_be_made(call: Call) -> bool:
    """Whether apply can build the call's request: a web push token deleted by `remove:` is
    held as JSON text, which the request sends parsed."""
    if not isinstance(call, DeleteTokens):
        return True
    try:
        call.body()
    except orjson.JSONDecodeError:
        return False
    return True


def read_document(lines: Iterator[bytes], name: str,
                  whole: Callable[[], bytes]) -> tuple[Plan, ...]:
    """The plans whose document `lines` are (each with its newline): one, or one per
    workspace/version pair, sorted by (workspace, version). Refuses a document that is
    masked, of another format, edited (its checksum) or malformed, in that order.

    `name` names the file in messages; `whole` gives the file's content, read only when its
    first line is not a header as `plan --out` writes it (a plan of another format, a
    reformatted one): that content is then judged as a whole.
    """
    header, reading, trailer = _read(lines, name, whole, None)
    if reading.pairs is None:
        return (_plan(header, reading, trailer),)
    return _pair_plans(header, reading, trailer)


def read_part(lines: Iterator[bytes], name: str, whole: Callable[[], bytes], part: range,
              *, checksummed: bool = True) -> tuple[dict[str, Any], tuple[Call, ...], str]:
    """Of the one-pair plan whose document `lines` are: its header, the calls of `part` (by
    index), and its checksum. Only the calls of `part` are parsed, checked and built, and
    the summary is left to the caller, who has every part's calls. Every line is
    checksummed and checked for its layout, as `read_document` does; with `checksummed`
    False, only those of `part` are (another part's reader checks the checksum), and the
    checksum is not compared."""
    header, reading, trailer = _read(lines, name, whole, part, checksummed)
    if reading.pairs is not None:
        raise ValueError("a plan of several pairs is read whole: its calls' pairs are "
                         "checked in order")
    return header, tuple(reading.calls), trailer


def _read(lines: Iterator[bytes], name: str, whole: Callable[[], bytes],
          part: range | None, checksummed: bool = True
          ) -> tuple[dict[str, Any], _Reading, str]:
    """The header, the reading and the checksum of a document whose checksum holds and
    whose lines (those of `part`) are well formed; see `read_document`."""
    first = next(lines, b"")
    if not (first.startswith(b"{") and first.endswith(HEADER_END)):
        _refuse_other_layout(whole(), name)
    reading = _Reading(name, part, checksummed)
    reading.hasher.update(first)
    header = _read_header(first, reading)
    trailer = _read_calls(lines, reading)
    if trailer is None:
        raise PlanEditedError(f"{name} ends before its checksum: it was cut short (or edited) "
                              f"after it was saved; {AGAIN}")
    if checksummed and trailer != "sha256:" + reading.hasher.hexdigest():
        raise PlanEditedError(
            f"{name} was edited after it was saved (its checksum does not match its "
            f"content); a saved plan is applied exactly as reviewed: {AGAIN}")
    if reading.problem is not None:
        raise reading.problem
    assert header is not None  # parsed, or a problem was raised just above
    return header, reading, trailer


def _read_header(line: bytes, reading: _Reading) -> dict[str, Any] | None:
    """The header of the first line; a masked rendering or another format is refused at
    once (neither has a checksum of its own to check), anything else waits for it."""
    try:
        header = strictjson.loads(line[:-len(HEADER_END)] + b"}", what=f"{reading.name} line 1")
    except strictjson.JSONError as error:
        reading.invalid_json(error)
        return None
    if not isinstance(header, dict):  # not reached: the line starts with "{"
        reading.fail("its first line is not an object")
        return None
    _refuse_masked_or_other_format(header, reading.name)
    _check_header(header, reading)
    return header


def _check_header(header: dict[str, Any], reading: _Reading) -> None:
    """Check the header as the whole document would be, its calls left out (they are checked
    line by line); of several pairs, also that they are sorted and unique, and how many."""
    several = "pairs" in header
    checker = strictjson.validator(_SCHEMA, "several_pairs_plan" if several
                                   else "single_pair_plan")
    if several:
        reading.pairs = 0  # until the header is known good: no call names a pair
    problems = strictjson.schema_problems(
        checker, {**header, "calls": [], "checksum": _ANY_CHECKSUM})
    if problems:
        reading.fail("; ".join(problems))
        return
    if not several:
        return
    pairs = [(pair["workspace"], pair["version"]) for pair in header["pairs"]]
    for index in range(1, len(pairs)):
        if pairs[index - 1] >= pairs[index]:
            reading.fail(f"at /pairs/{index}: the pairs are not sorted by workspace and "
                         "version, each pair once")
            return
    reading.pairs = len(pairs)


def _read_calls(lines: Iterator[bytes], reading: _Reading) -> str | None:
    """Read the call lines into `reading`; the trailer's checksum, or None when the lines
    end before it (a file cut short)."""
    closed = False  # the previous call line had no comma: the trailer must come next
    number = 1
    part = reading.part
    for line in lines:
        number += 1
        if line.startswith(TRAILER_START):
            reading.flush()
            if not closed and number > 2:
                reading.fail(f"line {number - 1} ends with a comma, but no call follows")
            if next(lines, None) is not None:
                reading.fail(f"it goes on after its checksum (line {number})")
            return trailer_checksum(line)
        in_part = part is None or number - 2 in part
        if not (in_part or reading.checksummed):
            closed = not line.endswith(b",\n")  # whether the trailer may come next
            continue
        reading.hasher.update(line)
        if closed or not (line.endswith(b"},\n") or line.endswith(b"}\n")) \
                or not line.startswith(b"{"):
            reading.fail(f"line {number} is not a call as `plan --out` writes it (one "
                         "object per line, separated by commas)")
        closed = not line.endswith(b",\n")
        if in_part:
            reading.batch.append((number, line if not closed else line[:-1] + b",\n"))
            if len(reading.batch) == _BATCH:
                reading.flush()
    return None


def _plan(header: dict[str, Any], reading: _Reading, checksum: str) -> Plan:
    """The plan of one pair, once its summary counts its calls."""
    plan = built(header, header, tuple(reading.calls), checksum)
    if plan.summary.to_json() != header["summary"]:
        raise PlanFileError(f"{reading.name} is not a valid saved plan: at /summary: it does "
                            f"not count its calls; {AGAIN}")
    return plan


def _pair_plans(header: dict[str, Any], reading: _Reading,
                checksum: str) -> tuple[Plan, ...]:
    """The plans of several pairs, once each pair's summary counts its calls and the
    top-level summary is their sum."""
    calls: list[list[Call]] = [[] for _ in header["pairs"]]
    for call, pair in zip(reading.calls, reading.pair_of, strict=True):
        calls[pair].append(call)
    plans = tuple(built(header, pair, tuple(own), checksum)
                  for pair, own in zip(header["pairs"], calls, strict=True))
    for index, (plan, pair) in enumerate(zip(plans, header["pairs"], strict=True)):
        if plan.summary.to_json() != pair["summary"]:
            raise PlanFileError(f"{reading.name} is not a valid saved plan: at /pairs/{index}"
                                f"/summary: it does not count the calls of its pair; {AGAIN}")
    if total_summary(plan.summary for plan in plans).to_json() != header["summary"]:
        raise PlanFileError(f"{reading.name} is not a valid saved plan: at /summary: it is "
                            f"not the sum of the pairs' summaries; {AGAIN}")
    return plans


def built(shared: Mapping[str, Any], own: Mapping[str, Any], calls: tuple[Call, ...],
           checksum: str) -> Plan:
    """A plan read back: `shared`, the fields of the run (the header), and `own`, the
    fields of its pair (the header too, in a plan of one pair)."""
    state = own["state"]
    return Plan(
        plan_id=shared["plan_id"],
        created_at=shared["created_at"],
        workspace=own["workspace"],
        version=own["version"],
        lineage=state["lineage"],
        serial=state["serial"],
        config_digest=own["config_digest"],
        recorded_entries=state["recorded_entries"],
        calls=calls,
        targets=tuple(shared["targets"]),
        warnings=tuple(own["warnings"]),
        forced=own["forced"],
        forget=tuple(own.get("forget", ())),
        policies={distinct_id: Policy.from_json(policy)
                  for distinct_id, policy in own.get("ownership", {}).items()},
        checksum=checksum,
    )


def _refuse_masked_or_other_format(document: Mapping[str, Any], name: str) -> None:
    if document.get("masked") is True:
        raise PlanFileError(f"{name} is a plan printed with its values masked (`--format json` "
                            "without --show-values), not a saved plan: apply the file "
                            "`reconciler plan --out FILE` wrote")
    version = document.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        older = (" (an older reconciler wrote it)" if isinstance(version, int)
                 and not isinstance(version, bool) and version < PLAN_FORMAT_VERSION else "")
        raise PlanFileError(f"{name} has plan format_version {strictjson.shown_json(version)}"
                            f"{older}; this reconciler reads version {PLAN_FORMAT_VERSION}: "
                            f"{AGAIN}")


def _refuse_other_layout(data: bytes, name: str) -> None:
    """Refuse a file whose first line is not a header as `plan --out` writes it, saying why:
    not JSON, a masked rendering, no checksum, another format, or reformatted."""
    try:
        document = strictjson.loads(data, what=f"plan file {name}")
    except strictjson.JSONError as error:
        raise PlanFileError(f"{error}: it is not a saved plan as `plan --out` writes it") \
            from None
    if isinstance(document, dict) and document.get("masked") is True:
        _refuse_masked_or_other_format(document, name)
    if not isinstance(document, dict) or "checksum" not in document:
        raise PlanFileError(f"{name} is not a saved plan: it has no checksum")
    _refuse_masked_or_other_format(document, name)
    raise PlanEditedError(
        f"{name} was edited after it was saved: it is not laid out as `plan --out` writes it "
        "(one call per line), and its checksum is over those lines; a saved plan is applied "
        f"exactly as reviewed: {AGAIN}")
