"""Checking the audit ledger's hash chain: `reconciler audit verify`, and `audit` as it prints.

Each line must be a record whose hash matches its content (else it was edited), whose `seq`
is its position among the records and whose `prev` is the previous record's hash (else
records were removed, reordered or rewritten). A line that is not JSON is accepted only when
it is the torn line a following `torn_line` marker vouches for (see `ledger`); as the last
line of the file, without its newline, it is reported as truncated. Lines are parsed as the
ledger parses them (`ledger.parse_line`, strict): a line that holds a key twice is edited,
since its hash covers only one of the two values, and it is never handed on.

The rule lives in `_Judge`, fed one line at a time. `ChainCheck` reads the ledger once
through it and hands each record on as it goes, so `audit` prints and checks in the same
pass and `verify` is that same pass with nothing printed: one owner of the rule, constant
memory however long the ledger. A gap in `seq` is judged at the end of the file: "reordered"
if a missing record turns up later, "removed" if none does.

A hash chain without a secret proves no more than that the file was not edited by hand or
by a careless tool: whoever can write the file can rebuild the whole chain, or drop records
at its end. `VerifyResult.head` is the hash of the last record; publishing it (in the apply
log of the CI run, say) anchors everything up to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from reconciler import strictjson
from reconciler.audit.entry import TORN_LINE_OPERATION
from reconciler.audit.ledger import parse_line, record_hash

Reason: TypeAlias = Literal["edited", "removed", "reordered", "not_json", "not_record",
                            "truncated"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict on a ledger; `first_bad` is a 1-based line number."""

    path: Path | str  # the ledger file, or where another backend keeps it
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


def verify(path: Path) -> VerifyResult:
    """Walk the ledger once, in constant memory; a missing ledger is an empty, intact one."""
    check = ChainCheck(path)
    for _ in check.records():
        pass
    return check.result


class ChainCheck:
    """One pass over the ledger that yields its records and judges the chain on the way.

    `records()` yields every line that is a JSON object, in file order, bad ones included
    (a report shows what the file holds); `result` is the verdict once they are all read.
    """

    def __init__(self, path: Path | str,
                 lines: Callable[[], Iterator[bytes]] | None = None) -> None:
        """The ledger file at `path`, or the `lines` another backend reads (each with its
        newline), `path` then naming it for messages."""
        self.path = path
        self._lines = lines
        self._result: VerifyResult | None = None

    @property
    def result(self) -> VerifyResult:
        if self._result is None:
            raise RuntimeError("the verdict is known only once every record was read")
        return self._result

    def records(self) -> Iterator[dict[str, Any]]:
        if self._lines is not None:
            yield from self._judged(self._lines())
            return
        try:
            file = Path(self.path).open("rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            self._result = VerifyResult(self.path, ok=True, count=0)
            return
        with file:
            yield from self._judged(file)

    def _judged(self, lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
        judge = _Judge(self.path)
        for number, raw in enumerate(lines, start=1):
            record = judge.line(number, raw)
            if isinstance(record, dict):
                yield record
        self._result = judge.end()


@dataclass(slots=True)
class _Torn:
    line: int
    offset: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Gap:
    """Records `wanted` were missing where line `line` (record `seq`) stands."""

    line: int
    seq: int
    wanted: range


class _Judge:
    """The chain rule, fed the ledger's lines in order; `end()` gives the verdict."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.count = 0
        self.head = ""
        self.offset = 0
        self.repaired: list[int] = []
        self.torn: _Torn | None = None
        self.gap: _Gap | None = None
        self.verdict: VerifyResult | None = None

    def line(self, number: int, raw: bytes) -> Any:
        """Judge line `number` (its bytes, with the newline); return its JSON, or None."""
        start, self.offset = self.offset, self.offset + len(raw)
        body = raw[:-1] if raw.endswith(b"\n") else raw
        repeated: strictjson.DuplicateKeyError | None = None
        try:
            value: Any = parse_line(body, self.path, number)
        except strictjson.DuplicateKeyError as error:
            # Never handed on: either of the two values may be the forged one.
            value, is_json, repeated = None, True, error
        except strictjson.JSONError:
            value, is_json = None, False
        else:
            is_json = True
        if self.verdict is not None:
            return value
        if self.gap is not None:
            later = value.get("seq") if isinstance(value, dict) else None
            # Only an int: `in range` scans the whole range for anything else.
            if type(later) is int and later in self.gap.wanted:
                self._bad(self.gap.line, "reordered",
                          f"record {self.gap.seq} comes before record {later}")
            return value
        self._judge(number, start, raw, body, value, is_json, repeated)
        return value

    def end(self) -> VerifyResult:
        if self.verdict is None and self.gap is not None:
            wanted = self.gap.wanted
            gone = str(wanted.start) if len(wanted) == 1 else f"{wanted.start} to {wanted[-1]}"
            self._bad(self.gap.line, "removed",
                      f"record {gone} is missing before this line (record {self.gap.seq})")
        if self.verdict is None and self.torn is not None:
            self._bad(self.torn.line, "not_json", "this line is not JSON")
        if self.verdict is not None:
            return self.verdict
        return VerifyResult(self.path, ok=True, count=self.count, head=self.head,
                            repaired=tuple(self.repaired))

    def _bad(self, line: int, reason: Reason, detail: str) -> None:
        self.verdict = VerifyResult(self.path, False, self.count, line, reason, detail,
                                    self.head, tuple(self.repaired))

    def _judge(self, number: int, start: int, raw: bytes, body: bytes, value: Any,
               is_json: bool, repeated: strictjson.DuplicateKeyError | None) -> None:
        torn = self.torn
        if torn is not None and not (is_json and _vouches_for(value, torn)):
            self._bad(torn.line, "not_json", "this line is not JSON")
            return
        if repeated is not None:
            self._bad(number, "edited",
                      f"it holds the key {strictjson.quoted(repeated.key)} twice in one object "
                      f"(at {strictjson.quoted(repeated.pointer)}), and its hash vouches for "
                      "only one of the two values")
            return
        if not is_json:
            if not raw.endswith(b"\n"):
                self._bad(number, "truncated",
                          "the last line was cut short (a writer died mid-write); "
                          "the next append will mark it as torn and go on")
                return
            self.torn = _Torn(number, start, body)
            return
        if torn is not None:
            self.repaired.append(torn.line)
            self.torn = None
        if not isinstance(value, dict) or not isinstance(value.get("hash"), str):
            self._bad(number, "not_record", "this line is not an audit record")
            return
        if record_hash(value) != value["hash"]:
            self._bad(number, "edited", "its content does not match its hash")
            return
        seq, prev = value.get("seq"), value.get("prev")
        if seq != self.count + 1:
            if isinstance(seq, int) and seq > self.count + 1:
                self.gap = _Gap(number, seq, range(self.count + 1, seq))
                return
            self._bad(number, "reordered", f"record {seq} comes after record {self.count}")
            return
        if prev != self.head:
            self._bad(number, "edited",
                      f"its prev does not match the hash of record {self.count}: this or "
                      "the previous record was rewritten")
            return
        self.count, self.head = self.count + 1, value["hash"]


def _vouches_for(value: Any, torn: _Torn) -> bool:
    """Whether `value` is the marker the ledger writes right after the torn line `torn`."""
    if not isinstance(value, dict) or value.get("operation") != TORN_LINE_OPERATION:
        return False
    expected = {"offset": torn.offset, "length": len(torn.body),
                "sha256": hashlib.sha256(torn.body).hexdigest()}
    return bool(value.get("request") == expected)
