"""The steps the commands share: open the state for a configuration, and compute a plan.

This is the middle of the pipeline (load, validate, diff, plan, then render or apply): it does
no printing and knows no click; the CLI calls one function here per command.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from reconciler.audit import AuditContext, AuditLedger, ledger_path
from reconciler.audit.base import Ledger
from reconciler.audit.entry import ERASE_OPERATION
from reconciler.config import Config
from reconciler.encryption import Encryption
from reconciler.errors import UsageError
from reconciler.ownership import NO_ENTRIES, unmanaged
from reconciler.plan import Plan
from reconciler.planner import diff, forgotten_without_calls
from reconciler.state import LocalStateFile, State, StateBackend, default_state_path
from reconciler.words import noun, plural


def open_state(state_path: Path | None, workspace: str, version: str,
               encryption: Encryption, backend: str | None = None,
               lock_timeout: float = 0.0, state_dir: Path = Path("state")) -> StateBackend:
    """The state backend for a workspace: PostgreSQL at `backend` when given, else the file
    `--state` names, else the default file in `state_dir` (`reconciler.state.location`)."""
    if backend is not None:
        if state_path is not None:
            raise UsageError("--state names a file, and --backend (RECONCILER_BACKEND) a "
                             "database: give one of the two")
        from reconciler.state.postgres import PostgresState  # psycopg only when used

        return PostgresState(backend, workspace, version, encryption,
                             lock_timeout=lock_timeout)
    path = state_path or default_state_path(workspace, version, state_dir)
    return LocalStateFile(path, encryption, lock_timeout=lock_timeout)


def open_ledger(state_dir: Path, encryption: Encryption, backend: str | None = None) -> Ledger:
    """The audit ledger `audit` reads: the backend's, else `audit.jsonl` in `state_dir`."""
    if backend is not None:
        from reconciler.state.postgres import PostgresState

        return PostgresState(backend, "", "live", encryption).ledger()
    return AuditLedger(ledger_path(state_dir), encryption=encryption)


def make_plan(
    config: Config,
    state: State,
    *,
    targets: Sequence[str] = (),
    max_delete_percent: float = 30.0,
    force: bool = False,
    plan_id: str | None = None,
    created_at: str | None = None,
    notes: Sequence[str] = (),
    unknown_targets: bool = True,
) -> Plan:
    """Diff the configuration against the state; refuse a plan that deletes too much.

    `plan_id` and `created_at`: those of the run, when it plans several workspace/version
    pairs (one saved plan holds them all); `notes`: warnings about the state's location;
    `unknown_targets`: warn of a `--target` this pair does not know (not when other pairs
    may know it).
    """
    scope = set(targets) if targets else config.profiles.keys()
    warnings = tuple(notes) + tuple(
        f"--target {target}: no such profile in the configuration or the state"
        for target in targets
        if unknown_targets and target not in config.profiles and target not in state.profiles
        and target not in state.missing
    ) + tuple(
        f"{distinct_id}: the server has no such profile (found by import or refresh), so no "
        "call is planned for it; create it in Fyno, or remove it from the configuration"
        for distinct_id in sorted(state.missing) if distinct_id in scope
    ) + tuple(
        f"{distinct_id}: unconfirmed: an earlier apply's call may or may not have reached the "
        "server; apply reads this profile back before anything else (and writes to it only "
        "if this plan names it)"
        for distinct_id in sorted(state.unconfirmed)
    )
    calls = diff(config.profiles, state.profiles, targets, state.missing, config.ownership,
                 state.managed)
    policies = {} if config.ownership.is_exclusive else {
        distinct_id: policy for distinct_id in sorted(
            {call.distinct_id for call in calls} | set(state.profiles.keys() - config.profiles))
        if not (policy := config.ownership.policy(distinct_id)).is_exclusive}
    kept = 0 if config.ownership.is_exclusive else sum(
        len(unmanaged(state.profiles[distinct_id], config.ownership.policy(distinct_id),
                      state.managed.get(distinct_id, NO_ENTRIES)))
        for distinct_id in scope if distinct_id in state.profiles)
    if kept:
        warnings += (f"{plural(kept, 'recorded entry', 'recorded entries')} written by others "
                     f"(the app, the dashboard) {noun(kept, 'is', 'are')} kept in owned or "
                     f"ignored channels; `reconciler state show ID` marks "
                     f"{noun(kept, 'it', 'them')}",)
    plan = Plan(
        plan_id=plan_id or new_plan_id(),
        created_at=created_at or now(),
        workspace=config.workspace,
        version=config.version,
        lineage=state.lineage,
        serial=state.serial,
        config_digest=lambda: config.digest,  # read only by a saved or JSON plan
        recorded_entries=state.entry_count(),
        calls=calls,
        forget=forgotten_without_calls(config.profiles, state.profiles, calls, targets),
        targets=tuple(targets),
        warnings=warnings,
        policies=policies,
    )
    return plan.check_deletions(max_delete_percent, force)


def new_plan_id() -> str:
    return str(uuid.uuid4())


def now() -> str:
    """The time a plan is made, as it records it: `2026-11-30T10:04:11Z`."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def erase_profiles(backend: StateBackend, state: State, distinct_ids: Sequence[str],
                   ledger: Ledger, context: AuditContext) -> dict[str, int]:
    """Make every personal value of `distinct_ids` (profiles `state` no longer records, its
    lock held) unreadable for good: in the state and its backup (`backend.erase`), and in
    the ledger, by destroying their data keys; each erasure is recorded. Returns how many
    data keys each profile had."""
    backend.erase(state, distinct_ids)
    return {distinct_id: ledger.erase(context.entry(
        distinct_id, ERASE_OPERATION, request=None, status=None,
        message="erased: the values of this profile's records can no longer be read",
        attempts=0, before=None, after=None)) for distinct_id in distinct_ids}
