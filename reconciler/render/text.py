"""The plan as text for a terminal or a CI log, in the manner of `terraform plan`.

    Reconciler plan for workspace FYXXXXXXXX (live)
    ...
      ~ u-1001
          # PATCH channel
          + email: a•••@example.com
          ~ sms: +91•••••0000 -> +91•••••1111
          # delete channels [push] (Option 1)
          - push: fcm_token:ab…f3

      ~ u-1002
          # delete tokens push (Option 2)
          ~ push: apns_token:de…f9 (deleted, then re-added with new fields)
          # re-add tokens push (after their delete)
          ~ push: apns_token:de…f9: status 1 -> 0

    Plan: 1 to add, 2 to change, 1 to remove, in 4 calls across 2 profiles.

Colors (green/yellow/red markers, bold ids) only when asked; the caller decides from the
terminal, `NO_COLOR` and `--no-color`. Values are masked unless `show_values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from reconciler.mask import display_token, mask, mask_token
from reconciler.model import Token
from reconciler.plan import Call, Change, Plan, Summary
from reconciler.render.common import (
    BOLD,
    DIM,
    GREEN,
    MARKER_COLORS,
    RED,
    YELLOW,
    Paint,
    describe_call,
    describe_entry,
    group_by_profile,
    leaves_management,
    plural,
    printable,
    profile_action,
    summary_text,
)

PROFILE_INDENT: Final = "  "
LINE_INDENT: Final = "      "


def render_text(plan: Plan, *, color: bool, show_values: bool) -> str:
    """The whole plan as text, ending with a newline."""
    paint = Paint(color)
    body = "\n".join(profile_lines(plan.calls, paint, show_values=show_values))
    return text_around(plan, plan.summary, len(plan.calls), [body], paint,
                       show_values=show_values)


def text_around(plan: Plan, summary: Summary, calls: int, bodies: Sequence[str], paint: Paint,
                *, show_values: bool) -> str:
    """The text of a plan whose calls (`calls` of them, counted in `summary`) are already
    rendered as `bodies` (`profile_lines`, joined): its header, the bodies in order, then
    what follows them. `plan` gives everything else; its own calls are not read, so that a
    plan read and rendered in parts (`reconciler.planview`) is the same text."""
    lines = _header(plan, summary, paint, show_values=show_values)
    lines.extend(body for body in bodies if body)
    for distinct_id in plan.forget:
        lines.append("")
        lines.append(f"{PROFILE_INDENT}{paint('-', MARKER_COLORS['-'])} "
                     f"{paint(printable(distinct_id), BOLD)} (leaves management; it holds no "
                     "channel data, so no call is needed)")
    if plan.warnings:
        lines.append("")
        lines.append(paint("Warnings:", YELLOW + BOLD))
        lines.extend(f"  {paint('!', YELLOW)} {printable(warning)}" for warning in plan.warnings)
    lines.append("")
    lines.append(paint(summary_text(summary, calls), BOLD))
    return "\n".join(lines) + "\n"


def profile_lines(calls: Iterable[Call], paint: Paint, *, show_values: bool) -> list[str]:
    """The lines of each profile that `calls` touch: a blank line, the profile, then each
    call and its changes."""
    # Painted once: a plan of 100,000 profiles has 500,000 changes, each with its marker.
    markers = {action: f"{LINE_INDENT}{paint(action, style)} "
               for action, style in MARKER_COLORS.items()}
    lines: list[str] = []
    for distinct_id, calls_of_profile in group_by_profile(calls):
        marker = profile_action(calls_of_profile)
        title = paint(printable(distinct_id), BOLD)
        if leaves_management(calls_of_profile):
            title += " (leaves management)"
        lines.append("")
        lines.append(f"{PROFILE_INDENT}{paint(marker, MARKER_COLORS[marker])} {title}")
        for call in calls_of_profile:
            lines.append(f"{LINE_INDENT}{paint('# ' + describe_call(call), DIM)}")
            lines += [entry_line(markers, call, change, show_values)
                      for change in call.changes]
    return lines


def entry_line(markers: dict[str, str], call: Call, change: Change, show_values: bool) -> str:
    """`markers[action]` and `describe_entry(call, change)`: the same line, with an entry
    added or removed (most of any plan: 500,000 lines in a first plan of 100,000 profiles)
    written here in one step rather than through four functions."""
    channel, before, after = change
    if before is None:
        marker, value = markers["+"], after
    elif after is None:
        marker, value = markers["-"], before
    else:
        return markers["~"] + describe_entry(call, change, show_values=show_values)
    if isinstance(value, Token):
        if value.integration_id is not None or value.status != 1:
            shown = display_token(value, show_values=show_values)
        else:
            shown = value.token if show_values else mask_token(value.token)
    elif value is None:  # never planned: a change has a side
        return marker + describe_entry(call, change, show_values=show_values)
    else:
        shown = value if show_values else mask(channel, value)
    return f"{marker}{channel}: {shown if shown.isprintable() else printable(shown)}"


def _header(plan: Plan, summary: Summary, paint: Paint, *, show_values: bool) -> list[str]:
    title = (f"Reconciler plan for workspace {printable(plan.workspace)} "
             f"({printable(plan.version)})")
    lines = [paint(title, BOLD), _state_line(plan)]
    if plan.targets:
        lines.append("Targeted profiles only: "
                     + ", ".join(printable(target) for target in plan.targets)
                     + ". Other changes may be pending.")
    if plan.forced:
        lines.append(paint(
            f"FORCED: this plan removes {summary.remove} of "
            f"{plural(plan.recorded_entries, 'recorded channel entry', 'recorded channel entries')}"
            ", more than the safety rail allows; --force let it through.",
            RED + BOLD))
    if summary.has_changes:
        lines.append(f"Markers: {paint('+', GREEN)} add, {paint('~', YELLOW)} change, "
                     f"{paint('-', RED)} remove."
                     + ("" if show_values else " Values are masked (--show-values shows them)."))
    return lines


def _state_line(plan: Plan) -> str:
    if plan.lineage is None:
        return "Computed against a new, empty state."
    return (f"Computed against state lineage {printable(plan.lineage)}, serial {plan.serial} "
            f"({plural(plan.recorded_entries, 'recorded entry', 'recorded entries')}).")

