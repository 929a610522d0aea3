"""The workspace/version pairs of a run: which the configuration declares, which the user
chose (`--workspace`, `--version`), and the state each is kept in.

Files under the given paths may declare several pairs; each has its own state and lock
(`reconciler.state.location` says where a default state is). A command handles its pairs
in sorted order, so that two runs that lock several states lock them in the same order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
from click.core import ParameterSource

from reconciler.cli.options import F, open_store
from reconciler.cli.settings import Settings
from reconciler.config import Config, load_configs, load_configs_then, select_pairs
from reconciler.core import make_plan, new_plan_id, now, open_state
from reconciler.errors import TooMuchChangeError, UsageError
from reconciler.plan import Plan
from reconciler.render.common import plural, printable
from reconciler.state import LocalStateFile, State, StateBackend
from reconciler.state.location import (
    config_start,
    default_state_dir,
    state_root,
    states_elsewhere,
)

T = TypeVar("T")


class _Version(click.Choice[str]):
    """`live` or `test` on the command line; from FYNO_VERSION, any value as it is, since
    the loader names the variable in its problem (`reconciler.config.pairs`)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if (ctx is not None and param is not None and param.name is not None
                and ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT):
            return value
        return super().convert(value, param, ctx)


def _pair_setting(name: str) -> Callable[[click.Context, click.Parameter, str | None],
                                         str | None]:
    """The callback of `--workspace`/`--version`: a value from the environment is the pair
    of the files that state none, kept in the run's settings; one from the command line is
    passed on to the command, which chooses with it."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        assert param.name is not None
        if ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
            setattr(ctx.ensure_object(Settings), name, value)
            return None
        return value
    return callback


def _pair_options(workspace_help: str, version_help: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        function = click.option(
            "--version", "version_filter", type=_Version(["live", "test"]),
            envvar="FYNO_VERSION", show_envvar=True, callback=_pair_setting("version"),
            help=version_help)(function)
        return click.option(
            "--workspace", "workspace_filter", metavar="WSID", envvar="FYNO_WSID",
            show_envvar=True, callback=_pair_setting("workspace"),
            help=workspace_help)(function)
    return decorate


pair_options = _pair_options(
    "Only this workspace, when the files declare several. From the environment: the "
    "workspace of files that state none.",
    "Only this version of the workspaces the files declare. From the environment: the "
    "version of files that state none.")
"""`--workspace` and `--version`: on the command line, handle only the pairs they name;
in the environment (FYNO_WSID, FYNO_VERSION), the pair of the files that state none."""

state_pair_options = _pair_options(
    "The workspace whose default state to use (when --state is not given).",
    "The version whose default state to use (default: live).")
"""`--workspace` and `--version` of a command on one state: they name its pair."""


def load_pairs(settings: Settings, paths: Sequence[Path], workspace: str | None = None,
               version: str | None = None) -> tuple[Config, ...]:
    """The configuration of every pair the files at `paths` declare, or of those the
    filters name (the pair of the environment is that of files that state none)."""
    configs = load_configs(paths, workspace=settings.workspace, version=settings.version)
    return select_pairs(configs, workspace, version)


def load_pairs_then(settings: Settings, paths: Sequence[Path], workspace: str | None,
                    version: str | None, meanwhile: Callable[[tuple[Config, ...]], T],
                    *, discard: Callable[[T], None] | None = None
                    ) -> tuple[tuple[Config, ...], T]:
    """`load_pairs`, and `meanwhile` of the pairs chosen, run while a large configuration's
    checks finish (`reconciler.config.load_configs_then` says what `meanwhile` may do, and
    when `discard` is called)."""
    def chosen(configs: tuple[Config, ...]) -> tuple[tuple[Config, ...], T]:
        selected = select_pairs(configs, workspace, version)
        return selected, meanwhile(selected)

    def thrown_away(made: tuple[tuple[Config, ...], T]) -> None:
        if discard is not None:
            discard(made[1])

    _, (selected, outcome) = load_configs_then(
        paths, chosen, workspace=settings.workspace, version=settings.version,
        discard=thrown_away)
    return selected, outcome


def label(workspace: str, version: str) -> str:
    """How a pair is named to people: `FYXXXXXXXX (live)`."""
    return f"{printable(workspace)} ({printable(version)})"


class Pair(Protocol):
    """What names a workspace/version pair: a `Config` or a `Plan`."""

    @property
    def workspace(self) -> str: ...
    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class Named:
    """A pair named by its workspace and version alone."""

    workspace: str
    version: str


def describe_pairs(configs: Sequence[Pair]) -> str:
    return plural(len(configs), "workspace/version pair")


def one_state_only(state_path: Path | None, configs: Sequence[Pair]) -> None:
    """`--state` names one file: refused when the run has several pairs."""
    if state_path is not None and len(configs) > 1:
        names = ", ".join(label(config.workspace, config.version) for config in configs)
        raise UsageError(f"--state names one state file, and the configuration declares "
                         f"{describe_pairs(configs)} ({names}), each with its own state: "
                         "leave --state out, or choose one pair with --workspace and "
                         "--version")


@dataclass(frozen=True)
class Store:
    """Where one pair's state is, and what a person should know about it."""

    backend: StateBackend
    notes: tuple[str, ...] = ()  # e.g. a new state while one exists elsewhere


