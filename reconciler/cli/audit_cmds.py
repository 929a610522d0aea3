"""`audit` and `audit verify`: read and check the hash-chained ledger of every call made."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

import click

from reconciler.audit import Format, VerifyResult, ledger_path, render_records
from reconciler.audit.base import Ledger
from reconciler.audit.report import opened, select
from reconciler.cli.group import cli
from reconciler.cli.options import F, common_options, format_option, show_values_option
from reconciler.cli.settings import Settings, pass_settings
from reconciler.core import open_ledger
from reconciler.errors import AuditError
from reconciler.render.common import printable
from reconciler.state.location import default_state_dir

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"]


def state_dir_option(function: F) -> F:
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path),
        help="Directory holding the state files and audit.jsonl (default: the `state/` "
             "directory the state commands use: the nearest one from here up to the top of "
             "the git repository).",
    )(function)


def _state_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    return default_state_dir(Path.cwd())


@cli.group(invoke_without_command=True)
@common_options
@click.option("--profile", metavar="ID",
              help="Only the records of this distinct_id; in text, its history call by call.")
@click.option("--since", type=click.DateTime(DATE_FORMATS),
              help="Only records from this UTC date or time on.")
@click.option("--workspace", metavar="WSID", help="Only the records of this workspace.")
@click.option("--version", type=click.Choice(["live", "test"]),
              help="Only the records of this version.")
@format_option("text", "json", "csv")
@show_values_option
@state_dir_option
@click.pass_context
@pass_settings
def audit(settings: Settings, ctx: click.Context, profile: str | None, since: datetime | None,
          workspace: str | None, version: str | None, fmt: str, show_values: bool,
          state_dir: Path | None) -> None:
    """Show the audit ledger: every API call apply made, oldest first.

    The hash chain is checked while the records are printed: a damaged ledger is still
    shown, with a warning on stderr naming its first bad line (exit 0; `audit verify`
    exits 1). In text, `--profile` tells that profile's history with each change to its
    channels. `--format json` (JSON Lines, one object per record) and `--format csv` carry
    every field of the records. In every format, values (and the server's messages that
    quote them) are masked unless `--show-values`; those of an erased profile are gone.

    \b
    Example:
      reconciler audit --profile u-1001              # what happened to u-1001, and who did it
      reconciler audit --since 2026-11-01 --format csv > november.csv
      reconciler audit verify
    """
    if ctx.invoked_subcommand is not None:
        return
    ledger = _ledger(settings, _state_dir(state_dir))
    check = ledger.chain()
    records = opened(select(check.records(), profile=profile, since=since,
                            workspace=workspace, version=version), ledger.keys)
    for chunk in render_records(records, cast(Format, fmt), profile=profile,
                                show_values=show_values):
        click.echo(chunk, nl=False)
    if not check.result.ok:
        click.echo(printable(f"Warning: {damaged(check.result)}; the records are shown as the "
                             f"file holds them, and the chain vouches for none from line "
                             f"{check.result.first_bad} on (`reconciler audit verify` exits "
                             "1 on it)."), err=True)


@audit.command("verify")
@common_options
@state_dir_option
@pass_settings
def audit_verify(settings: Settings, state_dir: Path | None) -> None:
    """Check that no record of the ledger was edited, removed or reordered.

    \b
    Example:
      reconciler audit verify --state-dir state
    """
    check = _ledger(settings, _state_dir(state_dir)).chain()
    for _ in check.records():
        pass
    result = check.result
    if not result.ok:
        raise AuditError(damaged(result))
    click.echo(result.describe())


def _ledger(settings: Settings, state_dir: Path) -> Ledger:
    """The ledger of `--backend`, else `audit.jsonl` in `--state-dir`."""
    url = settings.backend
    if url is None and not ledger_path(state_dir).exists():
        raise AuditError(f"no audit ledger at {ledger_path(state_dir)}: nothing was applied "
                         "from here yet")
    return open_ledger(state_dir, settings.encryption(), url)


def damaged(result: VerifyResult) -> str:
    """What `audit verify` refuses and `audit` warns of: the first bad line, and why."""
    return f"the audit ledger is damaged: {result.describe()}"
