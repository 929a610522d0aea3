"""The plans of several workspace/version pairs made in one run, as one text or one comment.

A run of one pair renders exactly as that pair's plan does. A run of several renders each
pair's plan in turn (sorted by workspace, then version) under its own title, then a line of
totals; in markdown, one section per pair in one comment that stays under the limit as a
whole: the limit is shared, and what a short section leaves unused goes to the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import orjson

from reconciler.drift import DriftReport
from reconciler.plan import Plan
from reconciler.render.common import BOLD, Paint, plural, printable_json
from reconciler.render.drift import render_drift
from reconciler.render.drift_markdown import render_drift_markdown
from reconciler.render.json import render_json
from reconciler.render.markdown import DEFAULT_LIMIT, SEE_ALL, render_markdown
from reconciler.render.text import render_text

_SEPARATOR: Final = "\n---\n\n"
MIN_SHARE: Final = 2_000  # enough for a pair's summary table and its note


def total_line(plans: Sequence[Plan]) -> str:
    """`In all: 3 to add, 1 to change, 4 to remove, in 5 calls across 3 profiles of 2
    workspace/version pairs.`"""
    pairs = plural(len(plans), "workspace/version pair")
    if not any(plan.summary.has_changes for plan in plans):
        return f"In all: no changes in {pairs}."
    add = sum(plan.summary.add for plan in plans)
    change = sum(plan.summary.change for plan in plans)
    remove = sum(plan.summary.remove for plan in plans)
    calls = sum(len(plan.calls) for plan in plans)
    profiles = sum(plan.summary.profiles for plan in plans)
    return (f"In all: {add} to add, {change} to change, {remove} to remove, in "
            f"{plural(calls, 'call')} across {plural(profiles, 'profile')} of {pairs}.")


def render_text_pairs(plans: Sequence[Plan], *, color: bool, show_values: bool) -> str:
    if len(plans) == 1:
        return render_text(plans[0], color=color, show_values=show_values)
    parts = [render_text(plan, color=color, show_values=show_values) for plan in plans]
    return "\n".join(parts) + "\n" + Paint(color)(total_line(plans), BOLD) + "\n"


def render_markdown_pairs(plans: Sequence[Plan], *, show_values: bool,
                          limit: int = DEFAULT_LIMIT) -> str:
    """One comment: a title with the totals, then each pair's plan as `render_markdown`
    renders it, all of it under `limit` characters."""
    if len(plans) == 1:
        return render_markdown(plans[0], show_values=show_values, limit=limit)
    head = f"## Reconciler plan: {len(plans)} workspace/version pairs\n\n{total_line(plans)}\n"
    room = limit - len(head) - len(_SEPARATOR) * len(plans)
    sections = _shared(plans, room, show_values=show_values)
    return head + "".join(_SEPARATOR + section for section in sections)


def _shared(plans: Sequence[Plan], room: int, *, show_values: bool) -> list[str]:
    """Each plan's section, the `room` shared: each gets an equal share at first; what the
    sections leave unused goes, in equal parts, to the sections that were cut, rendered
    again with the larger limit; at most one round per plan."""
    share = max(room // len(plans), MIN_SHARE)
    sections = [render_markdown(plan, show_values=show_values, limit=share) for plan in plans]
    for _ in plans:
        cut = [index for index, section in enumerate(sections)
               if section.rstrip("\n").endswith(SEE_ALL)]
        spare = room - sum(len(section) for section in sections)
        if not cut or spare <= 0:
            break
        grown = False
        for index in cut:
            # Its length plus its part of the spare: the limits then add up to `room`.
            again = render_markdown(plans[index], show_values=show_values,
                                    limit=len(sections[index]) + spare // len(cut))
            grown |= len(again) > len(sections[index])
            sections[index] = again
        if not grown:
            break
    return sections


def render_pairs(plans: Sequence[Plan], fmt: str, *, color: bool = False,
                 show_values: bool = False) -> str:
    """`plans` (one per pair, of one run) in format `fmt`: text, markdown or json."""
    if fmt == "text":
        return render_text_pairs(plans, color=color, show_values=show_values)
    if fmt == "markdown":
        return render_markdown_pairs(plans, show_values=show_values)
    if fmt == "json":
        return render_json(plans, show_values=show_values)
    raise ValueError(f"unknown format {fmt!r}; expected text, markdown or json")


def render_drift_pairs(reports: Sequence[DriftReport], fmt: str, *, color: bool = False,
                       show_values: bool = False) -> str:
    """The drift of each pair refreshed in one run: one pair renders as `render_drift`; more
    than one, each in turn (markdown: the limit shared equally; JSON: one document,
    `{"has_drift": …, "reports": [each pair's report]}`)."""
    if len(reports) == 1:
        return render_drift(reports[0], fmt, color=color, show_values=show_values)
    if fmt == "json":
        documents = [orjson.loads(render_drift(report, "json", show_values=show_values))
                     for report in reports]
        whole = {"has_drift": any(report.has_drift for report in reports),
                 "reports": documents}
        # Escaped again: `render_drift` escaped what a terminal would act on, `loads` undid it.
        return printable_json(orjson.dumps(whole, option=orjson.OPT_INDENT_2).decode()) + "\n"
    if fmt == "markdown":
        share = max((DEFAULT_LIMIT - len(_SEPARATOR) * len(reports)) // len(reports),
                    MIN_SHARE)
        return "".join(_SEPARATOR * bool(index) + render_drift_markdown(
            report, show_values=show_values, limit=share) for index, report in
            enumerate(reports))
    return "\n".join(render_drift(report, fmt, color=color, show_values=show_values)
                     for report in reports)
