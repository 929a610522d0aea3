"""The plan as a pull-request comment: a summary table, then one folded section per profile.

GitHub refuses comments over 65,536 characters, so the comment is cut to `limit`: sections
are added in plan order until the next one would not fit, then a note says how many
profiles and changes were left out and how to see them all. Sections are built one at a
time and building stops when the comment is full, so a 100,000-profile plan costs little
more than the part that is shown.

Changed lines are marked `!` rather than `~` inside the ```diff blocks, because that is the
marker GitHub's diff highlighting colors as a change.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from itertools import groupby
from operator import attrgetter
from typing import Final

from reconciler.plan import Call, Plan, count_actions
from reconciler.render.common import (
    DIFF_MARKERS,
    NO_CHANGES,
    OPERATION_TITLES,
    Section,
    cut_note,
    describe_call,
    describe_counts,
    describe_entry,
    fit_sections,
    inline_markdown,
    leaves_management,
    plural,
    printable,
    profile_action,
    summary_line,
)

DEFAULT_LIMIT: Final = 65_000
SEE_ALL: Final = ("See the whole plan with `reconciler show plan.json` "
                  "(save it with `reconciler plan --out plan.json`).")


def render_markdown(plan: Plan, *, show_values: bool, limit: int = DEFAULT_LIMIT) -> str:
    """The plan as GitHub-flavored markdown of at most `limit` characters, ending with a newline."""
    summary = plan.summary
    return fit_sections(
        _head(plan, show_values=show_values, room=limit // 4),
        _sections(plan, show_values=show_values),
        profiles=summary.profiles, changes=summary.add + summary.change + summary.remove,
        limit=limit, note=_cut_note)


def _sections(plan: Plan, *, show_values: bool) -> Iterator[Section]:
    # The plan keeps each profile's calls together, so groupby is lazy: nothing past the cut
    # is grouped.
    for distinct_id, group in groupby(plan.calls, key=attrgetter("distinct_id")):
        calls = list(group)
        yield (_section(distinct_id, calls, show_values=show_values),
               sum(count_actions(calls).values()))


def _head(plan: Plan, *, show_values: bool, room: int) -> str:
    """Title, summary table, notes and warnings; warnings stop at `room` characters."""
    title = (f"### Reconciler plan for {inline_markdown(plan.workspace)} "
             f"({inline_markdown(plan.version)})\n\n")
    if not plan.summary.has_changes:
        return f"{title}{NO_CHANGES}\n\n"
    summary = plan.summary
    rows = [
        ("To add", str(summary.add)),
        ("To change", str(summary.change)),
        ("To remove", str(summary.remove)),
        *((f"{name} calls", str(summary.calls.get(operation, 0)))
          for operation, name in OPERATION_TITLES.items()),
        ("Profiles", str(summary.profiles)),
        *((("Leaving the state without a call",
            ", ".join(inline_markdown(name) for name in plan.forget[:20])
            + (" …" if len(plan.forget) > 20 else "")),) if plan.forget else ()),
        ("Workspace / version",
         f"{inline_markdown(plan.workspace)} / {inline_markdown(plan.version)}"),
        ("State", "new" if plan.lineage is None
         else f"lineage {inline_markdown(plan.lineage)}, serial {plan.serial}"),
    ]
    lines = [f"**{summary_line(plan)}**", "", "| Plan | |", "|:--|--:|"]
    lines.extend(f"| {name} | {value} |" for name, value in rows)
    lines.append("")
    if plan.forced:
        lines += ["> [!CAUTION]",
                  f"> **Forced:** this plan removes {plan.deletions} of {plan.recorded_entries} "
                  "recorded channel entries, more than the safety rail allows.", ""]
    if plan.targets:
        targets = ", ".join(inline_markdown(target) for target in plan.targets)
        lines += [f"Targeted profiles only: {targets}. Other changes may be pending.", ""]
    if plan.warnings:
        lines += _warnings(plan.warnings, room)
    lines.append("Markers: `+` add, `!` change, `-` remove."
                 + ("" if show_values else " Values are masked."))
    lines.append("")
    return title + "\n".join(lines) + "\n"


def _warnings(warnings: tuple[str, ...], room: int) -> list[str]:
    lines = ["> [!WARNING]"]
    used = 0
    for index, warning in enumerate(warnings):
        line = f"> - {inline_markdown(warning)}"
        if used + len(line) > room:
            lines.append(f"> - … and {plural(len(warnings) - index, 'more warning')} "
                         "(`reconciler show` lists them all)")
            break
        lines.append(line)
        used += len(line)
    lines.append("")
    return lines


def _section(distinct_id: str, calls: list[Call], *, show_values: bool) -> str:
    """One folded profile. Diff lines start with a marker, never a backtick, so no value can
    close the fence; `printable` keeps every value on its line."""
    body: list[str] = []
    for call in calls:
        body.append(f"# {describe_call(call)}")
        for change in call.changes:
            body.append(f"{DIFF_MARKERS[change.action]} "
                        f"{describe_entry(call, change, show_values=show_values)}")
    counts = count_actions(calls)
    marker = profile_action(calls)
    label = f"<code>{marker} {html.escape(printable(distinct_id))}</code>"
    if leaves_management(calls):
        label += " leaves management"
    detail = describe_counts(counts["+"], counts["~"], counts["-"])
    return (f"<details><summary>{label}: {detail}</summary>\n\n```diff\n"
            + "\n".join(body) + "\n```\n\n</details>\n\n")


def _cut_note(profiles: int, changes: int, limit: int) -> str:
    return cut_note(profiles, changes, limit, SEE_ALL)
