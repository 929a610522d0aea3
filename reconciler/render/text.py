"""The plan as text for a terminal or a CI log, in the manner of `terraform plan`.

    Reconciler plan for workspace FYXXXXXXXX (live)
    ...
      ~ u-1001
          # PATCH channel
          + email: a•••@example.com
          ~ sms: +91•••••0000 -> +91•••••1111
          # delete channels [push] (Option 1)
          - push: fcm_token:ab…f3

    Plan: 1 to add, 1 to change, 1 to remove, in 2 calls across 1 profile.

Colors (green/yellow/red markers, bold ids) only when asked; the caller decides from the
terminal, `NO_COLOR` and `--no-color`. Values are masked unless `show_values`.
"""

from __future__ import annotations

from typing import Final

from reconciler.plan import Plan
from reconciler.render.common import (
    describe_call,
    describe_change,
    group_by_profile,
    leaves_management,
    printable,
    profile_action,
    summary_line,
)

_RESET: Final = "\x1b[0m"
_BOLD: Final = "\x1b[1m"
_DIM: Final = "\x1b[2m"
_RED: Final = "\x1b[31m"
_GREEN: Final = "\x1b[32m"
_YELLOW: Final = "\x1b[33m"
_MARKER_COLORS: Final = {"+": _GREEN, "~": _YELLOW, "-": _RED}

PROFILE_INDENT: Final = "  "
LINE_INDENT: Final = "      "


def render_text(plan: Plan, *, color: bool, show_values: bool) -> str:
    """The whole plan as text, ending with a newline."""
    paint = _Paint(color)
    lines = _header(plan, paint, show_values=show_values)
    for distinct_id, calls in group_by_profile(plan.calls):
        marker = profile_action(calls)
        title = paint(printable(distinct_id), _BOLD)
        if leaves_management(calls):
            title += " (leaves management)"
        lines.append("")
        lines.append(f"{PROFILE_INDENT}{paint(marker, _MARKER_COLORS[marker])} {title}")
        for call in calls:
            lines.append(f"{LINE_INDENT}{paint('# ' + describe_call(call), _DIM)}")
            for change in call.changes:
                action = change.action
                lines.append(f"{LINE_INDENT}{paint(action, _MARKER_COLORS[action])} "
                             f"{describe_change(change, show_values=show_values)}")
    if plan.warnings:
        lines.append("")
        lines.append(paint("Warnings:", _YELLOW + _BOLD))
        lines.extend(f"  {paint('!', _YELLOW)} {printable(warning)}" for warning in plan.warnings)
    lines.append("")
    lines.append(paint(summary_line(plan), _BOLD))
    return "\n".join(lines) + "\n"


def _header(plan: Plan, paint: _Paint, *, show_values: bool) -> list[str]:
    title = (f"Reconciler plan for workspace {printable(plan.workspace)} "
             f"({printable(plan.version)})")
    lines = [paint(title, _BOLD), _state_line(plan)]
    if plan.targets:
        lines.append("Targeted profiles only: "
                     + ", ".join(printable(target) for target in plan.targets)
                     + ". Other changes may be pending.")
    if plan.forced:
        lines.append(paint(
            f"FORCED: this plan removes {plan.deletions} of {plan.recorded_entries} recorded "
            "channel entries, more than the safety rail allows; --force let it through.",
            _RED + _BOLD))
    if plan.summary.has_changes:
        lines.append(f"Markers: {paint('+', _GREEN)} add, {paint('~', _YELLOW)} change, "
                     f"{paint('-', _RED)} remove."
                     + ("" if show_values else " Values are masked (--show-values shows them)."))
    return lines


def _state_line(plan: Plan) -> str:
    if plan.lineage is None:
        return "Computed against a new, empty state."
    return (f"Computed against state lineage {printable(plan.lineage)}, serial {plan.serial} "
            f"({plan.recorded_entries} recorded entries).")


class _Paint:
    """Wraps text in an ANSI style, or leaves it alone when color is off."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        return f"{style}{text}{_RESET}" if self.enabled else text
