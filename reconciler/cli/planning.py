"""`validate` and `plan`: everything that reads the configuration without the API."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler import heap
from reconciler.audit import Fact
from reconciler.cli.group import cli
from reconciler.cli.options import (
    EXIT_CHANGES,
    common_options,
    output_format_option,
    paths_argument,
    record,
    safety_options,
    show_values_option,
    state_option,
)
from reconciler.cli.pairs import (
    Store,
    load_pairs,
    load_pairs_then,
    one_state_only,
    open_pair,
    pair_options,
    plan_pairs,
    warn,
)
from reconciler.cli.prepared import PreparedOutput
from reconciler.cli.refresh_cmds import refresh_in_memory
from reconciler.cli.remote import require_api_key, run_options
from reconciler.cli.settings import Settings, pass_settings
from reconciler.config import Config
from reconciler.plan import Plan
from reconciler.render.common import plural
from reconciler.render.formats import OutputFormat
from reconciler.state import State


@cli.command()
@common_options
@paths_argument
@pair_options
@show_values_option
@pass_settings
def validate(settings: Settings, paths: tuple[Path, ...], workspace_filter: str | None,
             version_filter: str | None, show_values: bool) -> None:
    """Check YAML files or directories of desired state; report every problem.

    Phone numbers, e-mail addresses and tokens in the problems are masked, since CI posts
    them into pull requests; --show-values shows them.

    \b
    Example:
      reconciler validate profiles/ extra.yaml
    """
    del show_values  # read where errors become output (`cli.group`): problems are errors
    for config in load_pairs(settings, paths, workspace_filter, version_filter):
        click.echo(f"Valid: {plural(len(config.profiles), 'profile')} in "
                   f"{plural(len(config.files), 'file')} (workspace {config.workspace}, "
                   f"version {config.version}).")


@cli.command()
@common_options
@paths_argument
@pair_options
@state_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan here, for `show` and `apply`.")
@output_format_option
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when changes are pending (0: none, 1: error).")
@click.option("--refresh", is_flag=True, help="Read the managed profiles from the server "
              "first and plan against that (the state file is not written).")
@run_options
@safety_options
@show_values_option
@click.pass_context
@pass_settings
def plan(settings: Settings, ctx: click.Context, paths: tuple[Path, ...],
         workspace_filter: str | None, version_filter: str | None, state_path: Path | None,
         out: Path | None, fmt: OutputFormat, detailed_exitcode: bool, refresh: bool,
         parallelism: int, rate: float | None, targets: tuple[str, ...],
         max_delete_percent: float, force: bool, show_values: bool) -> None:
    """Show the API calls that would make the recorded state match the configuration.

    When the files declare several workspace/version pairs, each is planned against its
    own state, and the plan (and a saved plan) holds them all.

    \b
    Example:
      reconciler plan profiles/ --out plan.json --detailed-exitcode
    """
    # The configuration, the state and the plan are large, acyclic and kept to the end: each
    # is built with the collector paused and then exempted from it (`heap.settle`). Paused
    # across the loads, not once per load, since the first collection after a pause would
    # scan everything the pause let pile up (a tenth of a second per 100,000 profiles).
    def planned(configs: tuple[Config, ...]) -> _Planned:
        """The states, and unless a refresh comes first the plans and their output, held
        back: made while a large configuration's checks finish (`load_pairs_then`)."""
        one_state_only(state_path, configs)
        stores = [open_pair(settings, state_path, config.workspace, config.version, paths)
                  for config in configs]
        states = [store.backend.load(config.workspace, config.version)
                  for config, store in zip(configs, stores, strict=True)]
        if refresh:
            return _Planned(stores, states, None)
        plans = plan_pairs(configs, states, [store.notes for store in stores],
                           targets=targets, max_delete_percent=max_delete_percent, force=force)
        return _Planned(stores, states, (plans, PreparedOutput.make(
            settings, plans, out, fmt, show_values)))

    with heap.collector_paused():
        configs, made = load_pairs_then(settings, paths, workspace_filter, version_filter,
                                        planned, discard=_Planned.discard)
        heap.settle()
    try:  # until the saved plan is in its place, an error or Ctrl-C removes it
        stores, states = made.stores, made.states
        for store in stores:
            warn(store.notes)
        if made.output is None:  # collector running: the API client makes cyclic garbage
            require_api_key(os.environ)
            for config, state in zip(configs, states, strict=True):
                refresh_in_memory(settings, state, os.environ, parallelism, rate, targets,
                                  config.ownership)
            heap.settle()
            with heap.collector_paused():  # 100,000 profiles: 600,000 acyclic objects
                plans = plan_pairs(configs, states, [store.notes for store in stores],
                                   targets=targets, max_delete_percent=max_delete_percent,
                                   force=force)
                heap.settle()
            made.output = plans, PreparedOutput.make(settings, plans, out, fmt, show_values)
        plans, output = made.output
        output.save()
    except BaseException:
        made.discard()
        raise
    if out is not None:
        for result, store in zip(plans, stores, strict=True):
            if result.forced:  # a saved plan past the safety rail: who forced it is on record
                record(settings, store.backend, result.workspace, result.version,
                       [Fact(None, "force", f"plan {result.plan_id} saved to {out} forced past "
                             f"--max-delete-percent {max_delete_percent:g}: it deletes "
                             f"{result.deletions} of {result.recorded_entries} recorded "
                             "entries")],
                       config_dir=paths[0] if paths[0].is_dir() else paths[0].parent,
                       plan_id=result.plan_id)
    output.print()
    heap.keep(configs, made, plans)  # 100,000 profiles take 0.25 s to free one by one
    if out is not None:
        click.echo(f"Saved the plan to {out}; apply it with `reconciler apply {out}`.", err=True)
    if detailed_exitcode and any(result.summary.has_changes for result in plans):
        ctx.exit(EXIT_CHANGES)


@dataclass
class _Planned:
    """What `plan` makes while the configuration's checks finish: the states, and the plans
    with their output held back (None when a refresh comes first)."""

    stores: list[Store]
    states: list[State]
    output: tuple[tuple[Plan, ...], PreparedOutput] | None

    def discard(self) -> None:
        if self.output is not None:
            self.output[1].discard()
