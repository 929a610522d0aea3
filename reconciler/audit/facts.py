"""Changes to what is managed that no API call makes, recorded in the ledger all the same.

`import` (what was adopted), `state rm` (forgotten without a call), `refresh` (drift found),
`state unlock` (whose lock was removed) and a plan forced past the safety rail change what
the reconciler manages, or how, without a write to the server; a ledger that leaves them out
cannot answer "who changed this, and why". Each is one record, with the actor, the commit
and, in CI, the pipeline's URL (`AuditContext`).

`record_lost_requests` puts in the ledger the requests a state holds in doubt but the ledger
lacks: a process killed between sending a request and recording its answer leaves it only in
the journal, which the next load folds into the state's doubts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from reconciler.audit.base import Ledger
from reconciler.audit.entry import AuditContext
from reconciler.effects import after_call
from reconciler.model import EMPTY, ChannelData
from reconciler.state import Doubt, State

LOST_ANSWER: Final = ("outcome unknown: no answer was recorded (the process that sent it "
                      "stopped first); the read-back that settles it says what it did")


@dataclass(frozen=True, slots=True)
class Fact:
    """One change to what is managed; `distinct_id` None: about the whole state."""

    distinct_id: str | None
    operation: str  # import, state_rm, drift, unlock, force, read_back
    message: str
    before: ChannelData | None = None
    after: ChannelData | None = None
    settles: tuple[str, ...] = ()  # a read-back: the requests of unknown outcome it settles
    found: str | None = None  # ... and what it found of them (`converge.Found`)


def record_facts(ledger: Ledger, context: AuditContext, facts: Iterable[Fact]) -> int:
    """Append `facts` to `ledger` (not durable: flushed by its close); returns how many.
    An import of 100,000 profiles must not wait for 100,000 fsyncs."""
    listed = list(facts)
    with ledger:
        ledger.prepare((context.workspace, context.version, fact.distinct_id)
                       for fact in listed if fact.distinct_id is not None)
        for fact in listed:
            ledger.append(context.entry(
                fact.distinct_id, fact.operation, request=None, status=None,
                message=fact.message, attempts=0,
                before=None if fact.before is None else fact.before.to_json(),
                after=None if fact.after is None else fact.after.to_json(),
                settles=fact.settles, found=fact.found))
        ledger.sync()
    return len(listed)


def record_lost_requests(state: State, ledger: Ledger, context: AuditContext) -> int:
    """Append a record, outcome unknown, for each request `state` holds in doubt that the
    ledger does not name; returns how many. Run before anything settles those doubts (the
    read-back's record then points to them), so no request the server may have received is
    ever missing from the ledger. The ledger is only read when there are doubts."""
    wanted: dict[str, tuple[str, Doubt, ChannelData]] = {}
    for distinct_id, doubts in sorted(state.doubts.items()):
        before = state.profiles.get(distinct_id, EMPTY)
        for doubt in doubts:
            wanted[doubt.request_id] = (distinct_id, doubt, before)
            before = after_call(before, doubt.call)
    if wanted:
        for record in ledger.records():
            wanted.pop(record.get("request_id") or "", None)
    for request_id, (distinct_id, doubt, before) in wanted.items():
        request = doubt.call.request()
        ledger.append(context.entry(
            distinct_id, doubt.call.operation, request=request.body, status=None,
            message=LOST_ANSWER, attempts=1, before=before.to_json(), after=None,
            method=request.method, path=request.path, outcome="unknown",
            request_id=request_id))
    return len(wanted)
