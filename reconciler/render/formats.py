"""The one registry of output formats, for plans and drift reports alike.

    text       a terminal or CI log, optionally colored
    json       a document for programs: values masked unless show_values
    markdown   a pull-request (or issue) comment, cut to stay under GitHub's limit

Each `OutputFormat` renders the plans one run made (one per workspace/version pair, as
`render.pairs` puts them together) and the drift reports of one refresh; a single plan or
report is a run of one pair and renders exactly as it alone would. A format that can write a
large plan as a stream of bytes (`write_plans`) is written so by the CLI, never held whole.
The CLI's `--format` of `plan`, `show` and `refresh` offers exactly the formats here, in
this order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from reconciler.drift import DriftReport
from reconciler.plan import Plan
from reconciler.render.json import render_json, write_json
from reconciler.render.pairs import (
    render_drift_json_pairs,
    render_drift_markdown_pairs,
    render_drift_text_pairs,
    render_markdown_pairs,
    render_text_pairs,
)

PlansRenderer = Callable[[Sequence[Plan], bool, bool], str]
"""(plans, color, show_values) -> the text, ending with exactly one newline."""
DriftRenderer = Callable[[Sequence[DriftReport], bool, bool], str]
"""(reports, color, show_values) -> the text, ending with exactly one newline."""
PlansWriter = Callable[[Sequence[Plan], BinaryIO, bool, str | None, range | None], None]
"""(plans, out, show_values, checksum of the saved plan if just written, the calls to write
if not all: see `plandoc.document_lines`) -> None."""


@dataclass(frozen=True)
class OutputFormat:
    """One output format: how it renders a run's plans and a refresh's drift reports.

    Options a format has no use for (color, outside text) are ignored."""

    name: str
    plans: PlansRenderer
    drift: DriftRenderer
    write_plans: PlansWriter | None = None  # a stream of the same bytes as `plans`


def _writes_json(plans: Sequence[Plan], out: BinaryIO, show_values: bool,
                 checksum: str | None, part: range | None) -> None:
    write_json(plans, out, show_values=show_values, checksum=checksum, part=part)


TEXT: Final = OutputFormat(
    "text",
    plans=lambda plans, color, show_values: render_text_pairs(
        plans, color=color, show_values=show_values),
    drift=lambda reports, color, show_values: render_drift_text_pairs(
        reports, color=color, show_values=show_values),
)
JSON: Final = OutputFormat(
    "json",
    plans=lambda plans, color, show_values: render_json(plans, show_values=show_values),
    drift=lambda reports, color, show_values: render_drift_json_pairs(
        reports, show_values=show_values),
    write_plans=_writes_json,
)
MARKDOWN: Final = OutputFormat(
    "markdown",
    plans=lambda plans, color, show_values: render_markdown_pairs(
        plans, show_values=show_values),
    drift=lambda reports, color, show_values: render_drift_markdown_pairs(
        reports, show_values=show_values),
)

FORMATS: Final[Mapping[str, OutputFormat]] = {
    output.name: output for output in (TEXT, JSON, MARKDOWN)}


def output_format(name: str) -> OutputFormat:
    """The format called `name`; ValueError naming the formats there are."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def render_plans(plans: Sequence[Plan], fmt: str, *, color: bool = False,
                 show_values: bool = False) -> str:
    """`plans` (one per pair, of one run) in format `fmt`."""
    return output_format(fmt).plans(plans, color, show_values)


def render_drift(report: DriftReport | Sequence[DriftReport], fmt: str, *,
                 color: bool = False, show_values: bool = False) -> str:
    """`report` (or the reports of one refresh, one per pair) in format `fmt`, ending with
    exactly one newline."""
    reports = (report,) if isinstance(report, DriftReport) else report
    return output_format(fmt).drift(reports, color, show_values)
