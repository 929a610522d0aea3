"""The plans (and drift reports) of several workspace/version pairs made in one run, as one
text, one comment or one document; `render.formats` holds them in its registry.

A run of one pair renders exactly as that pair's plan (or report) does. A run of several
renders each pair's plan in turn (sorted by workspace, then version) under its own title,
then a line of totals; in markdown, one section per pair in one comment that stays under the
limit as a whole: the limit is shared, and what a short section leaves unused goes to the
others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import orjson

from reconciler.drift import DriftReport
from reconciler.plan import Plan
from reconciler.render.common import BOLD, Paint, plural, printable_json
from reconciler.render.drift import render_drift_json, render_drift_text
from reconciler.render.drift_markdown import render_drift_markdown
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


def render_drift_text_pairs(reports: Sequence[DriftReport], *, color: bool,
                            show_values: bool) -> str:
    """The drift of each pair refreshed in one run, each report in turn."""
    return "\n".join(render_drift_text(report, color=color, show_values=show_values)
                     for report in reports)


def render_drift_markdown_pairs(reports: Sequence[DriftReport], *, show_values: bool) -> str:
    """One comment: one pair renders as `render_drift_markdown`; more than one, each in
    turn, the limit shared equally."""
    if len(reports) == 1:
        return render_drift_markdown(reports[0], show_values=show_values)
    share = max((DEFAULT_LIMIT - len(_SEPARATOR) * len(reports)) // len(reports), MIN_SHARE)
    return "".join(_SEPARATOR * bool(index) + render_drift_markdown(
        report, show_values=show_values, limit=share) for index, report in enumerate(reports))


def render_drift_json_pairs(reports: Sequence[DriftReport], *, show_values: bool) -> str:
    """One pair's report as `render_drift_json`; more than one as one document,
    `{"has_drift": …, "reports": [each pair's report]}`."""
    if len(reports) == 1:
        return render_drift_json(reports[0], show_values=show_values)
    documents = [orjson.loads(render_drift_json(report, show_values=show_values))
                 for report in reports]
    whole = {"has_drift": any(report.has_drift for report in reports), "reports": documents}
    # Escaped again: `render_drift_json` escaped what a terminal would act on, `loads` undid it.
    return printable_json(orjson.dumps(whole, option=orjson.OPT_INDENT_2).decode()) + "\n"
