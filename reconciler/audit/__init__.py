"""The audit ledger: every API call apply makes, hash-chained in `<state-dir>/audit.jsonl`.

    entry   what a record says (AuditEntry, AuditContext), the actor and the git commit
    ledger  appending, thread- and process-safe (AuditLedger); reading (read_records)
    verify  checking the chain (verify, VerifyResult)
    report  filtering and rendering for `reconciler audit` (query, render_records)
"""

from __future__ import annotations

from reconciler.audit.entry import (
    TORN_LINE_OPERATION,
    AuditContext,
    AuditEntry,
    git_commit,
    resolve_actor,
    utc_now,
)
from reconciler.audit.facts import Fact, record_facts, record_lost_requests
from reconciler.audit.ledger import (
    LEDGER_NAME,
    AuditLedger,
    ledger_path,
    read_records,
)
from reconciler.audit.report import FORMATS, Format, query, render_records
from reconciler.audit.verify import Reason, VerifyResult, verify
from reconciler.errors import AuditError

__all__ = [
    "FORMATS",
    "LEDGER_NAME",
    "TORN_LINE_OPERATION",
    "AuditContext",
    "AuditEntry",
    "AuditError",
    "AuditLedger",
    "Fact",
    "Format",
    "Reason",
    "VerifyResult",
    "git_commit",
    "ledger_path",
    "query",
    "read_records",
    "record_facts",
    "record_lost_requests",
    "render_records",
    "resolve_actor",
    "utc_now",
    "verify",
]
