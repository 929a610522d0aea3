"""`fmt`: rewrite configuration YAML into the canonical layout, comments kept (`reconciler.fmt`).

Like `terraform fmt`: the names of the files it changed on stdout; `--check` changes nothing,
names each file not in the layout and exits 1. A file it refuses is left as it was, and its
problems (file:line:column, values masked) end the run with exit 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.group import cli
from reconciler.cli.options import common_options, show_values_option
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.fmt import LAYOUT, Formatted, format_paths
from reconciler.mask import mask_text
from reconciler.render.common import printable

_HELP = f"""Rewrite the configuration files PATHS in one canonical layout, every comment kept.

PATHS are files, or directories whose *.yaml and *.yml files are read, as every command
reads them. Prints the name of each file it changed. A file the loader refuses (invalid
YAML, a duplicate key, a tab indenting a line...) is left as it was, and its problems are
shown with file, line and column (exit 1). Nothing is written unless the formatted file
loads to exactly the same configuration, with the same comments; each write is atomic and
keeps the file's mode.

\b
The layout:
{LAYOUT}

\b
Example:
  reconciler fmt profiles/
  reconciler fmt --check --diff profiles/    # in CI: exit 1 naming each unformatted file
"""


@cli.command("fmt", help=_HELP)
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True,
              help="Change nothing: name each file not in the layout, and exit 1 if any.")
@click.option("--diff", is_flag=True,
              help="Also show what changes, as a unified diff (values masked).")
@show_values_option
def fmt(paths: tuple[Path, ...], check: bool, diff: bool, show_values: bool) -> None:
    report = format_paths(paths, write=not check)
    for formatted in report.changed:
        click.echo(printable(formatted.path))
        if diff:
            click.echo(_diff(formatted, show_values), nl=False)
    if report.problems:
        raise ConfigError(report.problems)
    if check and report.changed:
        count = len(report.changed)
        files = "file is" if count == 1 else "files are"
        raise ReconcilerError(f"{count} {files} not in the canonical layout (named above); "
                              "run `reconciler fmt` on them")


def _diff(formatted: Formatted, show_values: bool) -> str:
    """The diff of one file, masked unless `show_values` (it quotes the file's values)."""
    text = formatted.diff()
    if not show_values:
        text = mask_text(text, formatted.secrets)
    return printable(text, keep="\n")
