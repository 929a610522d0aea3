"""The command line: each command parses options, calls one core function, renders, exits.

Errors become output here and nowhere else (`main`); `--debug` adds the traceback.
"""

from __future__ import annotations

import gc
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
from reconciler.mask import display_value
from reconciler.model import CHANNEL_ORDER
from reconciler.planfile import read_plan, write_plan
from reconciler.render import render

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHANGES = 2


# --- shared options -------------------------------------------------------------------------

def _remember(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta[key] = True  # ctx.meta is shared by the group and its commands
    return callback


def common_options(function: F) -> F:
    """`--no-color` and `--debug`, accepted before or after the command name."""
    function = click.option("--no-color", is_flag=True, expose_value=False,
                            callback=_remember("no_color"),
                            help="Never color the output (also: NO_COLOR).")(function)
    # `--debug` is read off the raw arguments by ReconcilerGroup.main, which needs it first.
    return click.option("--debug", is_flag=True, expose_value=False,
                        help="Show the traceback of an error.")(function)


def paths_argument(function: F) -> F:
    path = click.Path(path_type=Path)
    return click.argument("paths", nargs=-1, required=True, type=path)(function)


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
    function = click.option(
        "--force", is_flag=True, help="Allow a plan that deletes more than --max-delete-percent.",
    )(function)
    function = click.option(
        "--max-delete-percent", type=click.FloatRange(0, 100), default=30.0, show_default=True,
        help="Refuse plans deleting more than this share of recorded entries (state of 10+).",
    )(function)
    return click.option("--target", "targets", multiple=True, metavar="ID",
                        help="Plan only this profile (repeatable).")(function)


# --- the group ------------------------------------------------------------------------------

class ReconcilerGroup(click.Group):
    """The group whose `main` is the one place where errors become output and exit codes.

    `CliRunner` calls `main` too, so tests see exactly what users see.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            # Without standalone mode, click returns the code of `ctx.exit(code)` instead.
            code = super().main(args=argv, prog_name=prog_name or "reconciler",
                                standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _fail(Interrupted("interrupted"), debug)
        except click.ClickException as error:
            # Usage errors exit 1, never 2: 2 means "changes pending" under --detailed-exitcode.
            error.show()
            sys.exit(1)
        except ReconcilerError as error:
            _fail(error, debug)
        except Exception as error:  # the last line of defence: never a bare traceback
            if debug:
                traceback.print_exc()
            click.echo(f"Error: internal error: {error!r}; re-run with --debug for the "
                       "traceback, and please report it", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@common_options
def cli() -> None:
    """Declare the channel data of Fyno profiles in YAML; plan and apply the changes.

    \b
    Example:
      reconciler validate profiles/
      reconciler plan profiles/ --out plan.json
    """


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _color(ctx: click.Context) -> bool:
    return not ctx.meta.get("no_color") and "NO_COLOR" not in os.environ and _is_terminal()


def _settle_heap() -> None:
    """Exempt what was loaded from garbage collection for the rest of this short process.

    A large configuration and state are millions of long-lived objects without cycles; left
    in the collector's generations they are rescanned by every later collection (about 5%
    of a 100,000-profile plan).
    """
    gc.freeze()


def _load(paths: Sequence[Path]) -> Config:
    return load_config(paths, workspace=os.environ.get("FYNO_WSID") or None,
                       version=os.environ.get("FYNO_VERSION") or None)


@cli.command()
@common_options
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
@common_options
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
    _settle_heap()
    result = make_plan(config, state, targets=targets, max_delete_percent=max_delete_percent,
                       force=force)
    if out is not None:
        write_plan(result, out)
    color = _color(ctx)
    # click strips ANSI codes off a stream that is not a terminal unless told otherwise.
    click.echo(render(result, fmt, color=color, show_values=show_values), nl=False, color=color)
    if out is not None:
        click.echo(f"Saved the plan to {out}; apply it with `reconciler apply {out}`.", err=True)
    if detailed_exitcode and result.summary.has_changes:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@common_options
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
    color = _color(ctx)
    click.echo(render(read_plan(planfile), fmt, color=color, show_values=show_values),
               nl=False, color=color)


# --- state ----------------------------------------------------------------------------------

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
    if recorded.profiles:
        click.echo("\n".join(sorted(recorded.profiles)))


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
        missing = [name for name in distinct_ids if name not in recorded.profiles]
        if missing:
            raise UsageError(f"the state does not manage: {', '.join(missing)}; nothing removed")
        for name in distinct_ids:
            del recorded.profiles[name]
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


# --- the one place where errors become output -----------------------------------------------

def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: run the group, which turns every error into output and an exit code."""
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="reconciler")
    raise AssertionError("unreachable: ReconcilerGroup.main always exits")


def _fail(error: ReconcilerError, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exc()
    if isinstance(error, ConfigError):
        for problem in error.problems:
            click.echo(str(problem), err=True)
    click.echo(f"Error: {error}", err=True)
    sys.exit(error.exit_code)
