"""The command line: each command parses options, calls one core function, renders, exits.

Errors become output here and nowhere else (`main`); `--debug` adds the traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson

from reconciler import __version__
from reconciler.config import Config, load_config
from reconciler.core import make_plan, open_state
from reconciler.errors import ConfigError, Interrupted, ReconcilerError, UsageError
from reconciler.mask import mask
from reconciler.model import CHANNEL_ORDER
from reconciler.planfile import read_plan, write_plan
from reconciler.render import render

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHANGES = 2


# --- shared options -------------------------------------------------------------------------

def paths_argument(function: F) -> F:
    return click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))(function)


def state_option(function: F) -> F:
    return click.option(
        "--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
        help="State file (default: state/<workspace>-<version>.json).",
    )(function)


def format_option(*choices: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return click.option("--format", "fmt", type=click.Choice(choices), default=choices[0],
                            show_default=True, help="Output format.")(function)
    return decorate


def show_values_option(function: F) -> F:
    return click.option("--show-values", is_flag=True,
                        help="Show emails, phone numbers and tokens unmasked.")(function)


def safety_options(function: F) -> F:
    function = click.option("--force", is_flag=True,
                            help="Allow a plan that deletes more than --max-delete-percent.")(function)
    function = click.option(
        "--max-delete-percent", type=click.FloatRange(0, 100), default=30.0, show_default=True,
        help="Refuse plans deleting more than this share of recorded entries (state of 10+).",
    )(function)
    return click.option("--target", "targets", multiple=True, metavar="ID",
                        help="Plan only this profile (repeatable).")(function)


# --- the group ------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--no-color", is_flag=True, help="Never color the output (also: NO_COLOR).")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, no_color: bool, debug: bool) -> None:
    """Declare the channel data of Fyno profiles in YAML; plan and apply the changes.

    \b
    Example:
      reconciler validate profiles/
      reconciler plan profiles/ --out plan.json
    """
    ctx.obj = {"color": not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()}


def _color(ctx: click.Context) -> bool:
    return bool(ctx.find_root().obj["color"])


def _load(paths: Sequence[Path]) -> Config:
    return load_config(paths, workspace=os.environ.get("FYNO_WSID") or None,
                       version=os.environ.get("FYNO_VERSION") or None)


@cli.command()
@paths_argument
def validate(paths: tuple[Path, ...]) -> None:
    """Check YAML files or directories of desired state; report every problem.

    \b
    Example:
      reconciler validate profiles/ extra.yaml
    """
    config = _load(paths)
    click.echo(f"Valid: {len(config.profiles)} profiles in {len(config.files)} files "
               f"(workspace {config.workspace}, version {config.version}).")


@cli.command()
@paths_argument
@state_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan here, for `show` and `apply`.")
@format_option("text", "json", "markdown")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when changes are pending (0: none, 1: error).")
@safety_options
@show_values_option
@click.pass_context
def plan(ctx: click.Context, paths: tuple[Path, ...], state_path: Path | None, out: Path | None,
         fmt: str, detailed_exitcode: bool, targets: tuple[str, ...],
         max_delete_percent: float, force: bool, show_values: bool) -> None:
    """Show the API calls that would make the recorded state match the configuration.

    \b
    Example:
      reconciler plan profiles/ --out plan.json --detailed-exitcode
    """
    config = _load(paths)
    state = open_state(state_path, config.workspace, config.version).load(
        config.workspace, config.version)
    result = make_plan(config, state, targets=targets, max_delete_percent=max_delete_percent,
                       force=force)
    if out is not None:
        write_plan(result, out)
    click.echo(render(result, fmt, color=_color(ctx), show_values=show_values), nl=False)
    if out is not None:
        click.echo(f"Saved the plan to {out}; apply it with `reconciler apply {out}`.", err=True)
    if detailed_exitcode and result.summary.has_changes:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("planfile", type=click.Path(dir_okay=False, path_type=Path))
@format_option("text", "json", "markdown")
@show_values_option
@click.pass_context
def show(ctx: click.Context, planfile: Path, fmt: str, show_values: bool) -> None:
    """Render a saved plan (its checksum is verified first).

    \b
    Example:
      reconciler show plan.json --format markdown > comment.md
    """
    click.echo(render(read_plan(planfile), fmt, color=_color(ctx), show_values=show_values),
               nl=False)


# --- state ----------------------------------------------------------------------------------

@cli.group()
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
@state_option
def state_list(state_path: Path | None) -> None:
    """List the distinct_ids the state manages.

    \b
    Example:
      reconciler state list --state state/FYXXXXXXXX-live.json
    """
    recorded = _read_state(state_path)
    if recorded.profiles:
        click.echo("\n".join(sorted(recorded.profiles)))


@state.command("show")
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
    if profile is None:
        raise UsageError(f"the state does not manage a profile {distinct_id!r}")
    if fmt == "json":
        click.echo(orjson.dumps(profile.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(distinct_id)
    body = profile.to_json()
    for name in sorted(body, key=lambda key: CHANNEL_ORDER.get(key, len(CHANNEL_ORDER))):
        value = body[name]
        items = value if isinstance(value, list) else [value]
        for item in items:
            shown = _show_entry(name, item, show_values)
            click.echo(f"  {name}: {shown}")


def _show_entry(channel: str, item: Any, show_values: bool) -> str:
    if isinstance(item, dict) and isinstance(item.get("token"), str):
        token = item["token"] if show_values else mask(channel, item["token"])
        extra = "".join(f", {key} {item[key]}" for key in ("integration_id", "status") if key in item)
        return token + (f" ({extra[2:]})" if extra else "")
    if isinstance(item, str):
        return item if show_values else mask(channel, item)
    return orjson.dumps(item).decode()


@state.command("rm")
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
        missing = [name for name in distinct_ids if name not in recorded.profiles]
        if missing:
            raise UsageError(f"the state does not manage: {', '.join(missing)}; nothing removed")
        for name in distinct_ids:
            del recorded.profiles[name]
        saved = backend.save(recorded)
    click.echo(f"Removed {len(distinct_ids)} profile(s) from the state (serial {saved.serial}).")


@state.command("unlock")
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


# --- the one place where errors become output -----------------------------------------------

def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        _fail(Interrupted("interrupted"), debug)
    except click.ClickException as error:
        # Usage errors exit 1, never 2: 2 means "changes pending" under --detailed-exitcode.
        error.exit_code = 1
        error.show()
        sys.exit(1)
    except KeyboardInterrupt:
        _fail(Interrupted("interrupted"), debug)
    except ReconcilerError as error:
        _fail(error, debug)
    except Exception as error:  # noqa: BLE001 - the last line of defence: never a bare traceback
        if debug:
            traceback.print_exc()
        click.echo(f"Error: internal error: {error!r}; re-run with --debug for the traceback, "
                   "and please report it", err=True)
        sys.exit(1)
    sys.exit(0)


def _fail(error: ReconcilerError, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exc()
    if isinstance(error, ConfigError):
        for problem in error.problems:
            click.echo(str(problem), err=True)
    click.echo(f"Error: {error}", err=True)
    sys.exit(error.exit_code)
