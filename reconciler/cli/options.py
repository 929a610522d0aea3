"""Options and helpers shared by the commands: defined once, used everywhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.config import Config, load_config

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHANGES = 2


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


def is_terminal() -> bool:
    return sys.stdout.isatty()


def use_color(ctx: click.Context) -> bool:
    return not ctx.meta.get("no_color") and "NO_COLOR" not in os.environ and is_terminal()


def load_desired(paths: Sequence[Path]) -> Config:
    return load_config(paths, workspace=os.environ.get("FYNO_WSID") or None,
                       version=os.environ.get("FYNO_VERSION") or None)
