"""Drift reports rendered: what `refresh` found changed on the server, as text or JSON (the
markdown is `render.drift_markdown`; `render.formats` has all three, and `render_drift`).

    Drift in workspace FYXXXXXXXX (live): 2 of 5 profiles changed outside reconciler
    ...
      ~ u-1001
          + sms: +91•••••0000
          ~ email: a•••@x.io -> b•••@x.io
          - push: fcm_token:ab…f3
          ~ webpush: (not managed by reconciler)
      - u-1002 (deleted on the server)

    Drift: 1 added, 1 changed, 1 removed on the server; 1 unmanaged key changed, in 2 ...

Markers read as in a plan, from the record to the server: `+` the server holds an entry the
state did not record, `~` it holds another value, `-` it lost one. Like the plan renderers:
masked unless `show_values`, colored only when asked, JSON with full values. No format lets a
terminal control character through: text and markdown escape them with `printable`, JSON
with `printable_json`.
"""

from __future__ import annotations

from typing import Final

import orjson

from reconciler.drift import DriftReport, ProfileDrift
from reconciler.mask import MASKED, mask_change_json
from reconciler.render.common import (
    BOLD,
    GREEN,
    MARKER_COLORS,
    RED,
    YELLOW,
    Paint,
    describe_change,
    describe_unmanaged,
    drift_summary_line,
    drift_title,
    printable,
    printable_json,
    unmanaged_action,
)
from reconciler.render.text import LINE_INDENT, PROFILE_INDENT

PROFILE_NOTES: Final = {"-": " (deleted on the server)", "+": " (exists on the server again)",
                        "~": ""}

def render_drift_json(report: DriftReport, *, show_values: bool = False) -> str:
    """`report.to_json()` with sorted keys and an indent of 2; values masked unless
    `show_values` (the document then says `"masked": true`).

    Unprintable characters in ids and values are `\\uXXXX` escapes (`printable_json`): the
    same values for a JSON reader, no raw bidi or C1 control for a person reading the log.
    """
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    document = report.to_json()
    if not show_values:
        document["profiles"] = [{
            **profile,
            "changes": [mask_change_json(change) for change in profile["changes"]],
            "foreign": [mask_change_json(change) for change in profile["foreign"]],
            "unmanaged": [{**item, "before": None if item["before"] is None else MASKED,
                           "after": None if item["after"] is None else MASKED}
                          for item in profile["unmanaged"]],
        } for profile in document["profiles"]]
        document["masked"] = True
    return printable_json(orjson.dumps(document, option=options).decode()) + "\n"


def render_drift_text(report: DriftReport, *, color: bool, show_values: bool) -> str:
    """The report for a terminal or a CI log, in the manner of a plan."""
    paint = Paint(color)
    if not report.has_drift:
        return drift_summary_line(report) + "\n" + _foreign_lines(report, show_values)
    title = (f"Drift in workspace {printable(report.workspace)} ({printable(report.version)}): "
             f"{drift_title(report)}")
    lines = [paint(title, BOLD),
             f"Markers: {paint('+', GREEN)} added on the server, {paint('~', YELLOW)} changed "
             f"there, {paint('-', RED)} removed there."
             + ("" if show_values else " Values are masked (--show-values shows them).")]
    for profile in report.profiles:
        if profile.is_drift:
            lines.append("")
            lines.extend(_profile_lines(profile, paint, show_values=show_values))
    lines.append("")
    lines.append(paint(drift_summary_line(report), BOLD))
    return "\n".join(lines) + "\n" + _foreign_lines(report, show_values)


def _foreign_lines(report: DriftReport, show_values: bool) -> str:
    """What others wrote where they may (owned and ignored channels): kept, recorded, not
    drift; shown once, since the state records it from now on."""
    lines = [f"{PROFILE_INDENT}{printable(profile.distinct_id)}: "
             f"{change.action} {describe_change(change, show_values=show_values)}"
             for profile in report.profiles for change in profile.foreign]
    if not lines:
        return ""
    return ("Unmanaged: written by others where they may write (kept; not drift):\n"
            + "\n".join(lines) + "\n")


def _profile_lines(profile: ProfileDrift, paint: Paint, *, show_values: bool) -> list[str]:
    marker = profile.action
    lines = [f"{PROFILE_INDENT}{paint(marker, MARKER_COLORS[marker])} "
             f"{paint(printable(profile.distinct_id), BOLD)}{PROFILE_NOTES[marker]}"]
    for change in profile.changes:
        action = change.action
        lines.append(f"{LINE_INDENT}{paint(action, MARKER_COLORS[action])} "
                     f"{describe_change(change, show_values=show_values)}")
    for key, before, after in profile.unmanaged:
        action = unmanaged_action(before, after)
        lines.append(f"{LINE_INDENT}{paint(action, MARKER_COLORS[action])} "
                     f"{describe_unmanaged(key, before, after, show_values=show_values)}")
    return lines
