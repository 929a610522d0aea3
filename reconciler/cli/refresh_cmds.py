"""`import` and `refresh`: learn the recorded state from the server, and report drift."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from reconciler.audit import Fact
from reconciler.cli.group import cli
from reconciler.cli.options import (
    EXIT_CHANGES,
    common_options,
    output_format_option,
    record,
    record_lost,
    show_values_option,
    state_option,
    use_color,
)
from reconciler.cli.pairs import label, load_pairs, one_state_only, open_pair, pair_options, warn
from reconciler.cli.remote import (
    client,
    progress,
    require_api_key,
    retry_policy,
    run_options,
    target_workspace,
)
from reconciler.cli.settings import Settings, pass_settings
from reconciler.config import Config
from reconciler.drift import DriftReport, ProfileDrift
from reconciler.errors import ApplyFailedError, Interrupted, UsageError
from reconciler.mask import mask_message
from reconciler.ownership import EVERYTHING_EXCLUSIVE, Ownership
from reconciler.refresh import (
    Reading,
    drift_report,
    managed_ids,
    read_profiles,
    record_reading,
    settled_by,
)
from reconciler.render.common import plural, printable
from reconciler.render.formats import TEXT, OutputFormat
from reconciler.state import State, StateBackend


def read(settings: Settings, state: State, ids: Sequence[str], env: Mapping[str, str],
         parallelism: int, rate: float | None, label: str) -> Reading:
    """GET `ids` from the server with a progress display."""
    api = client(settings, env, state.workspace, state.version, parallelism)
    bar = progress(len(ids), label)
    started = time.monotonic()
    try:
        reading = read_profiles(api, ids, parallelism=parallelism, rate=rate,
                                retry=retry_policy(env), progress=bar.advance)
    finally:
        bar.close()
        api.close()
    seconds = time.monotonic() - started
    click.echo(f"{label}: read {plural(len(reading.found), 'profile')} in {seconds:.2f} s "
               f"({len(reading.found) / seconds if seconds else 0:.1f} profiles/s).", err=True)
    return reading


def refresh_in_memory(settings: Settings, state: State, env: Mapping[str, str],
                      parallelism: int, rate: float | None, targets: Sequence[str],
                      ownership: Ownership = EVERYTHING_EXCLUSIVE,
                      saved_at: StateBackend | None = None,
                      config_dir: Path | None = None) -> None:
    """`--refresh` of plan and apply: make `state` the server's truth; report drift.
    `saved_at`: the backend, when what is learned will be saved (apply): its ledger then
    records it, as `refresh` does."""
    if saved_at is not None:
        record_lost(settings, saved_at, state, config_dir)
    ids = sorted(managed_ids(state, targets))
    reading = read(settings, state, ids, env, parallelism, rate, "refresh")
    check_reading(reading, known=state)
    drifted, facts = learn(state, reading, "apply --refresh", ownership)
    if saved_at is not None:
        record(settings, saved_at, state.workspace, state.version, facts,
               config_dir=config_dir)
    report = drift_report(state, drifted, len(ids))
    if report.has_drift:
        click.echo(TEXT.drift((report,), False, False), err=True, nl=False)


def learn(state: State, reading: Reading, command: str,
          ownership: Ownership = EVERYTHING_EXCLUSIVE
          ) -> tuple[list[ProfileDrift], list[Fact]]:
    """Make `state` what the server answered: the drift found (and what others wrote where
    they may), and the ledger's records of it (what settled requests in doubt, the drift)."""
    recorded = {name: state.profiles.get(name) for name in reading.found}
    settled = settled_by(state, reading.found)
    drifted = record_reading(state, reading.found, ownership)
    return drifted, settled + [
        Fact(drift.distinct_id, "drift", f"changed outside reconciler (found by {command})",
             before=recorded[drift.distinct_id], after=reading.found[drift.distinct_id])
        for drift in drifted if drift.is_drift]


