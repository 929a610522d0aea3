"""`audit` and `audit verify`: read and check the hash-chained ledger of every call made."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

import click

from reconciler.audit import Format, ledger_path, query, render_records, verify
from reconciler.cli.group import cli
from reconciler.cli.options import F, common_options, format_option
from reconciler.errors import AuditError

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"]


def state_dir_option(function: F) -> F:
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("state"),
        show_default=True, help="Directory holding the state files and audit.jsonl.",
    )(function)


@cli.group(invoke_without_command=True)
@common_options
@click.option("--profile", metavar="ID", help="Only the records of this distinct_id.")
@click.option("--since", type=click.DateTime(DATE_FORMATS),
              help="Only records from this UTC date or time on.")
@format_option("text", "json", "csv")
@state_dir_option
@click.pass_context
def audit(ctx: click.Context, profile: str | None, since: datetime | None, fmt: str,
          state_dir: Path) -> None:
    """Show the audit ledger: every API call apply made, oldest first.

    \b
    Example:
      reconciler audit --profile u-1001 --since 2026-11-01 --format csv > u-1001.csv
      reconciler audit verify
    """
    if ctx.invoked_subcommand is not None:
        return
    path = ledger_path(state_dir)
    if not path.exists():
        raise AuditError(f"no audit ledger at {path}: nothing was applied from here yet")
    records = query(path, profile=profile, since=since)
    for chunk in render_records(records, cast(Format, fmt)):
        click.echo(chunk, nl=False)


@audit.command("verify")
@common_options
@state_dir_option
def audit_verify(state_dir: Path) -> None:
    """Check that no record of the ledger was edited, removed or reordered.

    \b
    Example:
      reconciler audit verify --state-dir state
    """
    path = ledger_path(state_dir)
    if not path.exists():
        raise AuditError(f"no audit ledger at {path}")
    result = verify(path)
    if not result.ok:
        raise AuditError(f"the audit ledger is damaged: {result.describe()}")
    click.echo(result.describe())
