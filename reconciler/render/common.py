"""What every human-readable renderer shares: profile grouping, call and change wording.

The text and markdown renderers differ only in layout; the words a reviewer reads for one
call or one change are made here, once, by dispatching on the call type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from reconciler.mask import display_value
from reconciler.model import CHANNEL_ORDER
from reconciler.plan import Call, Change, DeleteChannels, DeleteTokens, PatchChannels, Plan

OPERATION_TITLES: Final = {
    PatchChannels.operation: "PATCH channel",
    DeleteTokens.operation: "delete tokens (Option 2)",
    DeleteChannels.operation: "delete channels (Option 1)",
}

TIMES: Final = "\u00d7"  # the multiplication sign of `push\u00d72`, escaped for ruff
NO_CHANGES: Final = "No changes. The recorded state matches the configuration."


def printable(text: str) -> str:
    """`text` with unprintable characters escaped (`\\x1b`, `\\u202e`).

    A crafted distinct_id or value could otherwise move the cursor or recolor a terminal,
    reorder a line with a bidi control, or break a markdown block with a newline.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def group_by_profile(calls: Iterable[Call]) -> list[tuple[str, list[Call]]]:
    """Calls grouped per distinct_id, profiles in the order they first appear in the plan."""
    groups: dict[str, list[Call]] = {}
    for call in calls:
        groups.setdefault(call.distinct_id, []).append(call)
    return list(groups.items())


def profile_action(calls: Iterable[Call]) -> str:
    """The marker of a profile: `+` or `-` when every change agrees, else `~`.

    A profile leaving management is always `-`.
    """
    actions: set[str] = set()
    for call in calls:
        if isinstance(call, DeleteChannels) and call.forget:
            return "-"
        actions.update(change.action for change in call.changes)
    return actions.pop() if len(actions) == 1 else "~"


def leaves_management(calls: Iterable[Call]) -> bool:
    return any(isinstance(call, DeleteChannels) and call.forget for call in calls)


def describe_call(call: Call) -> str:
    """What a call does, in the words of the API: `delete tokens push, inapp (Option 2)`."""
    if isinstance(call, PatchChannels):
        return "PATCH channel"
    if isinstance(call, DeleteTokens):
        counts: dict[str, int] = {}
        for change in call.changes:
            counts[change.channel] = counts.get(change.channel, 0) + 1
        names = sorted(counts, key=CHANNEL_ORDER.__getitem__)
        listed = ", ".join(f"{name}{TIMES}{counts[name]}" if counts[name] > 1 else name
                           for name in names)
        return f"delete tokens {listed} (Option 2)"
    if isinstance(call, DeleteChannels):
        return f"delete channels [{', '.join(call.channels())}] (Option 1)"
    raise TypeError(f"no description for call type {type(call).__name__}")


def describe_change(change: Change, *, show_values: bool) -> str:
    """`email: a•••@example.com`, `sms: +91•••••0000 -> +91•••••1111` (without the marker)."""
    before, after = change.before, change.after
    if before is None and after is not None:
        shown = display_value(change.channel, after, show_values=show_values)
    elif after is None and before is not None:
        shown = display_value(change.channel, before, show_values=show_values)
    elif before is not None and after is not None:
        shown = (f"{display_value(change.channel, before, show_values=show_values)} -> "
                 f"{display_value(change.channel, after, show_values=show_values)}")
    else:
        shown = "(nothing)"
    return f"{change.channel}: {printable(shown)}"


def describe_counts(add: int, change: int, remove: int) -> str:
    """`1 to add, 2 to remove`: only the non-zero parts."""
    parts = [f"{count} to {verb}" for count, verb in
             ((add, "add"), (change, "change"), (remove, "remove")) if count]
    return ", ".join(parts) or "no changes"


def summary_line(plan: Plan) -> str:
    """`Plan: 3 to add, 1 to change, 4 to remove, in 5 calls across 3 profiles.`"""
    summary = plan.summary
    if not summary.has_changes:
        return NO_CHANGES
    calls = len(plan.calls)
    return (f"Plan: {summary.add} to add, {summary.change} to change, {summary.remove} to "
            f"remove, in {_plural(calls, 'call')} across {_plural(summary.profiles, 'profile')}.")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
