"""The state a `state` or `audit erase` command works on, and erasing profiles from it.

Shared by `state_cmds` (`state rm --erase`) and `privacy_cmds` (`audit erase`, `state
encrypt`, `state decrypt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.options import audit_context, record_lost
from reconciler.cli.settings import Settings
from reconciler.core import erase_profiles, open_state
from reconciler.encryption import Encryption
from reconciler.errors import UsageError
from reconciler.render.common import plural, printable
from reconciler.state import State, StateBackend
from reconciler.state.location import default_state_dir


def state_backend(settings: Settings, state_path: Path | None, workspace: str | None = None,
                  version: str | None = None, encrypted: Encryption | None = None
                  ) -> tuple[StateBackend, str, str]:
    """The backend `--state` names, else the default one of the pair `--workspace` and
    `--version` name (`state_pair_options`: on the command line, or FYNO_WSID and
    FYNO_VERSION)."""
    workspace = workspace or settings.workspace
    version = version or settings.version or "live"
    if state_path is None and not workspace:
        raise UsageError("give --state FILE, or set FYNO_WSID (and FYNO_VERSION) to find the "
                         "default state file (or the workspace's state in --backend)")
    backend = open_state(state_path, workspace or "", version,
                         settings.encryption() if encrypted is None else encrypted,
                         settings.backend, settings.lock_timeout, default_state_dir(Path.cwd()))
    return backend, workspace or "", version


def erase_in(settings: Settings, backend: StateBackend, state: State,
             distinct_ids: Sequence[str]) -> None:
    """Erase `distinct_ids` (no longer recorded in `state`, whose lock is held) from the
    state, its backup and the ledger of `backend`; say what was done."""
    record_lost(settings, backend, state)  # a request in doubt goes on record before its values
    context = audit_context(settings, config_dir=None, plan_id="", workspace=state.workspace,
                            version=state.version)
    with backend.ledger(durable=True) as ledger:
        destroyed = erase_profiles(backend, state, distinct_ids, ledger, context)
        clear = {distinct_id: ledger.unsealed((state.workspace, state.version, distinct_id))
                 for distinct_id in distinct_ids}
    for distinct_id, keys in destroyed.items():
        what = (f"{plural(keys, 'data key')} destroyed: the values of its ledger records can "
                "no longer be read" if keys else "the ledger held no sealed values of it")
        click.echo(printable(f"Erased {distinct_id}: {what}; the state (and any backup of it) "
                             "holds none. The records keep their place: `audit verify` still "
                             "passes."))
        if clear[distinct_id]:
            click.echo(printable(
                f"Warning: {plural(clear[distinct_id], 'older record')} of {distinct_id} "
                "(written before records were sealed) hold its values in clear; they cannot "
                "be erased without breaking the chain. Start a new ledger if they must go: "
                "move audit.jsonl aside, keeping it where the law allows."), err=True)
