"""A drift report as an issue or pull-request comment: a summary table, one folded section
per drifted profile, cut to stay under GitHub's size limit like the plan's comment."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Final

from reconciler.drift import DriftReport, ProfileDrift
from reconciler.render.common import (
    DIFF_MARKERS,
    Section,
    cut_note,
    describe_change,
    describe_unmanaged,
    drift_title,
    fit_sections,
    inline_markdown,
    no_drift,
    plural,
    printable,
    unmanaged_action,
)

DEFAULT_LIMIT: Final = 65_000
SEE_ALL: Final = ("`--format json` lists every profile; save that output from the same run, "
                  "since the state now records this drift and a second refresh finds none.")
_WHOLE_PROFILE: Final = {"-": ("deleted on the server", "# the server has no such profile"),
                         "+": ("exists on the server again", "# the server has it again")}


def render_drift_markdown(report: DriftReport, *, show_values: bool,
                          limit: int = DEFAULT_LIMIT) -> str:
    """The report as GitHub-flavored markdown of at most `limit` characters."""
    summary = report.summary
    return fit_sections(
        _head(report, show_values=show_values), _sections(report, show_values=show_values),
        profiles=summary.profiles,
        changes=summary.added + summary.changed + summary.removed + summary.unmanaged,
        limit=limit, note=_cut_note)


def _head(report: DriftReport, *, show_values: bool) -> str:
    title = (f"### Drift in {inline_markdown(report.workspace)} "
             f"({inline_markdown(report.version)})\n\n")
    if not report.has_drift:
        return f"{title}{no_drift(report)}\n\n"
    summary = report.summary
    rows = [
        ("Profiles read", _count(report.checked)),
        ("Profiles changed", _count(summary.profiles)),
        ("Deleted on the server", _count(summary.missing)),
        ("Back on the server", _count(summary.appeared)),
        ("Entries added on the server", _count(summary.added)),
        ("Entries changed on the server", _count(summary.changed)),
        ("Entries removed on the server", _count(summary.removed)),
        ("Unmanaged keys changed", _count(summary.unmanaged)),
        ("Workspace / version",
         f"{inline_markdown(report.workspace)} / {inline_markdown(report.version)}"),
    ]
    lines = [f"**{drift_title(report)}.**", "", "| Drift | |", "|:--|--:|"]
    lines.extend(f"| {name} | {value} |" for name, value in rows)
    lines.append("")
    lines.append("Markers: `+` added on the server, `!` changed there, `-` removed there."
                 + ("" if show_values else " Values are masked."))
    lines.append("")
    return title + "\n".join(lines) + "\n"


def _count(count: int) -> str:
    return f"{count:,}"


def _sections(report: DriftReport, *, show_values: bool) -> Iterator[Section]:
    for profile in report.profiles:
        yield _section(profile, show_values=show_values), profile.entries


def _section(profile: ProfileDrift, *, show_values: bool) -> str:
    """One folded profile. Diff lines start with a marker, never a backtick, so no value can
    close the fence; `printable` keeps every value on its line."""
    counts = {"+": 0, "~": 0, "-": 0}
    marker = profile.action
    label = f"<code>{marker} {html.escape(printable(profile.distinct_id))}</code>"
    body: list[str] = []
    if marker in _WHOLE_PROFILE:
        note, comment = _WHOLE_PROFILE[marker]
        label += f" {note}"
        body.append(comment)
    for change in profile.changes:
        counts[change.action] += 1
        body.append(f"{DIFF_MARKERS[change.action]} "
                    f"{describe_change(change, show_values=show_values)}")
    for key, before, after in profile.unmanaged:
        action = unmanaged_action(before, after)
        body.append(f"{DIFF_MARKERS[action]} "
                    f"{describe_unmanaged(key, before, after, show_values=show_values)}")
    body.extend(f"# unmanaged, written by others (kept, not drift): {change.action} "
                f"{describe_change(change, show_values=show_values)}"
                for change in profile.foreign)
    parts = [f"{counts[action]} {verb}" for action, verb in
             (("+", "added"), ("~", "changed"), ("-", "removed")) if counts[action]]
    if profile.unmanaged:
        parts.append(f"{plural(len(profile.unmanaged), 'unmanaged key')} changed")
    if profile.foreign:
        parts.append(f"{len(profile.foreign)} written by others")
    detail = ", ".join(parts) or "no channel data"
    return (f"<details><summary>{label}: {detail}</summary>\n\n```diff\n"
            + "\n".join(body) + "\n```\n\n</details>\n\n")


def _cut_note(profiles: int, changes: int, limit: int) -> str:
    return cut_note(profiles, changes, limit, SEE_ALL)
