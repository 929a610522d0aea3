"""`apply`: plan (or read a saved plan), confirm, run the calls, record everything."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import click
from click.core import ParameterSource

from reconciler import heap
from reconciler.apply import ApplyResult, run_apply
from reconciler.cli.apply_output import Applied, Output, report
from reconciler.cli.group import cli
from reconciler.cli.options import (
    audit_context,
    common_options,
    format_option,
    safety_options,
    show_values_option,
    state_option,
    use_color,
)
from reconciler.cli.pairs import (
    Store,
    describe_pairs,
    label,
    load_pairs,
    one_state_only,
    open_pair,
    pair_options,
    plan_pairs,
    warn,
)
from reconciler.cli.refresh_cmds import refresh_in_memory
from reconciler.cli.remote import client, progress, require_api_key, retry_policy, run_options
from reconciler.cli.settings import Settings, pass_settings
from reconciler.config.sources import YAML_SUFFIXES
from reconciler.errors import (
    PlanStaleError,
    ReconcilerError,
    UsageError,
)
from reconciler.plan import Plan
from reconciler.planfile import check_fresh, read_plans
from reconciler.render.common import plural, printable
from reconciler.render.formats import TEXT
from reconciler.state import State, StateBackend


@cli.command()
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pair_options
@state_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for `yes`.")
@run_options
@click.option("--refresh", is_flag=True,
              help="Read the managed profiles from the server first, and plan against that.")
@safety_options
@format_option("text", "json")
@show_values_option
@click.pass_context
@pass_settings
def apply(settings: Settings, ctx: click.Context, paths: tuple[Path, ...],
          workspace_filter: str | None,
          version_filter: str | None, state_path: Path | None, auto_approve: bool,
          parallelism: int, rate: float | None, refresh: bool, targets: tuple[str, ...],
          max_delete_percent: float, force: bool, fmt: str, show_values: bool) -> None:
    """Make the calls of a plan and record what was done (PATHS, or one saved PLANFILE).

    With PATHS, the plan is shown and applied after you answer `yes` (or --auto-approve).
    With a saved PLANFILE, exactly that plan is applied, if the state has not changed since.
    Several workspace/version pairs are applied one after the other, each to its own state;
    every state is checked before the first call.

    \b
    With --format json, stdout is a stream of JSON objects, one per line (plan, each
    request and read-back, failures, summary; see the README), and the prose goes to stderr.

    \b
    Example:
      reconciler apply profiles/
      reconciler apply plan.json
      reconciler apply plan.json --format json > apply-events.jsonl
    """
    env = os.environ
    planfile = _saved_plan(paths)
    require_api_key(env)
    out = Output(fmt == "json", show_values)
    with out.errors():
        if out.json and planfile is None and not auto_approve:
            raise UsageError("--format json cannot ask for `yes`: add --auto-approve, or "
                             "apply a reviewed saved plan")
        if planfile is not None:
            shaping = [name for name in ("targets", "force", "refresh", "max_delete_percent",
                                         "workspace_filter", "version_filter")
                       if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
            if shaping:
                raise UsageError("--target, --force, --refresh, --max-delete-percent, "
                                 "--workspace and --version shape a new plan; a saved plan is "
                                 "applied exactly as it was saved")
            results = _apply_saved(settings, planfile, state_path, env, parallelism, rate, out)
        else:
            results = _apply_config(settings, paths, workspace_filter, version_filter, state_path,
                                    env, parallelism, rate, out, auto_approve=auto_approve,
                                    refresh=refresh, targets=targets,
                                    max_delete_percent=max_delete_percent, force=force)
        report(results, out)


def _apply_saved(settings: Settings, planfile: Path, state_path: Path | None,
                 env: Mapping[str, str], parallelism: int, rate: float | None,
                 out: Output) -> list[Applied]:
    """Apply exactly a reviewed plan, if every state it names is still the one it was made
    against: all are checked, under their locks, before the first call."""
    plans = read_plans(planfile, settings.encryption())
    one_state_only(state_path, plans)
    stores = [open_pair(settings, state_path, plan.workspace, plan.version, (planfile,))
              for plan in plans]
    with contextlib.ExitStack() as locks:
        states = _lock_and_load(stores, [(plan.workspace, plan.version) for plan in plans],
                                locks)
        for plan, state in zip(plans, states, strict=True):
            try:
                check_fresh(plan, planfile, state.lineage, state.serial, plan.workspace,
                            plan.version)
            except PlanStaleError as error:
                if len(plans) == 1:
                    raise
                raise PlanStaleError(f"{label(plan.workspace, plan.version)}: {error}; "
                                     "nothing was applied, to any pair") from None
        calls = sum(len(plan.calls) for plan in plans)
        pairs = f" in {describe_pairs(plans)}" if len(plans) > 1 else ""
        click.echo(f"Applying the saved plan {planfile}: {plural(calls, 'call')}{pairs}.",
                   err=True)
        return _execute_all(settings, plans, states, stores, planfile.parent, env,
                            parallelism, rate, out, announce=True)


def _apply_config(settings: Settings, paths: tuple[Path, ...], workspace_filter: str | None,
                  version_filter: str | None, state_path: Path | None,
                  env: Mapping[str, str], parallelism: int, rate: float | None, out: Output,
                  *, auto_approve: bool, refresh: bool, targets: tuple[str, ...],
                  max_delete_percent: float, force: bool) -> list[Applied]:
    """Plan from the configuration, show it, confirm, apply; [] when nothing is to apply."""
    configs = load_pairs(settings, paths, workspace_filter, version_filter)
    one_state_only(state_path, configs)
    config_dir = paths[0] if paths[0].is_dir() else paths[0].parent
    stores = [open_pair(settings, state_path, config.workspace, config.version, paths)
              for config in configs]
    with contextlib.ExitStack() as locks:
        states = _lock_and_load(stores, [(config.workspace, config.version)
                                         for config in configs], locks)
        if refresh:
            for config, state, store in zip(configs, states, stores, strict=True):
                refresh_in_memory(settings, state, env, parallelism, rate, targets,
                                  config.ownership, saved_at=store.backend, config_dir=config_dir)
        heap.settle()
        plans = plan_pairs(configs, states, [store.notes for store in stores],
                           targets=targets, max_delete_percent=max_delete_percent, force=force)
        if out.json:
            for plan in plans:
                out.plan(plan)
        else:
            color = use_color(settings)
            click.echo(TEXT.plans(plans, color, out.show_values), nl=False, color=color)
        if not any(_has_work(plan, state) for plan, state in zip(plans, states, strict=True)):
            if refresh:  # what the refresh learned is kept all the same
                states = [store.backend.save(state)
                          for store, state in zip(stores, states, strict=True)]
            out.nothing_to_apply([state.serial for state in states])
            return []
        _confirm(auto_approve)
        return _execute_all(settings, plans, states, stores, paths[0], env, parallelism, rate,
                            out, refreshed=refresh)


def _has_work(plan: Plan, state: State) -> bool:
    return bool(plan.calls or plan.forget or state.unconfirmed)


def _lock_and_load(stores: Sequence[Store], pairs: Sequence[tuple[str, str]],
                   locks: contextlib.ExitStack) -> list[State]:
    """Lock every pair's state, in the (sorted) order of the pairs, and load it."""
    for store in stores:
        warn(store.notes)
    states = []
    for store, (workspace, version) in zip(stores, pairs, strict=True):
        locks.enter_context(store.backend.lock("apply"))
        states.append(store.backend.load(workspace, version))
    return states


