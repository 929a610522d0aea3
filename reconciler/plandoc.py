"""The saved-plan document: one JSON object, one call per line, written and read as a stream.

    {"format_version":2,"plan_id":"…",…,"summary":{…},"calls":[     header: all but the calls
    {"distinct_id":"u-1","operation":"patch_channel","changes":[…]},   one line per call
    {"distinct_id":"u-2","operation":"delete_channels","changes":[…],"forget":false}
    ],"checksum":"sha256:…"}                                             trailer

That is the plan of one workspace/version pair. The plans of several pairs, made by one run
(one plan id, creation time and targets), are saved as one document of the same layout: the
header holds what they share and, in `pairs`, what each pair's plan holds but its calls,
sorted by (workspace, version); the top-level `summary` holds the totals; each call line
names its pair by index, first, and the lines are ordered by pair:

    {"format_version":2,"plan_id":"…","created_at":"…","targets":[…],"pairs":[
      {"workspace":"FYA","version":"live","state":{…},…,"summary":{…}},…],"summary":{…},"calls":[
    {"pair":0,"distinct_id":"u-1","operation":"patch_channel","changes":[…]},
    {"pair":1,"distinct_id":"u-1",…}
    ],"checksum":"sha256:…"}

(the header is one line: it is shown folded here).

The whole is one JSON document, so any JSON tool reads it and `schemas/plan.schema.json`
describes it; each line is also a unit that is written, hashed and read alone, so that a plan
of 100,000 profiles is never held in memory as text, let alone twice. A call carries its
changes only: its method, path and body are what the changes make (`Call.request`), the one
rule apply sends by, so a body can never show a reviewer another request than the one sent.

The checksum is sha256 over the bytes of every line before the trailer, exactly as written.
A plan is therefore read back in the layout `plan --out` gave it: one reformatted by a tool
counts as edited. Each problem found while reading waits for the checksum: an edit is named
as an edit, even when it also broke the form (`reconciler.planread`).

A rendering for people (`--format json`) has the same layout, with its values masked and
`"masked": true` in its header; its trailer holds the checksum of the saved plan it shows,
so that a reviewer can tell which saved plan it is. It is refused as a plan.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any, Final

import orjson

from reconciler.mask import MASKED, mask, mask_change_json, mask_token
from reconciler.model import CHANNELS, Token
from reconciler.plan import PLAN_FORMAT_VERSION, Call, Change, Plan, total_summary

HEADER_END: Final = b',"calls":[\n'
TRAILER_START: Final = b'],"checksum":"'
TRAILER_END: Final = b'"}\n'
BLOCK_BYTES: Final = 1 << 20
_CHECKSUM: Final = re.compile(rb"sha256:[0-9a-f]{64}")


def header_json(plan: Plan) -> dict[str, Any]:
    """Every field of the document of one pair's plan but the calls and the checksum, in the
    order written."""
    header: dict[str, Any] = {
        "format_version": PLAN_FORMAT_VERSION,
        "plan_id": plan.plan_id,
        "created_at": plan.created_at,
        "workspace": plan.workspace,
        "version": plan.version,
        "state": _state_json(plan),
        "config_digest": plan.digest(),
        "targets": list(plan.targets),
        "forced": plan.forced,
        "warnings": list(plan.warnings),
        "forget": list(plan.forget),
        "summary": plan.summary.to_json(),
    }
    if plan.policies:
        header["ownership"] = _ownership_json(plan)
    return header


def pairs_header_json(plans: Sequence[Plan]) -> dict[str, Any]:
    """Every field of the document of several pairs' plans (`pairs_in_order`) but the calls
    and the checksum, in the order written: what they share, then each pair's own fields."""
    first = plans[0]
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "plan_id": first.plan_id,
        "created_at": first.created_at,
        "targets": list(first.targets),
        "pairs": [pair_json(plan) for plan in plans],
        "summary": total_summary(plan.summary for plan in plans).to_json(),
    }


def pair_json(plan: Plan) -> dict[str, Any]:
    """What one pair's plan holds in a several-pairs document, besides its calls."""
    pair: dict[str, Any] = {
        "workspace": plan.workspace,
        "version": plan.version,
        "state": _state_json(plan),
        "config_digest": plan.digest(),
        "forced": plan.forced,
        "warnings": list(plan.warnings),
        "forget": list(plan.forget),
        "summary": plan.summary.to_json(),
    }
    if plan.policies:
        pair["ownership"] = _ownership_json(plan)
    return pair


def _state_json(plan: Plan) -> dict[str, Any]:
    return {"lineage": plan.lineage, "serial": plan.serial,
            "recorded_entries": plan.recorded_entries}


