"""Renderers: pure functions from a `Plan` to a string, one per output format.

    text       a terminal or CI log, optionally colored          (render.text)
    markdown   a pull-request comment, cut to fit GitHub          (render.markdown)
    json       the saved-plan document, masked unless show_values  (render.json)

A drift report (`reconciler.drift`) has the same three formats: `render_drift` (render.drift).

Renderers never print and never import click; the CLI picks the format and writes the result,
which always ends with exactly one newline.
Human formats mask personal values (`reconciler.mask`) unless `show_values`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from reconciler.plan import Plan
from reconciler.render.drift import render_drift
from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

Renderer = Callable[[Plan, bool, bool], str]

RENDERERS: Final[dict[str, Renderer]] = {
    "text": lambda plan, color, show_values: render_text(
        plan, color=color, show_values=show_values),
    "markdown": lambda plan, color, show_values: render_markdown(plan, show_values=show_values),
    "json": lambda plan, color, show_values: render_json(plan, show_values=show_values),
}
FORMATS: Final = tuple(RENDERERS)


def render(plan: Plan, fmt: str, *, color: bool = False, show_values: bool = False) -> str:
    """`plan` in format `fmt` (one of `FORMATS`); options a format has no use for are ignored."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}") from None
    return renderer(plan, color, show_values)


__all__ = ["FORMATS", "RENDERERS", "render", "render_drift", "render_json", "render_markdown",
           "render_text"]
