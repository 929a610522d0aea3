"""Changes to what is managed that no API call makes, recorded in the ledger all the same.

`import` (what was adopted), `state rm` (forgotten without a call), `refresh` (drift found),
`state unlock` (whose lock was removed) and a plan forced past the safety rail change what
the reconciler manages, or how, without a write to the server; a ledger that leaves them out
cannot answer "who changed this, and why". Each is one record, with the actor, the commit
and, in CI, the pipeline's URL (`AuditContext`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reconciler.audit.entry import AuditContext
from reconciler.audit.ledger import AuditLedger, ledger_path
from reconciler.model import ChannelData


@dataclass(frozen=True, slots=True)
class Fact:
    """One change to what is managed; `distinct_id` None: about the whole state."""

    distinct_id: str | None
    operation: str  # import, state_rm, drift, unlock, force
    message: str
    before: ChannelData | None = None
    after: ChannelData | None = None


def record_facts(state_dir: Path, context: AuditContext, facts: Iterable[Fact]) -> int:
    """Append `facts` to the ledger of `state_dir`; returns how many. One fsync after the
    last (an import of 100,000 profiles must not wait for 100,000 of them)."""
    listed = list(facts)
    with AuditLedger(ledger_path(state_dir)) as ledger:
        for count, fact in enumerate(listed, 1):
            ledger.durable = count == len(listed)
            ledger.append(context.entry(
                fact.distinct_id, fact.operation, request=None, status=None,
                message=fact.message, attempts=0,
                before=None if fact.before is None else fact.before.to_json(),
                after=None if fact.after is None else fact.after.to_json()))
    return len(listed)
