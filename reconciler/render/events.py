"""`apply --format json`: the run as a stream of JSON objects, one per line, as Terraform's
`apply -json` gives, for CI systems and other tools to follow without parsing prose.

Every object has `type` and `time` (UTC, ISO 8601). In order:

    {"type": "plan", ...}      what is about to run: plan id, workspace, version, counts
    {"type": "request", ...}   a write: operation, method, path, status, outcome (ok,
                               refused, unknown), attempts, request_id, message; `request`,
                               the body, masked unless --show-values
    {"type": "read_back", ...} a GET of a profile in doubt: `settles` (the request ids it
                               settles) and `found` (landed, not_landed, landed_partly)
    {"type": "drift", ...}     a read-back found a change no call of ours explains
    {"type": "forget", ...}    a profile left management without a call
    {"type": "converge", ...}  a profile given up on (over its bounds, or not converging)
    {"type": "failed", ...}    after the run, each profile that failed, and why
    {"type": "summary", ...}   how the run ended: made, planned, failed, requests, serial,
                               and `stopped` (why it stopped early, or null)

Objects hold no personal value (phones, e-mails, tokens), not even in a server's `message`
that quotes one, unless `show_values`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from reconciler.audit import utc_now
from reconciler.converge import Report
from reconciler.mask import mask_message, mask_request
from reconciler.plan import Plan

EVENTS_VERSION: Final = 1
"""Bumped when a field changes meaning or goes away; new fields may appear at any time."""


def event_line(event: dict[str, Any]) -> str:
    """One event as its line (no newline): compact JSON, keys in a stable order."""
    return orjson.dumps(event).decode()


def plan_event(plan: Plan) -> dict[str, Any]:
    return {"type": "plan", "time": utc_now(), "events_version": EVENTS_VERSION,
            "plan_id": plan.plan_id, "workspace": plan.workspace, "version": plan.version,
            "calls": len(plan.calls), "forced": plan.forced,
            "summary": plan.summary.to_json()}


def report_event(report: Report, *, show_values: bool = False) -> dict[str, Any]:
    """A request, a read-back, drift or a forget, as the ledger's record of it says."""
    kind = "request" if report.outcome is not None else report.operation
    event: dict[str, Any] = {"type": kind, "time": utc_now(), "distinct_id": report.distinct_id,
                             "operation": report.operation}
    if report.outcome is not None:
        event.update(method=report.method, path=report.path, outcome=report.outcome.value,
                     request_id=report.request_id,
                     request=report.request if show_values else mask_request(report.request))
    event.update(status=report.status, attempts=report.attempts,
                 message=report_message(report, show_values))
    if report.settles:
        event["settles"] = list(report.settles)
    if report.found is not None:
        event["found"] = report.found.value
    return event


def failed_event(report: Report, *, show_values: bool = False) -> dict[str, Any]:
    """A profile that failed; its last request, if any, has its own `request` event."""
    return {"type": "failed", "time": utc_now(), "distinct_id": report.distinct_id,
            "operation": report.operation, "status": report.status,
            "attempts": report.attempts, "message": report_message(report, show_values)}


def report_message(report: Report, show_values: bool) -> str:
    """The server's `_message`, which may quote the values it refused: masked too."""
    return report.message if show_values else mask_message(report.message, report.request)


def summary_event(*, planned: int, made: int, failed: int, requests: int, seconds: float,
                  serial: int, unconfirmed: int, stopped: str | None) -> dict[str, Any]:
    """`stopped`: why the run stopped early (interrupted, or the error), None if it did not."""
    return {"type": "summary", "time": utc_now(), "planned": planned, "made": made,
            "failed": failed, "requests": requests, "seconds": round(seconds, 3),
            "serial": serial, "unconfirmed": unconfirmed, "stopped": stopped}