def _ownership_json(plan: Plan) -> dict[str, Any]:
    return {distinct_id: plan.policies[distinct_id].to_json()
            for distinct_id in sorted(plan.policies)}


def pairs_in_order(plans: Plan | Sequence[Plan]) -> tuple[Plan, ...]:
    """The plans one document holds, sorted by (workspace, version): a single plan, or the
    plans one run made for several pairs. Raises ValueError for no plan, a pair twice, or
    plans of different runs (another plan id, creation time or targets)."""
    if isinstance(plans, Plan):
        return (plans,)
    ordered = tuple(sorted(plans, key=lambda plan: (plan.workspace, plan.version)))
    if not ordered:
        raise ValueError("a saved plan holds the plan of at least one workspace/version pair")
    first = ordered[0]
    for before, plan in pairwise(ordered):
        if (before.workspace, before.version) == (plan.workspace, plan.version):
            raise ValueError(f"two plans for workspace {plan.workspace} ({plan.version})")
    for plan in ordered[1:]:
        if (plan.plan_id, plan.created_at, plan.targets) != (
                first.plan_id, first.created_at, first.targets):
            raise ValueError("the plans of one saved plan are made by one run: they share "
                             "their plan id, creation time and targets")
    return ordered


def _json_default(value: Any) -> Any:
    """What orjson writes through this callback in a call: a `Change` in its compact form
    (`Change.to_json(compact=True)`: no side that is None) and a `Token`."""
    if type(value) is Change:
        channel, before, after = value
        if before is None:
            return {"channel": channel, "after": after}
        if after is None:
            return {"channel": channel, "before": before}
        return {"channel": channel, "before": before, "after": after}
    if type(value) is Token:
        return value.to_json()
    raise TypeError  # orjson reports it: nothing else is in a call


def call_line(call: Call) -> bytes:
    """`call.to_json()` as one line of JSON, without its separator.

    The same bytes as `orjson.dumps(call.to_json())`, with less Python: orjson calls back
    only for each change and token (a plan of 100,000 profiles has 500,000 changes), and
    writes the rest in C.
    """
    return orjson.dumps(_call_json(call, call.changes), default=_json_default)


def _call_json(call: Call, changes: Any) -> dict[str, Any]:
    """The members of `call.to_json()`, in its order, with `changes` as given."""
    data: dict[str, Any] = {"distinct_id": call.distinct_id, "operation": call.operation,
                            "changes": changes}
    if (forget := getattr(call, "forget", None)) is not None:
        data["forget"] = forget
    return data


def masked_header(header: Mapping[str, Any]) -> dict[str, Any]:
    """A header for people: the values that ownership removals name are masked (in each
    pair's fields, in a several-pairs header)."""
    masked = _masked_ownership(header)
    if "pairs" in header:
        masked["pairs"] = [_masked_ownership(pair) for pair in header["pairs"]]
    masked["masked"] = True
    return masked


def _masked_ownership(fields: Mapping[str, Any]) -> dict[str, Any]:
    masked = dict(fields)
    if "ownership" in fields:
        masked["ownership"] = {name: {**policy, "remove": {
            channel: MASKED for channel in policy["remove"]}}
            for name, policy in fields["ownership"].items()}
    return masked


def masked_call_line(call: Call) -> bytes:
    """`call.to_json()` as one line of JSON, its values masked as `mask_change_json` masks
    them; orjson calls back only for each change, as in `call_line`."""
    return orjson.dumps(_call_json(call, call.changes), default=_masked_change)


def _masked_change(change: Any) -> dict[str, Any]:
    """`mask_change_json` of the change's JSON form. An entry added or removed in a managed
    channel, most of any plan, is masked here directly, value by value: the fingerprints
    that `mask_change_json` adds only ever tell apart the two sides of a change."""
    if type(change) is not Change:
        raise TypeError  # orjson reports it: nothing else is in a call
    channel, before, after = change
    if channel not in CHANNELS or (before is not None and after is not None):
        return mask_change_json(change.to_json(compact=True))
    side, value = ("after", after) if before is None else ("before", before)
    if isinstance(value, Token):
        token, integration_id, status = value
        if integration_id is None:  # `Token.to_json`'s members, in its order
            return {"channel": channel, side: {"token": mask_token(token), "status": status}}
        return {"channel": channel, side: {"token": mask_token(token),
                                           "integration_id": integration_id,
                                           "status": status}}
    assert value is not None  # a change has at least one side
    return {"channel": channel, side: mask(channel, value)}


def _header_line(header: Mapping[str, Any]) -> bytes:
    return orjson.dumps(header)[:-1] + HEADER_END


