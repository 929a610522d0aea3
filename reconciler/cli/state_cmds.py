"""`state list | show | rm | unlock`: the recorded state, without touching the server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import orjson

from reconciler.cli.group import cli
from reconciler.cli.options import common_options, format_option, show_values_option, state_option
from reconciler.core import open_state
from reconciler.errors import UsageError
from reconciler.mask import display_value
from reconciler.model import CHANNEL_ORDER


@cli.group()
@common_options
def state() -> None:
    """Inspect or edit the recorded state without touching the server.

    \b
    Example:
      reconciler state list --state state/FYXXXXXXXX-live.json
    """


def _state_backend(state_path: Path | None) -> tuple[Any, str, str]:
    workspace = os.environ.get("FYNO_WSID")
    version = os.environ.get("FYNO_VERSION") or "live"
    if state_path is None and not workspace:
        raise UsageError("give --state FILE, or set FYNO_WSID (and FYNO_VERSION) to find the "
                         "default state file")
    return open_state(state_path, workspace or "", version), workspace or "", version


def _read_state(state_path: Path | None) -> Any:
    backend, workspace, version = _state_backend(state_path)
    return backend.load(workspace or None, version if workspace else None)


@state.command("list")
@common_options
@state_option
def state_list(state_path: Path | None) -> None:
    """List the distinct_ids the state manages.

    \b
    Example:
      reconciler state list --state state/FYXXXXXXXX-live.json
    """
    recorded = _read_state(state_path)
    notes = {name: " (missing on the server)" for name in recorded.missing}
    notes.update({name: " (unconfirmed: the next apply reads it back first)"
                  for name in recorded.unconfirmed})
    for name in sorted(recorded.profiles.keys() | recorded.missing):
        click.echo(name + notes.get(name, ""))


@state.command("show")
@common_options
@click.argument("distinct_id")
@state_option
@format_option("text", "json")
@show_values_option
def state_show(distinct_id: str, state_path: Path | None, fmt: str, show_values: bool) -> None:
    """Show what the state records for one profile.

    \b
    Example:
      reconciler state show u-1001 --state state/FYXXXXXXXX-live.json
    """
    recorded = _read_state(state_path)
    profile = recorded.profiles.get(distinct_id)
    if profile is None and distinct_id in recorded.missing:
        click.echo(f"{distinct_id}: recorded as missing on the server (nothing is planned "
                   "for it until a refresh finds it)")
        return
    if profile is None:
        raise UsageError(f"the state does not manage a profile {distinct_id!r}")
    if fmt == "json":
        click.echo(orjson.dumps(profile.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(distinct_id)
    for name in sorted(profile.channels, key=CHANNEL_ORDER.__getitem__):
        value = profile.channels[name]
        for item in (value,) if isinstance(value, str) else value:
            click.echo(f"  {name}: {display_value(name, item, show_values=show_values)}")
    for name, raw in sorted(profile.unmanaged.items()):
        shown = orjson.dumps(raw).decode() if show_values else "(masked)"
        click.echo(f"  {name}: {shown} (not managed by reconciler)")


@state.command("rm")
@common_options
@click.argument("distinct_ids", nargs=-1, required=True, metavar="ID...")
@state_option
def state_rm(distinct_ids: tuple[str, ...], state_path: Path | None) -> None:
    """Forget profiles without touching the server.

    \b
    Example:
      reconciler state rm u-1001 u-1002 --state state/FYXXXXXXXX-live.json
    """
    backend, workspace, version = _state_backend(state_path)
    with backend.lock("state rm"):
        recorded = backend.load(workspace or None, version if workspace else None)
        unknown = [name for name in distinct_ids
                   if name not in recorded.profiles and name not in recorded.missing]
        if unknown:
            raise UsageError(f"the state does not manage: {', '.join(unknown)}; nothing removed")
        for name in distinct_ids:
            recorded.profiles.pop(name, None)
            recorded.missing.discard(name)
            recorded.unconfirmed.discard(name)
        saved = backend.save(recorded)
    click.echo(f"Removed {len(distinct_ids)} profile(s) from the state (serial {saved.serial}).")


@state.command("unlock")
@common_options
@state_option
def state_unlock(state_path: Path | None) -> None:
    """Remove a stale state lock left by a process that is gone.

    \b
    Example:
      reconciler state unlock --state state/FYXXXXXXXX-live.json
    """
    backend, _, _ = _state_backend(state_path)
    holder = backend.unlock()
    if holder is None:
        click.echo("The state is not locked.")
    else:
        click.echo(f"Removed the lock held by {holder}.")