def _execute_all(settings: Settings, plans: Sequence[Plan], states: Sequence[State],
                 stores: Sequence[Store], config_path: Path, env: Mapping[str, str],
                 parallelism: int, rate: float | None, out: Output, *, refreshed: bool = False,
                 announce: bool = False) -> list[Applied]:
    """Apply each pair's plan in turn. A pair's failed calls do not stop the next pair (its
    profiles are independent); a 401, a setup error or Ctrl-C stops the run. `announce`:
    each plan's JSON event goes first (a saved plan's; a new plan's went before `yes`)."""
    applied: list[Applied] = []
    stopped = False
    for plan, state, store in zip(plans, states, stores, strict=True):
        if stopped:
            applied.append(Applied(plan.workspace, plan.version, None))
            continue
        if len(plans) > 1 and not _has_work(plan, state):
            if refreshed:
                store.backend.save(state)
            continue
        if len(plans) > 1:
            out.prose(f"Applying {label(plan.workspace, plan.version)}: "
                      f"{plural(len(plan.calls), 'call')}.", err=True)
        if announce:
            out.plan(plan)
        try:
            result = _execute(settings, plan, state, store.backend, config_path, env,
                              parallelism, rate, out)
        except ReconcilerError as error:
            if len(plans) == 1:
                raise
            # Stopped before its first call (a setup error found by the preflight): the
            # pairs applied before it are still reported, then the error ends the command.
            applied.append(Applied(plan.workspace, plan.version, None, error))
            stopped = True
            continue
        applied.append(Applied(plan.workspace, plan.version, result))
        outcome = result.outcome
        stopped = outcome.interrupted or outcome.fatal is not None
    return applied


def _saved_plan(paths: tuple[Path, ...]) -> Path | None:
    """A single argument that is a file but not YAML is a saved plan.

    Among several arguments it is an error, said before anything else (the API key
    included): read as configuration, a plan would only draw YAML problems about JSON.
    """
    plans = [path for path in paths if path.is_file() and path.suffix.lower() not in YAML_SUFFIXES]
    if len(paths) == 1 and plans:
        return plans[0]
    if plans:
        raise UsageError(
            f"{printable(str(plans[0]))} is a saved plan, and a saved plan is applied alone: "
            f"`reconciler apply {printable(str(plans[0]))}` applies exactly it (the "
            "configuration was read when it was made); to plan from the configuration "
            "instead, give only its YAML files and directories")
    return None


def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise UsageError("no terminal to confirm on: re-run with --auto-approve, or apply a "
                         "reviewed saved plan (`plan --out plan.json`, then `apply plan.json`)")
    answer = click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                          show_default=False)
    if answer != "yes":
        raise UsageError("apply cancelled: nothing was changed")


def _execute(settings: Settings, plan: Plan, state: State, backend: StateBackend,
             config_path: Path, env: Mapping[str, str], parallelism: int, rate: float | None,
             out: Output) -> ApplyResult:
    api = client(settings, env, plan.workspace, plan.version, parallelism)
    context = audit_context(
        settings, config_dir=config_path if config_path.is_dir() else config_path.parent,
        plan_id=plan.plan_id, workspace=plan.workspace, version=plan.version,
        forced=plan.forced)
    bar = progress(len(plan.calls), "apply")
    try:
        return run_apply(plan, state, backend, api, context=context,
                         parallelism=parallelism, rate=rate,
                         retry=retry_policy(env), progress=bar.advance, on_report=out.report)
    finally:
        bar.close()
        api.close()


