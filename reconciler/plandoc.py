"""The saved-plan document: one JSON object, one call per line, written and read as a stream.

    {"format_version":2,"plan_id":"…",…,"summary":{…},"calls":[     header: all but the calls
    {"distinct_id":"u-1","operation":"patch_channel","changes":[…]},   one line per call
    {"distinct_id":"u-2","operation":"delete_channels","changes":[…],"forget":false}
    ],"checksum":"sha256:…"}                                             trailer

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
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import orjson

from reconciler.mask import MASKED, mask, mask_change_json, mask_token
from reconciler.model import CHANNELS, Token
from reconciler.plan import PLAN_FORMAT_VERSION, Call, Change, Plan

HEADER_END: Final = b',"calls":[\n'
TRAILER_START: Final = b'],"checksum":"'
TRAILER_END: Final = b'"}\n'
BLOCK_BYTES: Final = 1 << 20
_CHECKSUM: Final = re.compile(rb"sha256:[0-9a-f]{64}")


def header_json(plan: Plan) -> dict[str, Any]:
    """Every field of the document but the calls and the checksum, in the order written."""
    header: dict[str, Any] = {
        "format_version": PLAN_FORMAT_VERSION,
        "plan_id": plan.plan_id,
        "created_at": plan.created_at,
        "workspace": plan.workspace,
        "version": plan.version,
        "state": {"lineage": plan.lineage, "serial": plan.serial,
                  "recorded_entries": plan.recorded_entries},
        "config_digest": plan.config_digest,
        "targets": list(plan.targets),
        "forced": plan.forced,
        "warnings": list(plan.warnings),
        "forget": list(plan.forget),
        "summary": plan.summary.to_json(),
    }
    if plan.policies:
        header["ownership"] = {distinct_id: plan.policies[distinct_id].to_json()
                               for distinct_id in sorted(plan.policies)}
    return header


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
    """A header for people: the values that ownership removals name are masked."""
    masked = dict(header)
    if "ownership" in header:
        masked["ownership"] = {name: {**policy, "remove": {
            channel: MASKED for channel in policy["remove"]}}
            for name, policy in header["ownership"].items()}
    masked["masked"] = True
    return masked


def masked_call_line(call: Call) -> bytes:
    """`call.to_json()` as one line of JSON, its values masked as `mask_change_json` masks
    them."""
    return orjson.dumps(_call_json(call, [_masked_change(change) for change in call.changes]))


def _masked_change(change: Change) -> dict[str, Any]:
    """`mask_change_json` of the change's JSON form. An entry added or removed in a managed
    channel, most of any plan, is masked here directly, value by value: the fingerprints
    that `mask_change_json` adds only ever tell apart the two sides of a change."""
    channel, before, after = change
    if channel not in CHANNELS or (before is not None and after is not None):
        return mask_change_json(change.to_json(compact=True))
    side, value = ("after", after) if before is None else ("before", before)
    if isinstance(value, Token):
        token = value.to_json()
        token["token"] = mask_token(value.token)
        return {"channel": channel, side: token}
    assert value is not None  # a change has at least one side
    return {"channel": channel, side: mask(channel, value)}


def _header_line(header: Mapping[str, Any]) -> bytes:
    return orjson.dumps(header)[:-1] + HEADER_END


def _trailer(checksum: str) -> bytes:
    return TRAILER_START + checksum.encode() + TRAILER_END


def document_lines(plan: Plan, *, masked: bool = False,
                   checksum: str | None = None) -> Iterator[bytes]:
    """The lines of `plan`'s document, trailer last, each ending with its newline.

    `masked`: the rendering for people; its trailer holds the saved plan's checksum, which is
    computed alongside unless known (`checksum`, or the plan's own when it was read back).
    """
    known = checksum or plan.checksum
    hasher = None if masked and known else hashlib.sha256()
    header = header_json(plan)
    saved = _header_line(header)
    if hasher is not None:
        hasher.update(saved)
    yield _header_line(masked_header(header)) if masked else saved
    last = len(plan.calls) - 1
    for index, call in enumerate(plan.calls):
        end = b",\n" if index < last else b"\n"
        line = call_line(call) + end if hasher is not None else b""
        if hasher is not None:
            hasher.update(line)
        yield masked_call_line(call) + end if masked else line
    yield _trailer("sha256:" + hasher.hexdigest() if hasher is not None else known or "")


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
    return b"".join(lines) + _trailer(str(document.get("checksum", "")))


def checksum(document: Mapping[str, Any]) -> str:
    """The checksum of a document held as a mapping: over its lines as `encode` lays them."""
    data = encode({key: value for key, value in document.items() if key != "checksum"})
    body = data[:data.rindex(b"\n", 0, len(data) - 1) + 1]
    return "sha256:" + hashlib.sha256(body).hexdigest()
