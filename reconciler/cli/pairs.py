"""The workspace/version pairs of a run: which the configuration declares, which the user
chose (`--workspace`, `--version`), and the state each is kept in.

Files under the given paths may declare several pairs; each has its own state and lock
(`reconciler.state.location` says where a default state is). A command handles its pairs
in sorted order, so that two runs that lock several states lock them in the same order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import click

from reconciler.cli.options import F, backend_url, encryption, lock_timeout
from reconciler.config import Config, load_configs, select_pairs
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


def pair_options(function: F) -> F:
    """`--workspace` and `--version`: handle only the pairs they name."""
    function = click.option(
        "--version", "version_filter", type=click.Choice(["live", "test"]),
        help="Only this version of the workspaces the files declare.")(function)
    return click.option(
        "--workspace", "workspace_filter", metavar="WSID",
        help="Only this workspace, when the files declare several.")(function)


def load_pairs(paths: Sequence[Path], workspace: str | None = None,
               version: str | None = None) -> tuple[Config, ...]:
    """The configuration of every pair the files at `paths` declare, or of those the
    filters name (FYNO_WSID and FYNO_VERSION are the pair of files that state none)."""
    configs = load_configs(paths, workspace=os.environ.get("FYNO_WSID") or None,
                           version=os.environ.get("FYNO_VERSION") or None)
    return select_pairs(configs, workspace, version)


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


def open_pair(state_path: Path | None, workspace: str, version: str,
              paths: Sequence[Path] = ()) -> Store:
    """The state of one pair as this run's settings say (`--backend`, `--state`, else the
    default file under the configuration's root), with a note when the default would be a
    new, empty state while a state of the pair exists elsewhere in the tree."""
    url = backend_url()
    if url is not None or state_path is not None:
        return Store(open_state(state_path, workspace, version, encryption(), url,
                                lock_timeout()))
    start = config_start(list(paths))
    backend = open_state(None, workspace, version, encryption(), None, lock_timeout(),
                         state_dir=default_state_dir(start))
    assert isinstance(backend, LocalStateFile)
    if backend.path.exists():
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
