"""Saved plans: written by `plan --out`, read by `show` and `apply`; edited/stale ones refused."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from reconciler.atomic import replace_file
from reconciler.errors import PlanEditedError, PlanFileError, PlanStaleError
from reconciler.plan import PLAN_FORMAT_VERSION, Plan, checksum
from reconciler.render.json import render_json


def write_plan(plan: Plan, path: Path) -> None:
    """Save atomically with mode 0600: a plan carries full, personal values."""
    replace_file(path, render_json(plan).encode())


def read_plan(path: Path) -> Plan:
    """Load a saved plan, refusing one that is unreadable, edited or malformed."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PlanFileError(f"cannot read plan file {path}: {error.strerror}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise PlanFileError(f"{path} is not a saved plan: invalid JSON ({error})") from None
    if not isinstance(document, dict) or "checksum" not in document:
        raise PlanFileError(f"{path} is not a saved plan: it has no checksum")
    if document.get("format_version") != PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"{path} has plan format_version {document.get('format_version')!r}; this reconciler "
            f"reads version {PLAN_FORMAT_VERSION}: run `reconciler plan --out` again"
        )
    if checksum(document) != document["checksum"]:
        raise PlanEditedError(
            f"{path} was edited after it was saved (its checksum does not match its content); "
            "a saved plan is applied exactly as reviewed: run `reconciler plan --out` again"
        )
    problem = next(iter(_validator().iter_errors(document)), None)
    if problem is not None:
        where = "/".join(str(part) for part in problem.instance_path) or "(root)"
        raise PlanFileError(f"{path} is not a valid saved plan: at {where}: {problem.message}")
    return Plan.from_json(document)


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


@cache
def _validator() -> Any:
    text = resources.files("reconciler").joinpath("schemas/plan.schema.json").read_text("utf-8")
    return jsonschema_rs.validator_for(orjson.loads(text))
