"""Checking the audit ledger's hash chain: `reconciler audit verify`.

Each line must be a record whose hash matches its content (else it was edited), whose `seq`
is its position among the records and whose `prev` is the previous record's hash (else
records were removed, reordered or rewritten). A line that is not JSON is accepted only when
it is the torn line a following `torn_line` marker vouches for (see `ledger`); as the last
line of the file, without its newline, it is reported as truncated.

A hash chain without a secret proves no more than that the file was not edited by hand or
by a careless tool: whoever can write the file can rebuild the whole chain, or drop records
at its end. `VerifyResult.head` is the hash of the last record; publishing it (in the apply
log of the CI run, say) anchors everything up to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import orjson

from reconciler.audit.entry import TORN_LINE_OPERATION
from reconciler.audit.ledger import record_hash

Reason: TypeAlias = Literal["edited", "removed", "reordered", "not_json", "not_record",
                            "truncated"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict on a ledger; `first_bad` is a 1-based line number."""

    path: Path
    ok: bool
    count: int  # records verified before the first bad line (all of them when ok)
    first_bad: int | None = None
    reason: Reason | None = None
    detail: str = ""
    head: str = ""  # hash of the last good record
    repaired: tuple[int, ...] = field(default=())  # torn lines vouched for by a marker

    def describe(self) -> str:
        if self.ok:
            noun = "record" if self.count == 1 else "records"
            text = f"{self.path}: {self.count} {noun}, chain intact"
            if self.head:
                text += f", head {self.head}"
            if self.repaired:
                lines = ", ".join(str(line) for line in self.repaired)
                text += f" (torn line {lines} repaired by a marker)"
            return text
        return f"{self.path}:{self.first_bad}: {self.reason}: {self.detail}"


@dataclass(slots=True)
class _Torn:
    line: int
    offset: int
    body: bytes


def verify(path: Path) -> VerifyResult:
    """Walk the ledger once, in constant memory; a missing ledger is an empty, intact one."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return VerifyResult(path, ok=True, count=0)
    count, head, offset = 0, "", 0
    repaired: list[int] = []
    torn: _Torn | None = None

    def bad(line: int, reason: Reason, detail: str) -> VerifyResult:
        return VerifyResult(path, False, count, line, reason, detail, head, tuple(repaired))

    with file:
        for number, raw in enumerate(file, start=1):
            start, offset = offset, offset + len(raw)
            body = raw[:-1] if raw.endswith(b"\n") else raw
            if torn is not None and not _vouches_for(raw, torn):
                return bad(torn.line, "not_json", "this line is not JSON")
            try:
                record: Any = orjson.loads(body)
            except orjson.JSONDecodeError:
                if not raw.endswith(b"\n"):
                    return bad(number, "truncated",
                               "the last line was cut short (a writer died mid-write); "
                               "the next append will mark it as torn and go on")
                torn = _Torn(number, start, body)
                continue
            if torn is not None:
                repaired.append(torn.line)
                torn = None
            if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
                return bad(number, "not_record", "this line is not an audit record")
            if record_hash(record) != record["hash"]:
                return bad(number, "edited", "its content does not match its hash")
            seq, prev = record.get("seq"), record.get("prev")
            if seq != count + 1:
                if isinstance(seq, int) and seq > count + 1:
                    return _missing(path, file, count, number, seq, head, tuple(repaired))
                return bad(number, "reordered",
                           f"record {seq} comes after record {count}")
            if prev != head:
                return bad(number, "edited",
                           f"its prev does not match the hash of record {count}: this or "
                           "the previous record was rewritten")
            count, head = count + 1, record["hash"]
    if torn is not None:
        return bad(torn.line, "not_json", "this line is not JSON")
    return VerifyResult(path, ok=True, count=count, head=head, repaired=tuple(repaired))


def _vouches_for(raw: bytes, torn: _Torn) -> bool:
    """Whether `raw` is the marker the ledger writes right after the torn line `torn`."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(record, dict) or record.get("operation") != TORN_LINE_OPERATION:
        return False
    expected = {"offset": torn.offset, "length": len(torn.body),
                "sha256": hashlib.sha256(torn.body).hexdigest()}
    return bool(record.get("request") == expected)


def _missing(path: Path, rest: Any, count: int, number: int, seq: int, head: str,
             repaired: tuple[int, ...]) -> VerifyResult:
    """Records count+1..seq-1 are not where they belong: later in the file, or gone."""
    wanted = range(count + 1, seq)
    for later in rest:
        try:
            record = orjson.loads(later)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("seq") in wanted:
            return VerifyResult(path, False, count, number, "reordered",
                                f"record {seq} comes before record {record['seq']}",
                                head, repaired)
    gone = str(count + 1) if seq == count + 2 else f"{count + 1} to {seq - 1}"
    return VerifyResult(path, False, count, number, "removed",
                        f"record {gone} is missing before this line (record {seq})",
                        head, repaired)
