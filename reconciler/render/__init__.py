"""Renderers: pure functions from a `Plan` (or a drift report) to a string, one per format.

    text       a terminal or CI log, optionally colored          (render.text)
    markdown   a pull-request comment, cut to fit GitHub          (render.markdown)
    json       the saved-plan document, masked unless show_values  (render.json)

A drift report (`reconciler.drift`) has the same three formats (render.drift,
render.drift_markdown); the plans and reports of several workspace/version pairs are put
together by render.pairs; render.formats is the one registry of the formats, for both.

Renderers never print and never import click; the CLI picks the format and writes the result,
which always ends with exactly one newline.
Human formats mask personal values (`reconciler.mask`) unless `show_values`.
"""

from __future__ import annotations

from typing import Final

from reconciler.plan import Plan
from reconciler.render.formats import FORMATS as OUTPUT_FORMATS
from reconciler.render.formats import OutputFormat, output_format, render_drift, render_plans
from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

FORMATS: Final = tuple(OUTPUT_FORMATS)


def render(plan: Plan, fmt: str, *, color: bool = False, show_values: bool = False) -> str:
    """`plan` in format `fmt` (one of `FORMATS`); options a format has no use for are ignored."""
    return render_plans((plan,), fmt, color=color, show_values=show_values)


__all__ = ["FORMATS", "OUTPUT_FORMATS", "OutputFormat", "output_format", "render",
           "render_drift", "render_json", "render_markdown", "render_plans", "render_text"]
