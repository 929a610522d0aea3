"""`state migrate --to`: move a state and its ledger to another backend."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import common_options, encryption, lock_timeout, state_option
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
def state_migrate(state_path: Path | None, target: str) -> None:
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
    source, workspace, version = state_backend(state_path)

    def destination(workspace: str, version: str) -> StateBackend:
        if target.startswith(("postgresql://", "postgres://")):
            return open_state(None, workspace, version, encryption(), target, lock_timeout())
        return open_state(Path(target), workspace, version, encryption(), None, lock_timeout())

    moved = migrate_state(source, destination, workspace or None,
                          version if workspace else None)
    ledger = (f"{plural(moved.records, 'ledger record')} (head {moved.head or 'none'})"
              + ("" if moved.ledger_copied else ", already there"))
    click.echo(printable(
        f"Moved {plural(moved.profiles, 'profile')} at serial {moved.serial} and {ledger} from "
        f"{source.describe()} to {target}; the copy matches (state digest "
        f"{moved.digest[:16]}). The source is unchanged."))
