"""`export`: configuration YAML from what the server holds, for adopting a workspace.

The output goes to stdout, to one file, or to a directory of files (`profiles-0001.yaml`
...). Every file is written atomically (`reconciler.atomic`: a temporary file, fsync,
rename) with mode 0600, since it holds unmasked personal data; a new directory is filled
under a temporary name and renamed into place whole. An existing file is replaced only with
`--force`; in an existing directory, `--force` replaces the files of an earlier export and
removes those this one no longer writes (so the directory reads as this export), and any
other YAML file there is refused even then: the loader would merge it with the export.
Everything about the output is checked before the first request.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import click

from reconciler import __version__, atomic
from reconciler.cli.group import cli
from reconciler.cli.options import common_options, open_store, state_option
from reconciler.cli.pairs import describe_pairs, load_pairs, one_state_only, open_pair, pair_options
from reconciler.cli.refresh_cmds import check_reading, read
from reconciler.cli.remote import base_url, require_api_key, run_options, target_workspace
from reconciler.cli.settings import Settings, pass_settings
from reconciler.config import Config
from reconciler.config.sources import is_yaml_name
from reconciler.errors import UsageError
from reconciler.export import Origin, Sorted, public_url, render, render_files, sort_out
from reconciler.render.common import noun, plural, printable
from reconciler.state import State

DEFAULT_PER_FILE: Final = 1000
_EXPORT_FILE: Final = re.compile(r"profiles-[0-9]{4,}\.yaml")


@dataclass(frozen=True)
class _Target:
    """Where the export goes: stdout (`path` None), one file, or a directory of files."""

    path: Path | None
    is_directory: bool
    stale: tuple[Path, ...] = ()  # an earlier export's files, replaced or removed (--force)

    def describe(self, files: int) -> str:
        if self.path is None:
            return "stdout"
        if not self.is_directory:
            return str(self.path)
        return f"{self.path} ({plural(files, 'file')})"


@cli.command("export")
@common_options
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Export this profile (repeatable).")
@click.option("--all-recorded", is_flag=True,
              help="Export every profile the state records (--state, or the default state).")
@click.option("--ids-from", type=click.Path(path_type=Path), metavar="FILE",
              help="Export the profiles named in FILE, one distinct_id per line (surrounding "
                   "white space, blank lines and lines starting with # are skipped; - reads "
                   "stdin).")
@click.option("--out", type=click.Path(), metavar="FILE|DIR",
              help="Write here instead of stdout; a path ending in / or an existing "
                   "directory gets a directory of files.")
@click.option("--per-file", type=click.IntRange(min=1), default=DEFAULT_PER_FILE,
              show_default=True, help="Profiles per file of a directory export.")
@click.option("--force", is_flag=True,
              help="Replace an existing --out file, or an earlier export's files in --out DIR.")
@pair_options
@state_option
@run_options
@click.pass_context
@pass_settings
def export(settings: Settings, ctx: click.Context, paths: tuple[Path, ...],
           ids: tuple[str, ...],
           all_recorded: bool, ids_from: Path | None, out: str | None, per_file: int,
           force: bool, workspace_filter: str | None, version_filter: str | None,
           state_path: Path | None, parallelism: int, rate: float | None) -> None:
    """Write YAML that declares profiles exactly as the server holds them.

    Importing the YAML and planning it then shows no change: the way to adopt a workspace.
    Values are not masked (the YAML is configuration). PATHS, or FYNO_WSID and
    FYNO_VERSION, name the workspace (PATHS of several workspace/version pairs: choose one
    with --workspace and --version); with --all-recorded, --state alone does too.

    \b
    Example:
      reconciler export --id u-1001 --id u-1002 > profiles.yaml
      reconciler export --ids-from ids.txt --out profiles/ --per-file 500
      reconciler import profiles/ && reconciler plan profiles/   # no changes
    """
    env = os.environ
    require_api_key(env)
    chosen = [name for name, given in (("--id", bool(ids)), ("--all-recorded", all_recorded),
                                       ("--ids-from", ids_from is not None)) if given]
    if len(chosen) != 1:
        raise UsageError("name the profiles to export with exactly one of --id ID, "
                         "--all-recorded or --ids-from FILE" +
                         (f", not {' and '.join(chosen)}" if chosen else ""))
    if all_recorded and paths:
        configs = load_pairs(settings, paths, workspace_filter, version_filter)
        if len(configs) > 1:
            _export_pairs(settings, configs, paths, out, force, per_file, state_path, env,
                          parallelism, rate)
            return
    target = _target(out, force)
    if not target.is_directory and (
            ctx.get_parameter_source("per_file") is click.core.ParameterSource.COMMANDLINE):
        raise UsageError("--per-file splits a directory export: give --out DIR/")
    recorded: State | None = None
    if (all_recorded and not paths and not settings.workspace and state_path is not None
            and workspace_filter is None):
        recorded = open_store(settings, state_path, "", "live").load(None, None)
        workspace, version = recorded.workspace, recorded.version
    else:
        workspace, version, _ = target_workspace(settings, paths, "to export from",
                                                 workspace_filter, version_filter)
    store = open_pair(settings, state_path, workspace, version, paths).backend  # both names
    if all_recorded:
        if recorded is None:
            recorded = store.load(workspace, version)
        wanted = _recorded_ids(recorded, store.describe())
    else:
        wanted = sorted(set(ids) if ids else _read_ids(ids_from))
    _export_one(settings, recorded or State.new(workspace, version), wanted, target, per_file,
                env, parallelism, rate)


def _recorded_ids(recorded: State, where: str) -> list[str]:
    wanted = sorted(recorded.profiles.keys() | recorded.missing)
    if not wanted:
        raise UsageError(f"the state {where} records no profile: import some first, or name "
                         "them with --id or --ids-from")
    return wanted


def _export_pairs(settings: Settings, configs: Sequence[Config], paths: tuple[Path, ...],
                  out: str | None, force: bool, per_file: int, state_path: Path | None,
                  env: Mapping[str, str], parallelism: int, rate: float | None) -> None:
    """`--all-recorded` of a configuration of several workspace/version pairs: each pair's
    recorded profiles into a folder of its own, `DIR/<workspace>-<version>/`, every folder
    checked before anything is read."""
    if out is None or not (out.endswith(("/", os.sep)) or Path(out).is_dir()):
        raise UsageError(f"the configuration declares {describe_pairs(configs)}: export them "
                         "to a directory, --out DIR/, one folder per pair (or choose one pair "
                         "with --workspace and --version)")
    one_state_only(state_path, configs)
    targets = [_target(str(Path(out) / f"{config.workspace}-{config.version}") + "/", force)
               for config in configs]
    for config, target in zip(configs, targets, strict=True):
        store = open_pair(settings, state_path, config.workspace, config.version, paths).backend
        recorded = store.load(config.workspace, config.version)
        _export_one(settings, recorded, _recorded_ids(recorded, store.describe()), target, per_file,
                    env, parallelism, rate)


def _export_one(settings: Settings, recorded: State, wanted: list[str], target: _Target,
                per_file: int, env: Mapping[str, str], parallelism: int,
                rate: float | None) -> None:
    """Read `wanted` from the server and write them as configuration at `target`."""
    workspace, version = recorded.workspace, recorded.version
    reading = read(settings, recorded, wanted, env, parallelism, rate, "export")
    check_reading(reading, "nothing was written")
    origin = Origin(workspace, version, public_url(base_url(settings)), __version__,
                    datetime.now(UTC).date())
    sorted_out = sort_out(reading.found)
    files = _write(target, origin, sorted_out, per_file)
    _summarize(target, files, sorted_out)


def _read_ids(source: Path | None) -> list[str]:
    """The distinct_ids of an --ids-from file; an unreadable or empty one is an error."""
    assert source is not None
    name = "stdin" if str(source) == "-" else str(source)
    try:
        if str(source) == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8", errors="strict") as stream:
                text = stream.read()
    except OSError as error:
        raise UsageError(f"cannot read --ids-from {name}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"cannot read --ids-from {name}: not UTF-8 text ({error.reason} at "
                         f"byte {error.start})") from None
    ids = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            ids.append(stripped)
    if not ids:
        raise UsageError(f"--ids-from {name} names no distinct_id (one per line; blank lines "
                         "and # comments are skipped)")
    return ids


def _target(given: str | None, force: bool) -> _Target:
    """Check where the export goes before anything is read from the server."""
    if given is None:
        return _Target(None, False)
    out = Path(given)  # a Path drops the final / that asks for a directory: test it first
    if given.endswith(("/", os.sep)) or out.is_dir():
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is not a directory")
        return _Target(out, True, _earlier_export(out, force) if out.exists() else ())
    if out.exists() and not force:
        raise UsageError(f"--out {out} exists: re-run with --force to replace it")
    if out.exists() and not out.is_file():
        raise UsageError(f"--out {out} is not a regular file")
    return _Target(out, False)


def _earlier_export(directory: Path, force: bool) -> tuple[Path, ...]:
    """The files of an earlier export in `directory`, which --force replaces; any other YAML
    file the loader would read there is refused, since it would merge with the export."""
    found: list[Path] = []
    for root, subdirectories, names in os.walk(directory, onerror=_unlistable):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in sorted(names):
            if not is_yaml_name(name):
                continue
            path = Path(root) / name
            if Path(root) != directory or _EXPORT_FILE.fullmatch(name) is None:
                raise UsageError(f"--out {directory} holds {path}, which is not a file of an "
                                 "export; the configuration would merge it with the export: "
                                 "choose an empty directory")
            found.append(path)
    if found and not force:
        raise UsageError(f"--out {directory} holds an earlier export ({found[0].name}, ...): "
                         "re-run with --force to replace it")
    return tuple(found)


def _unlistable(error: OSError) -> None:
    raise UsageError(f"cannot list --out {error.filename}: {error.strerror or error}")


def _write(target: _Target, origin: Origin, data: Sorted, per_file: int) -> int:
    """Write the export; the number of files written."""
    if target.path is None:
        click.echo(render(origin, data), nl=False)
        return 1
    try:
        if not target.is_directory:
            atomic.replace_file(target.path, render(origin, data).encode())
            return 1
        files = list(render_files(origin, data, per_file))
        if target.path.exists():
            _write_into(target.path, files, target.stale)
        else:
            _write_new_directory(target.path, files)
    except OSError as error:
        raise UsageError(f"cannot write --out {error.filename or target.path}: "
                         f"{error.strerror or error}") from None
    return len(files)


def _write_into(directory: Path, files: Sequence[tuple[str, str]],
                stale: Sequence[Path]) -> None:
    """Replace an (empty, or earlier export's) directory's files one by one, each atomically,
    then remove the earlier files this export does not write."""
    for name, text in files:
        atomic.replace_file(directory / name, text.encode())
    written = {name for name, _ in files}
    for path in stale:
        if path.name not in written:
            path.unlink(missing_ok=True)
    atomic.fsync_directory(directory)


def _write_new_directory(directory: Path, files: Sequence[tuple[str, str]]) -> None:
    """Fill a temporary sibling directory, then rename it into place: the directory appears
    whole or not at all."""
    parent = directory.parent
    parent.mkdir(mode=atomic.DIR_MODE, parents=True, exist_ok=True)
    temporary = parent / f".{directory.name}.{secrets.token_hex(6)}.tmp"
    temporary.mkdir(mode=atomic.DIR_MODE)
    try:
        for name, text in files:
            atomic.write_new_file(temporary / name, text.encode())
        atomic.fsync_directory(temporary)
        os.rename(temporary, directory)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(temporary)
        raise
    atomic.fsync_directory(parent)


def _summarize(target: _Target, files: int, sorted_out: Sorted) -> None:
    lines = [f"Exported {plural(len(sorted_out.declared), 'profile')} to "
             f"{target.describe(files)}."]
    if sorted_out.with_unmanaged:
        count = sorted_out.with_unmanaged
        lines.append(f"{count} of them {noun(count, 'holds', 'hold')} channels the profile API "
                     "does not document (e.g. webpush): written as comments, kept as the server "
                     "holds them, never planned.")
    if sorted_out.missing:
        lines.append(f"{len(sorted_out.missing)} not found on the server, not declared: "
                     + _some(sorted_out.missing))
    if sorted_out.refused:
        lines.append(f"{len(sorted_out.refused)} hold data no configuration can hold, not "
                     "declared (the comments at the top say why): "
                     + _some([name for name, _ in sorted_out.refused]))
    click.echo(printable("\n".join(lines), keep="\n"), err=True)


def _some(names: Sequence[str]) -> str:
    return ", ".join(printable(name) for name in names[:20]) + (" ..." if len(names) > 20 else "")
