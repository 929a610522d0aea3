"""`state list | show | rm | unlock`: the recorded state, without touching the server.

Every distinct_id, value and lock holder is shown through `printable` (JSON through
`printable_json`): the state may hold whatever a server or an import put there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson

from reconciler.audit import Fact
from reconciler.cli.group import cli
from reconciler.cli.options import (
    common_options,
    format_option,
    record,
    record_lost,
    show_values_option,
    state_option,
)
from reconciler.cli.pairs import state_pair_options
from reconciler.cli.settings import Settings, pass_settings
from reconciler.cli.stored import erase_in, state_backend
from reconciler.errors import StateError, StateLockedError, UsageError
from reconciler.mask import display_values, mask_channel_object
from reconciler.model import CHANNEL_ORDER, Token
from reconciler.ownership import entry_of
from reconciler.render.common import plural, printable, printable_json
from reconciler.state import (
    Forgotten,
    HolderStatus,
    LockInfo,
    State,
    StateBackend,
    apply_event,
    holder_status,
)


@cli.group()
@common_options
def state() -> None:
    """Inspect or edit the recorded state without touching the server.

    \b
    Example:
      reconciler state list --state state/FYXXXXXXXX-live.json
    """


def _record_unlock(settings: Settings, state_path: Path | None, workspace: str, version: str,
                   removed: LockInfo, *, forced: bool) -> None:
    how = "with --force" if forced else "its process was gone"
    backend = state_backend(settings, state_path, workspace, version)[0]
    record(settings, backend, workspace, version,
           [Fact(None, "unlock", f"removed the state lock held by {removed} ({how})")])


def _read_state(settings: Settings, state_path: Path | None, workspace: str | None,
                version: str | None) -> tuple[StateBackend, State]:
    """The backend and the state it holds; an error when it holds none.

    A state that was never saved (no file, no row) would list as empty and exit 0, which
    reads as "nothing is managed" when in fact the command looked in the wrong place (a
    mistyped `--state`, another directory, FYNO_WSID unset), as `terraform state list` says
    "No state file was found!".
    """
    backend, workspace, version = state_backend(settings, state_path, workspace, version)
    recorded = backend.load(workspace or None, version if workspace else None)
    if recorded.lineage is None and not recorded.profiles and not recorded.missing:
        raise StateError(_no_state(backend, state_path))
    return backend, recorded


def _no_state(backend: StateBackend, state_path: Path | None) -> str:
    where = printable(backend.describe())
    if state_path is not None:
        return f"--state names no state: {where} does not exist"
    return (f"no state at {where} (the default of FYNO_WSID and FYNO_VERSION): name the "
            "state with --state FILE, set FYNO_WSID and FYNO_VERSION to the workspace and "
            "version it records, or RECONCILER_BACKEND to the database that holds it")


@state.command("list")
@common_options
@state_option
@state_pair_options
@pass_settings
def state_list(settings: Settings, state_path: Path | None, workspace_filter: str | None,
               version_filter: str | None) -> None:
    """List the distinct_ids the state manages.

    \b
    Example:
      reconciler state list --state state/FYXXXXXXXX-live.json
    """
    backend, recorded = _read_state(settings, state_path, workspace_filter, version_filter)
    notes = {name: " (missing on the server)" for name in recorded.missing}
    notes.update({name: " (unconfirmed: the next apply reads it back first)"
                  for name in recorded.unconfirmed})
    for name in sorted(recorded.profiles.keys() | recorded.missing):
        click.echo(printable(name) + notes.get(name, ""))
    holder = backend.lock_info()
    if holder is not None:
        click.echo(printable(f"Locked by {holder}."), err=True)


@state.command("show")
@common_options
@click.argument("distinct_id")
@state_option
@state_pair_options
@format_option("text", "json")
@show_values_option
@pass_settings
def state_show(settings: Settings, distinct_id: str, state_path: Path | None,
               workspace_filter: str | None, version_filter: str | None, fmt: str,
               show_values: bool) -> None:
    """Show what the state records for one profile.

    \b
    Example:
      reconciler state show u-1001 --state state/FYXXXXXXXX-live.json
    """
    _backend, recorded = _read_state(settings, state_path, workspace_filter, version_filter)
    profile = recorded.profiles.get(distinct_id)
    if profile is None and distinct_id in recorded.missing:
        click.echo(f"{printable(distinct_id)}: recorded as missing on the server (nothing is "
                   "planned for it until a refresh finds it)")
        return
    if profile is None:
        raise UsageError(f"the state does not manage a profile {distinct_id!r}")
    if fmt == "json":
        channel = profile.to_json() if show_values else mask_channel_object(profile.to_json())
        document = orjson.dumps(channel, option=orjson.OPT_INDENT_2).decode()
        click.echo(printable_json(document))
        return
    click.echo(printable(distinct_id))
    # Who wrote each entry, once the reconciler has written any (`reconciler.ownership`):
    # under `owned`, only what it wrote is deleted without being listed under `remove`.
    managed = recorded.managed.get(distinct_id, frozenset())
    for name in sorted(profile.channels, key=CHANNEL_ORDER.__getitem__):
        value = profile.channels[name]
        items: Sequence[str | Token] = (value,) if isinstance(value, str) else value
        # Tokens that mask alike carry a fingerprint each (`fcm_token:ab…f3#3fa1`).
        for item, shown in zip(items, display_values(name, items, show_values=show_values),
                               strict=True):
            mark = ""
            if managed:
                mark = (" (written by reconciler)" if entry_of(name, item) in managed
                        else " (not written by reconciler)")
            click.echo(f"  {name}: {printable(shown)}{mark}")
    for name, raw in sorted(profile.unmanaged.items()):
        shown = orjson.dumps(raw).decode() if show_values else "(masked)"
        click.echo(f"  {printable(name)}: {printable(shown)} (not managed by reconciler)")


@state.command("rm")
@common_options
@click.argument("distinct_ids", nargs=-1, required=True, metavar="ID...")
@state_option
@click.option("--erase", is_flag=True, help="Then erase their values from the ledger, the "
              "state and its backup for good (`audit erase`).")
@state_pair_options
@pass_settings
def state_rm(settings: Settings, distinct_ids: tuple[str, ...], state_path: Path | None,
             erase: bool, workspace_filter: str | None, version_filter: str | None) -> None:
    """Forget profiles without touching the server.

    With `--erase`, every personal value of theirs is then made unreadable for good (a
    person's request to be forgotten): see `reconciler audit erase`.

    \b
    Example:
      reconciler state rm u-1001 u-1002 --state state/FYXXXXXXXX-live.json
    """
    backend, workspace, version = state_backend(settings, state_path, workspace_filter,
                                                version_filter)
    with backend.lock("state rm"):
        recorded = backend.load(workspace or None, version if workspace else None)
        forgotten = [Fact(name, "state_rm", "forgotten without a call: the server keeps its "
                          "data", before=recorded.profiles.get(name)) for name in distinct_ids
                     if name in recorded.profiles or name in recorded.missing]
        unknown = [name for name in distinct_ids
                   if name not in recorded.profiles and name not in recorded.missing]
        if unknown:
            raise UsageError(f"the state does not manage: {', '.join(unknown)}; nothing removed")
        record_lost(settings, backend, recorded)
        for name in distinct_ids:
            apply_event(recorded, Forgotten(name))
        saved = backend.save(recorded)
        record(settings, backend, saved.workspace, saved.version, forgotten)
        click.echo(f"Removed {plural(len(distinct_ids), 'profile')} from the state (serial "
                   f"{saved.serial}).")
        if erase:
            erase_in(settings, backend, saved, distinct_ids)


@state.command("unlock")
@common_options
@state_option
@click.option("--force", is_flag=True,
              help="Remove the lock even if its holder may still run (another host, or alive).")
@state_pair_options
@pass_settings
def state_unlock(settings: Settings, state_path: Path | None, force: bool,
                 workspace_filter: str | None, version_filter: str | None) -> None:
    """Remove a stale state lock left by a process that is gone.

    A lock whose holder still runs on this host is refused, naming it; one taken on another
    host is refused too, since nobody can tell from here whether it still runs. `--force`
    removes the lock whoever holds it.

    \b
    Example:
      reconciler state unlock --state state/FYXXXXXXXX-live.json
    """
    backend, workspace, version = state_backend(settings, state_path, workspace_filter,
                                                version_filter)
    retry = "reconciler state unlock" + (f" --state {state_path}" if state_path else "")
    holder = backend.lock_info()
    if holder is None:
        click.echo("The state is not locked.")
        return
    status = holder_status(holder)
    if force:
        removed = backend.unlock() or holder
        _record_unlock(settings, state_path, workspace, version, removed, forced=True)
        click.echo(f"Removed the lock held by {_holder(removed)} (--force).")
        if status is HolderStatus.RUNNING:
            click.echo(f"Warning: pid {removed.pid} still runs and may still change the state; "
                       f"stop it (`kill {removed.pid}`) before running another command.",
                       err=True)
        return
    if status is HolderStatus.UNKNOWN:
        raise StateLockedError(_elsewhere(holder, retry))
    removed = _remove_stale(backend, holder, status, retry)
    _record_unlock(settings, state_path, workspace, version, removed, forced=False)
    click.echo(f"Removed the stale lock held by {_holder(removed)}: that process is gone.")


def _remove_stale(backend: Any, holder: LockInfo, status: HolderStatus, retry: str) -> LockInfo:
    """Break the lock of `holder`, on this host, unless it still runs; return whose it was.

    Taking the lock is the test: it succeeds only if no process holds it, whatever the pid
    says, and releasing it removes the file, without the race of deleting a file that a new
    holder has just taken over. Where the lock cannot be taken (no flock on this filesystem,
    or someone holds it), the pid decides.
    """
    try:
        with backend.lock("state unlock"):
            return holder
    except (StateLockedError, OSError):
        current = backend.lock_info()
        if current is None:
            return holder  # released by its holder meanwhile: nothing left to remove
        if current != holder:  # taken over since we looked, by a process that holds it now
            raise StateLockedError(f"the state lock was taken meanwhile by {_holder(current)}; "
                                   "wait for it to finish") from None
    if status is HolderStatus.RUNNING:
        raise StateLockedError(
            f"the state lock is held by {_holder(holder)}, and that process still runs. Wait "
            f"for it to finish, or stop it with `kill {holder.pid}`. `{retry} --force` "
            "removes the lock anyway: only safe once that process no longer writes the state.")
    return backend.unlock() or holder


def _elsewhere(holder: LockInfo, retry: str) -> str:
    if holder.pid <= 0:
        return (f"the state lock names no holder that can be checked ({_holder(holder)}). "
                f"If no reconciler runs on this state, remove it with `{retry} --force`.")
    return (f"the state lock is held by {_holder(holder)}: another host, so whether that "
            f"process still runs cannot be checked from here. Once it has finished (or you "
            f"stopped it on {printable(holder.host)} with `kill {holder.pid}`), remove the "
            f"lock with `{retry} --force`.")


def _holder(info: LockInfo) -> str:
    """`pid 4242 on ci-7, running 'apply' since 2026-11-28T10:00:00Z`, escaped."""
    return printable(str(info))
