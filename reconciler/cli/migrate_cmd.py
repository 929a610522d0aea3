"""`state migrate --to`: move a state and its ledger to another backend."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import common_options, state_option
from reconciler.cli.pairs import state_pair_options
from reconciler.cli.settings import Settings, pass_settings
from reconciler.cli.state_cmds import state
from reconciler.cli.stored import state_backend
from reconciler.core import open_state
from reconciler.migrate import migrate_state
from reconciler.render.common import plural, printable
from reconciler.state import StateBackend


@state.command("migrate")
@common_options
@state_option
@click.option("--to", "target", required=True, metavar="URL|FILE",
              help="Where to: a postgresql:// URL, or a state file's path.")
@state_pair_options
@pass_settings
def state_migrate(settings: Settings, state_path: Path | None, target: str,
                  workspace_filter: str | None, version_filter: str | None) -> None:
    """Move the state and the ledger to another backend, and check the copy.

    The state keeps its lineage and serial, the ledger its records, chain and data keys; the
    copy is read back and compared (profiles, digest, chain head) before this reports
    success. The source is left as it was: switch to the new backend once this succeeds.

    \b
    Example:
      reconciler state migrate --state state/FYXXXXXXXX-live.json \\
          --to postgresql://ci@db.internal/reconciler
      reconciler --backend postgresql://ci@db.internal/reconciler state migrate \\
          --to state/FYXXXXXXXX-live.json
    """
    source, workspace, version = state_backend(settings, state_path, workspace_filter,
                                               version_filter)

    def destination(workspace: str, version: str) -> StateBackend:
        to_url = target.startswith(("postgresql://", "postgres://"))
        return open_state(None if to_url else Path(target), workspace, version,
                          settings.encryption(), target if to_url else None,
                          settings.lock_timeout)

    moved = migrate_state(source, destination, workspace or None,
                          version if workspace else None)
    ledger = (f"{plural(moved.records, 'ledger record')} (head {moved.head or 'none'})"
              + ("" if moved.ledger_copied else ", already there"))
    click.echo(printable(
        f"Moved {plural(moved.profiles, 'profile')} at serial {moved.serial} and {ledger} from "
        f"{source.describe()} to {target}; the copy matches (state digest "
        f"{moved.digest[:16]}). The source is unchanged."))