def trailer(checksum: str) -> bytes:
    """The last line of a document whose checksum is `checksum`."""
    return TRAILER_START + checksum.encode() + TRAILER_END


def document_lines(plans: Plan | Sequence[Plan], *, masked: bool = False,
                   checksum: str | None = None, part: range | None = None) -> Iterator[bytes]:
    """The lines of the document of `plans` (one plan, or the plans one run made for several
    workspace/version pairs: `pairs_in_order`), trailer last, each ending with its newline.
    One plan, alone or in a sequence, has the single-pair layout.

    `masked`: the rendering for people; its trailer holds the saved plan's checksum, which is
    computed alongside unless known (`checksum`, or the plans' own when they were read back).
    `part`: only the lines of the calls it holds (by their place among all the document's
    calls), the header when it holds the first and the trailer when it holds the last: a
    rendering made in parts, whose checksum is known.
    """
    plans = pairs_in_order(plans)
    several = len(plans) > 1
    known = checksum or _read_checksum(plans)
    hasher = None if masked and known else hashlib.sha256()
    total = sum(len(plan.calls) for plan in plans)
    part = range(total) if part is None else part
    whole = part == range(total)
    if not whole and (hasher is not None or part.step != 1):
        raise ValueError("only a masked rendering with its checksum is made in parts")
    if whole or (part.start == 0 and part):
        header = pairs_header_json(plans) if several else header_json(plans[0])
        saved = _header_line(header)
        if hasher is not None:
            hasher.update(saved)
        yield _header_line(masked_header(header)) if masked else saved
    position = -1  # of the call among all the document's
    for index, plan in enumerate(plans):
        prefix = b'{"pair":%d,' % index if several else b""
        for call in plan.calls:
            position += 1
            if position not in part:
                continue
            end = b",\n" if position < total - 1 else b"\n"
            line = _numbered(prefix, call_line(call)) + end if hasher is not None else b""
            if hasher is not None:
                hasher.update(line)
            yield _numbered(prefix, masked_call_line(call)) + end if masked else line
    if whole or (part.stop >= total and part):
        yield trailer("sha256:" + hasher.hexdigest() if hasher is not None else known or "")


def _numbered(prefix: bytes, line: bytes) -> bytes:
    """A call line of a several-pairs document, its pair first (`prefix`: `{"pair":N,`)."""
    return prefix + line[1:] if prefix else line


def _read_checksum(plans: Sequence[Plan]) -> str | None:
    """The checksum of the saved plan the plans were read from, when they all were."""
    checksums = {plan.checksum for plan in plans}
    return checksums.pop() if len(checksums) == 1 else None


def trailer_checksum(line: bytes) -> str | None:
    """The checksum a trailer line holds; None when `line` is not a trailer as written."""
    if not (line.startswith(TRAILER_START) and line.endswith(TRAILER_END)):
        return None
    match = _CHECKSUM.fullmatch(line[len(TRAILER_START):-len(TRAILER_END)])
    return None if match is None else match.group().decode()


def split_lines(data: bytes) -> Iterator[bytes]:
    """The lines of `data`, each with its newline (the last may lack one): split at "\n"
    only, as a file is read, never at a "\r"."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        yield data[start:end]
        start = end


def blocks(lines: Iterable[bytes], size: int | None = None) -> Iterator[bytes]:
    """`lines` joined into blocks of about `size` bytes (`BLOCK_BYTES`), each ending at a
    line's end: one write (or one seal) per block rather than per line."""
    size = size or BLOCK_BYTES
    pending: list[bytes] = []
    held = 0
    for line in lines:
        pending.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


def encode(document: Mapping[str, Any]) -> bytes:
    """A document held as a mapping (`calls` a list of call objects), laid out as `plan --out`
    writes it, with its own `checksum` when it has one. For tests and tools; `plan --out`
    streams `document_lines` instead."""
    header = {key: value for key, value in document.items() if key not in ("calls", "checksum")}
    calls = document.get("calls", [])
    lines = [_header_line(header)]
    lines += [orjson.dumps(call) + (b",\n" if index < len(calls) - 1 else b"\n")
              for index, call in enumerate(calls)]
    return b"".join(lines) + trailer(str(document.get("checksum", "")))


def checksum(document: Mapping[str, Any]) -> str:
    """The checksum of a document held as a mapping: over its lines as `encode` lays them."""
    data = encode({key: value for key, value in document.items() if key != "checksum"})
    body = data[:data.rindex(b"\n", 0, len(data) - 1) + 1]
    return "sha256:" + hashlib.sha256(body).hexdigest()
