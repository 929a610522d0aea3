"""`validate`, `plan` and `show`: everything that reads the configuration without the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from reconciler import heap
from reconciler.audit import Fact
from reconciler.cli.group import cli
from reconciler.cli.options import (
    EXIT_CHANGES,
    common_options,
    encryption,
    format_option,
    load_desired,
    open_store,
    paths_argument,
    record,
    safety_options,
    show_values_option,
    state_option,
    use_color,
)
from reconciler.cli.refresh_cmds import refresh_in_memory
from reconciler.cli.remote import require_api_key, run_options
from reconciler.core import make_plan
from reconciler.plan import Plan
from reconciler.planfile import read_plan, write_plan
from reconciler.render import render
from reconciler.render.json import write_json


@cli.command()
@common_options
@paths_argument
@show_values_option
def validate(paths: tuple[Path, ...], show_values: bool) -> None:
    """Check YAML files or directories of desired state; report every problem.

    Phone numbers, e-mail addresses and tokens in the problems are masked, since CI posts
    them into pull requests; --show-values shows them.

    \b
    Example:
      reconciler validate profiles/ extra.yaml
    """
    del show_values  # read where errors become output (`cli.group`): problems are errors
    config = load_desired(paths)
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
@click.option("--refresh", is_flag=True, help="Read the managed profiles from the server "
              "first and plan against that (the state file is not written).")
@run_options
@safety_options
@show_values_option
@click.pass_context
def plan(ctx: click.Context, paths: tuple[Path, ...], state_path: Path | None, out: Path | None,
         fmt: str, detailed_exitcode: bool, refresh: bool, parallelism: int,
         rate: float | None, targets: tuple[str, ...], max_delete_percent: float, force: bool,
         show_values: bool) -> None:
    """Show the API calls that would make the recorded state match the configuration.

    \b
    Example:
      reconciler plan profiles/ --out plan.json --detailed-exitcode
    """
    # The configuration, the state and the plan are large, acyclic and kept to the end: each
    # is built with the collector paused and then exempted from it (`heap.settle`). Paused
    # across the loads, not once per load, since the first collection after a pause would
    # scan everything the pause let pile up (a tenth of a second per 100,000 profiles).
    with heap.collector_paused():
        config = load_desired(paths)
        backend = open_store(state_path, config.workspace, config.version)
        state = backend.load(config.workspace, config.version)
        heap.settle()
    if refresh:  # with the collector running: the API client makes cyclic garbage
        require_api_key(os.environ)
        refresh_in_memory(state, os.environ, parallelism, rate, targets, config.ownership)
        heap.settle()
    with heap.collector_paused():  # the plan of 100,000 profiles: 600,000 acyclic objects
        result = make_plan(config, state, targets=targets,
                           max_delete_percent=max_delete_percent, force=force)
        heap.settle()
    saved = None
    if out is not None:
        saved = write_plan(result, out, encryption())
        if result.forced:  # a saved plan past the safety rail: who forced it is on record
            record(backend, config.workspace, config.version,
                   [Fact(None, "force", f"plan {result.plan_id} saved to {out} forced past "
                         f"--max-delete-percent {max_delete_percent:g}: it deletes "
                         f"{result.deletions} of {result.recorded_entries} recorded entries")],
                   config_dir=paths[0] if paths[0].is_dir() else paths[0].parent,
                   plan_id=result.plan_id)
    _output(ctx, result, fmt, show_values, saved)
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
    with heap.collector_paused():  # as in `plan`: never rescan the plan read
        saved = read_plan(planfile, encryption())
        heap.settle()
    _output(ctx, saved, fmt, show_values)


def _output(ctx: click.Context, plan: Plan, fmt: str, show_values: bool,
            checksum: str | None = None) -> None:
    """Print `plan` in `fmt`; JSON as a stream of lines, since at 100,000 profiles it runs
    to tens of megabytes. `checksum`: the saved plan's, when it was just written."""
    if fmt == "json":
        sys.stdout.flush()  # what was echoed before goes first
        write_json(plan, sys.stdout.buffer, show_values=show_values, checksum=checksum)
        return
    color = use_color(ctx)
    # click strips ANSI codes off a stream that is not a terminal unless told otherwise.
    click.echo(render(plan, fmt, color=color, show_values=show_values), nl=False, color=color)
