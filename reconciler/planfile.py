"""Saved plans: written by `plan --out`, read by `show` and `apply`; edited/stale ones refused."""

from __future__ import annotations

from pathlib import Path

from reconciler import strictjson
from reconciler.atomic import replace_file
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.errors import PlanEditedError, PlanFileError, PlanStaleError
from reconciler.plan import PLAN_FORMAT_VERSION, Plan, checksum
from reconciler.render.json import render_json


def write_plan(plan: Plan, path: Path, encryption: Encryption = NO_ENCRYPTION) -> None:
    """Save atomically with mode 0600, sealed when a key is configured: a plan carries full,
    personal values (and is kept for weeks as a CI artifact)."""
    replace_file(path, encryption.seal_file("plan", render_json(plan, show_values=True).encode()))


def read_plan(path: Path, encryption: Encryption = NO_ENCRYPTION) -> Plan:
    """Load a saved plan, refusing one that is unreadable, edited or malformed.

    In this order: strict JSON (no repeated key), the format version, the checksum (an edit
    is named as such, even when it also broke the form), the schema, and last that every
    call's method, path and body are what its changes make: apply sends what the changes
    make, so a body that says otherwise would show a reviewer another request than the one
    sent.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PlanFileError(f"cannot read plan file {path}: {error.strerror}") from None
    # A clear plan is read even when a key is configured: it may predate the key, and its
    # checksum and the staleness check guard it as they guard a sealed one.
    raw = encryption.open_file(raw, f"plan file {path}", clear_ok=True)
    try:
        document = strictjson.loads(raw, what=f"plan file {path}")
    except strictjson.JSONError as error:
        raise PlanFileError(f"{error}: it is not a saved plan as `plan --out` writes it") \
            from None
    if isinstance(document, dict) and document.get("masked") is True:
        raise PlanFileError(f"{path} is a plan printed with its values masked (`--format json` "
                            "without --show-values), not a saved plan: apply the file "
                            "`reconciler plan --out FILE` wrote")
    if not isinstance(document, dict) or "checksum" not in document:
        raise PlanFileError(f"{path} is not a saved plan: it has no checksum")
    if document.get("format_version") != PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"{path} has plan format_version "
            f"{strictjson.shown_json(document.get('format_version'))}; this reconciler reads "
            f"version {PLAN_FORMAT_VERSION}: run `reconciler plan --out` again"
        )
    if checksum(document) != document["checksum"]:
        raise PlanEditedError(
            f"{path} was edited after it was saved (its checksum does not match its content); "
            "a saved plan is applied exactly as reviewed: run `reconciler plan --out` again"
        )
    problems = strictjson.schema_problems(strictjson.validator("plan.schema.json"), document)
    if problems:
        raise PlanFileError(f"{path} is not a valid saved plan: " + "; ".join(problems))
    plan = Plan.from_json(document)
    for index, (call, stored) in enumerate(zip(plan.calls, document["calls"], strict=True)):
        request = call.request()
        if (request.method, request.path, request.body) != (
                stored["method"], stored["path"], stored["body"]):
            raise PlanFileError(
                f"{path} is not a valid saved plan: at /calls/{index}: its method, path or "
                "body is not what its changes make; the plan was not written by `reconciler "
                "plan --out` as it is: run `reconciler plan --out` again")
    return plan


def check_fresh(plan: Plan, path: Path, lineage: str | None, serial: int,
                workspace: str, version: str) -> None:
    """Refuse a plan computed against another state than the one it would be applied to."""
    advice = "run `reconciler plan --out` again and review the new plan"
    if (plan.workspace, plan.version) != (workspace, version):
        raise PlanStaleError(
            f"{path} is for workspace {plan.workspace} ({plan.version}), but the state is for "
            f"{workspace} ({version}): check --state"
        )
    if plan.lineage != lineage:
        none = "none: no state yet"
        raise PlanStaleError(
            f"{path} was computed against another state (lineage {plan.lineage or none}; "
            f"this state's lineage is {lineage or none}): {advice}"
        )
    if plan.serial != serial:
        raise PlanStaleError(
            f"{path} is stale: it was computed against state serial {plan.serial}, and the state "
            f"is now at serial {serial} (changed since the plan was made): {advice}"
        )
