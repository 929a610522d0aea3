"""`show`: a saved plan rendered, with nothing else read (its module imports only that)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler import heap
from reconciler.cli.group import cli
from reconciler.cli.options import (
    common_options,
    output_format_option,
    show_values_option,
    use_color,
)
from reconciler.cli.settings import Settings, pass_settings
from reconciler.plan import Plan
from reconciler.planfile import read_plans
from reconciler.planview import show_text
from reconciler.render.formats import TEXT, OutputFormat


@cli.command()
@common_options
@click.argument("planfile", type=click.Path(dir_okay=False, path_type=Path))
@output_format_option
@show_values_option
@pass_settings
def show(settings: Settings, planfile: Path, fmt: OutputFormat, show_values: bool) -> None:
    """Render a saved plan (its checksum is verified first).

    \b
    Example:
      reconciler show plan.json --format markdown > comment.md
    """
    if fmt is TEXT:  # a large plan is read and rendered on two cores, where it can be
        text = show_text(planfile, color=use_color(settings), show_values=show_values)
        if text is not None:
            click.echo(text, nl=False, color=use_color(settings))
            return
    with heap.collector_paused():  # as in `plan`: never rescan the plan read
        saved = read_plans(planfile, settings.encryption())
        heap.settle()
    _output(settings, saved, fmt, show_values)
    heap.keep(saved)


def _output(settings: Settings, plans: tuple[Plan, ...], fmt: OutputFormat,
            show_values: bool) -> None:
    """Print saved `plans` in `fmt`; as a stream of lines where the format writes one
    (JSON), since at 100,000 profiles it runs to tens of megabytes."""
    if fmt.write_plans is not None:
        sys.stdout.flush()  # what was echoed before goes first
        fmt.write_plans(plans, sys.stdout.buffer, show_values, None, None)
        return
    color = use_color(settings)
    # click strips ANSI codes off a stream that is not a terminal unless told otherwise.
    click.echo(fmt.plans(plans, color, show_values), nl=False, color=color)