def _config_dir(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def check_reading(reading: Reading, outcome: str = "nothing was planned", *,
                  known: State | None = None, show_values: bool = False) -> None:
    """Stop a command whose reads were interrupted or failed, saying what was not done. The
    server's message may quote the profile: it is masked unless `show_values`, with what
    `known` records of that profile."""
    if reading.interrupted:
        raise Interrupted("interrupted while reading profiles; nothing was recorded")
    if reading.failures:
        names = ", ".join(report.distinct_id for report in reading.failures[:10])
        first = reading.failures[0]
        recorded = known.profiles.get(first.distinct_id) if known is not None else None
        why = first.message if show_values else mask_message(
            first.message, None if recorded is None else {"channel": recorded.to_json()})
        raise ApplyFailedError(f"{plural(len(reading.failures), 'profile')} could not be read "
                               f"({names}); {outcome}. The first: {why}")


@cli.command("import")
@common_options
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Import this profile (repeatable); without PATHS, FYNO_WSID (or "
                   "--workspace) names the workspace.")
@click.option("--replace", is_flag=True, help="Read again profiles the state already holds.")
@pair_options
@state_option
@run_options
@pass_settings
def import_(settings: Settings, paths: tuple[Path, ...], ids: tuple[str, ...], replace: bool,
            workspace_filter: str | None, version_filter: str | None,
            state_path: Path | None, parallelism: int, rate: float | None) -> None:
    """Read profiles from the server into the state, exactly as the server holds them.

    With PATHS, every declared profile the state does not hold yet, of every
    workspace/version pair the files declare; with --id, those (of one pair).

    \b
    Example:
      reconciler import profiles/
      reconciler import --id u-1001 --id u-1002 --state state/FYXXXXXXXX-live.json
    """
    env = os.environ
    require_api_key(env)
    if not paths and not ids:
        raise UsageError("give the configuration PATHS, or --id ID for each profile to import")
    if ids:
        workspace, version, config = target_workspace(settings, paths, "to import from",
                                                      workspace_filter, version_filter)
        pairs = [(workspace, version, config)]
    else:
        configs = load_pairs(settings, paths, workspace_filter, version_filter)
        one_state_only(state_path, configs)
        pairs = [(config.workspace, config.version, config) for config in configs]
    unread: list[tuple[Reading, State]] = []
    for workspace, version, config in pairs:
        store = open_pair(settings, state_path, workspace, version, paths)
        warn(store.notes)
        where = f"{label(workspace, version)}: " if len(pairs) > 1 else ""
        reading, state = _import_pair(settings, store.backend, workspace, version, config,
                                      paths, ids, replace, env, parallelism, rate, where)
        if reading.failures:
            unread.append((reading, state))
    for reading, state in unread:
        check_reading(reading, "the others were imported: run the same import again for them",
                      known=state)


def _import_pair(settings: Settings, backend: StateBackend, workspace: str, version: str,
                 config: Config | None, paths: tuple[Path, ...], ids: tuple[str, ...],
                 replace: bool, env: Mapping[str, str], parallelism: int, rate: float | None,
                 where: str) -> tuple[Reading, State]:
    """Import into one pair's state; what was read, and the state saved."""
    with backend.lock("import"):
        state = backend.load(workspace, version)
        if ids:
            held = sorted(set(ids) & state.profiles.keys())
            if held and not replace:
                raise UsageError(f"the state already holds {', '.join(held)}: re-run with "
                                 "--replace to read them again")
            wanted = sorted(set(ids))
        else:
            assert config is not None  # no --id: PATHS were given
            wanted = sorted(name for name in config.profiles
                            if replace or name not in state.profiles)
        config_dir = _config_dir(paths[0]) if paths else None
        record_lost(settings, backend, state, config_dir)
        reading = read(settings, state, wanted, env, parallelism, rate, "import")
        if reading.interrupted:
            raise Interrupted("interrupted: nothing was imported")
        adopted = settled_by(state, reading.found) + [
            Fact(name, "import", "adopted as the server holds it" if data is not None
                 else "not found on the server: recorded as missing",
                 before=state.profiles.get(name), after=data)
            for name, data in sorted(reading.found.items())]
        record_reading(state, reading.found)
        if reading.found:
            state = backend.save(state)
            record(settings, backend, workspace, version, adopted, config_dir=config_dir)
    missing = sorted(name for name, data in reading.found.items() if data is None)
    imported = plural(len(reading.found) - len(missing), "profile")
    click.echo(f"{where}Imported {imported} into {backend.describe()} (serial {state.serial}).")
    if missing:
        click.echo(f"{where}{len(missing)} not found on the server, recorded as missing "
                   f"(nothing is planned for them): {printable(', '.join(missing[:20]))}"
                   + (" ..." if len(missing) > 20 else ""))
    return reading, state


@cli.command()
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pair_options
@state_option
@output_format_option
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when drift was found (0: none, 1: error).")
@click.option("--target", "targets", multiple=True, metavar="ID",
              help="Refresh only this profile (repeatable).")
@run_options
@show_values_option
@click.pass_context
@pass_settings
def refresh(settings: Settings, ctx: click.Context, paths: tuple[Path, ...],
            workspace_filter: str | None, version_filter: str | None,
            state_path: Path | None, fmt: OutputFormat,
            detailed_exitcode: bool, targets: tuple[str, ...], parallelism: int,
            rate: float | None, show_values: bool) -> None:
    """Read every managed profile again, record what the server holds, and report drift.

    Drift is what changed outside reconciler (SDKs, the dashboard), per profile and channel,
    for every workspace/version pair the files declare.

    \b
    Example:
      reconciler refresh profiles/ --detailed-exitcode --format markdown > drift.md
    """
    env = os.environ
    require_api_key(env)
    configs = load_pairs(settings, paths, workspace_filter, version_filter)
    one_state_only(state_path, configs)
    reports = []
    unread: list[tuple[Reading, State]] = []
    for config in configs:
        store = open_pair(settings, state_path, config.workspace, config.version, paths)
        warn(store.notes)
        report, reading, state = _refresh_pair(settings, store.backend, config, paths, targets,
                                               env, parallelism, rate)
        reports.append(report)
        if reading.failures:
            unread.append((reading, state))
    color = use_color(settings)
    click.echo(fmt.drift(reports, color, show_values), nl=False, color=color)
    for reading, state in unread:
        check_reading(reading, "the others were refreshed: run refresh again for them",
                      known=state, show_values=show_values)
    if detailed_exitcode and any(report.has_drift for report in reports):
        ctx.exit(EXIT_CHANGES)


def _refresh_pair(settings: Settings, backend: StateBackend, config: Config,
                  paths: tuple[Path, ...], targets: tuple[str, ...], env: Mapping[str, str],
                  parallelism: int, rate: float | None) -> tuple[DriftReport, Reading, State]:
    """Refresh one pair's state: its drift report, what was read, the state saved."""
    with backend.lock("refresh"):
        state = backend.load(config.workspace, config.version)
        ids = sorted(managed_ids(state, targets))
        record_lost(settings, backend, state, _config_dir(paths[0]))
        reading = read(settings, state, ids, env, parallelism, rate, "refresh")
        if reading.interrupted:
            raise Interrupted("interrupted: nothing was recorded")
        settles = state.unconfirmed & reading.found.keys()
        held = dict(state.profiles)
        drifted, facts = learn(state, reading, "refresh", config.ownership)
        # A value the server holds in another form (a phone number it reformatted) is no
        # drift, but the state records what the server holds.
        if facts or settles or state.profiles != held:
            record(settings, backend, state.workspace, state.version, facts,
                   config_dir=_config_dir(paths[0]))
            state = backend.save(state)
    return drift_report(state, drifted, len(reading.found)), reading, state