def open_pair(settings: Settings, state_path: Path | None, workspace: str, version: str,
              paths: Sequence[Path] = ()) -> Store:
    """The state of one pair as this run's settings say (`--backend`, `--state`, else the
    default file under the configuration's root), with a note when the default would be a
    new, empty state while a state of the pair exists elsewhere in the tree."""
    if settings.backend is not None or state_path is not None:
        return Store(open_store(settings, state_path, workspace, version))
    start = config_start(list(paths))
    backend = open_state(None, workspace, version, settings.encryption(), None,
                         settings.lock_timeout, state_dir=default_state_dir(start))
    assert isinstance(backend, LocalStateFile)
    if os.path.exists(backend.path):  # False on any error: loading it then names the error
        return Store(backend)
    others = states_elsewhere(start, state_root(start), backend.path.name, backend.path)
    if not others:
        return Store(backend)
    shown = ", ".join(os.path.relpath(other) for other in others[:3])
    note = (f"no state for {label(workspace, version)} at {backend.path}, where this "
            f"configuration's state belongs, but one exists at {shown}: this run starts a "
            f"new, empty state. If that is this configuration's state, move it to "
            f"{backend.path} or give --state {os.path.relpath(others[0])}")
    return Store(backend, (note,))


def warn(notes: Sequence[str]) -> None:
    for note in notes:
        click.echo(printable(f"Warning: {note}"), err=True)


def plan_pairs(configs: Sequence[Config], states: Sequence[State],
               notes: Sequence[tuple[str, ...]], *, targets: tuple[str, ...],
               max_delete_percent: float, force: bool) -> tuple[Plan, ...]:
    """One plan per pair, all with the run's plan id and time; the safety rail holds per
    pair (each against its own state), and a refusal names the pair when there are several.

    With several pairs a `--target` is looked for in all of them: it is unknown only when no
    pair knows it, and then said once."""
    several = len(configs) > 1
    plan_id, created_at = new_plan_id(), now()
    plans = []
    for config, state, note in zip(configs, states, notes, strict=True):
        try:
            plans.append(make_plan(config, state, targets=targets,
                                   max_delete_percent=max_delete_percent, force=force,
                                   plan_id=plan_id, created_at=created_at, notes=note,
                                   unknown_targets=not several))
        except TooMuchChangeError as error:
            if not several:
                raise
            raise TooMuchChangeError(f"{label(config.workspace, config.version)}: {error}") \
                from None
    if several and targets:
        unknown = [target for target in targets if not any(
            target in config.profiles or target in state.profiles or target in state.missing
            for config, state in zip(configs, states, strict=True))]
        if unknown:
            first = plans[0]
            plans[0] = dataclasses.replace(first, warnings=first.warnings + tuple(
                f"--target {target}: no such profile in any pair's configuration or state"
                for target in unknown))
    return tuple(plans)
