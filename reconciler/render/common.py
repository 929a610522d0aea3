"""What every human-readable renderer shares: profile grouping, call and change wording.

The text and markdown renderers differ only in layout; the words a reviewer reads for one
call or one change are made here, once, by dispatching on the call type. The terminal
styles, markdown escaping and the cutting of a comment to GitHub's size limit are here too,
shared by the plan and drift renderers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson

from reconciler.drift import DriftReport, DriftSummary
from reconciler.mask import display_pair, display_value, mask_token
from reconciler.model import CHANNEL_ORDER, Token
from reconciler.plan import (
    Call,
    Change,
    CreateProfile,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    Plan,
    ReAddTokens,
    Summary,
)
from reconciler.words import noun as noun
from reconciler.words import plural as plural

OPERATION_TITLES: Final = {
    PatchChannels.operation: "PATCH channel",
    DeleteTokens.operation: "delete tokens (Option 2)",
    DeleteChannels.operation: "delete channels (Option 1)",
    ReAddTokens.operation: "re-add tokens",
}
ALL_INTEGRATIONS: Final = "(all)"  # a token without integration_id is valid for every one
READDED: Final = "(deleted, then re-added with new fields)"

RESET: Final = "\x1b[0m"
BOLD: Final = "\x1b[1m"
DIM: Final = "\x1b[2m"
RED: Final = "\x1b[31m"
GREEN: Final = "\x1b[32m"
YELLOW: Final = "\x1b[33m"
MARKER_COLORS: Final = {"+": GREEN, "~": YELLOW, "-": RED}

# Inside ```diff blocks a change is marked `!`: the marker GitHub's highlighting colors.
DIFF_MARKERS: Final = {"+": "+", "~": "!", "-": "-"}
_MARKDOWN_PUNCTUATION: Final = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&])")

TIMES: Final = "\u00d7"  # the multiplication sign of `push\u00d72`, escaped for ruff
NO_CHANGES: Final = "No changes. The recorded state matches the configuration."
NOT_MANAGED: Final = "(not managed by reconciler)"


def printable(text: str, *, keep: str = "") -> str:
    """`text` with unprintable characters escaped (`\\x1b`, `\\u202e`), except those in `keep`.

    A crafted distinct_id or value could otherwise move the cursor or recolor a terminal,
    reorder a line with a bidi control, or break a markdown block with a newline. Every text
    output applies it to what it did not write itself (ids, values, server messages, the lock
    holder, error messages); `keep="\\n"` keeps the line breaks of a multi-line message.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char in keep else ascii(char)[1:-1]
                   for char in text)


def printable_json(document: str) -> str:
    """JSON text with every unprintable character inside its strings written as `\\uXXXX`.

    JSON itself escapes only the C0 controls; DEL, C1 controls, bidi controls (`\\u202e`) and
    line separators would reach a terminal raw. Escaped, the document stays valid JSON that
    decodes to exactly the same values, so machines read the full data and a person who
    prints it sees no control character. Raw newlines outside strings (indentation) stay.
    """
    lines = document.split("\n")
    if all(line.isprintable() for line in lines):
        return document
    return "\n".join(line if line.isprintable() else "".join(
        char if char.isprintable() else _json_escape(char) for char in line) for line in lines)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: a UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def group_by_profile(calls: Iterable[Call]) -> list[tuple[str, list[Call]]]:
    """Calls grouped per distinct_id, profiles in the order they first appear in the plan."""
    groups: dict[str, list[Call]] = {}
    for call in calls:
        group = groups.get(call.distinct_id)
        if group is None:  # not `setdefault`, which builds a list for every call
            groups[call.distinct_id] = [call]
        else:
            group.append(call)
    return list(groups.items())


def profile_action(calls: Iterable[Call]) -> str:
    """The marker of a profile: `+` or `-` when every change agrees, else `~`.

    A profile leaving management is always `-`.
    """
    actions: set[str] = set()
    for call in calls:
        if isinstance(call, DeleteChannels) and call.forget:
            return "-"
        actions.update([change.action for change in call.changes])
    return actions.pop() if len(actions) == 1 else "~"


def leaves_management(calls: Iterable[Call]) -> bool:
    return any(isinstance(call, DeleteChannels) and call.forget for call in calls)


def describe_call(call: Call) -> str:
    """What a call does, in the words of the API: `delete tokens push, inapp (Option 2)`."""
    if isinstance(call, ReAddTokens):  # before PatchChannels: a re-add is a PATCH
        return f"re-add tokens {_token_counts(call)} (after their delete)"
    if isinstance(call, PatchChannels):
        return "PATCH channel"
    if isinstance(call, DeleteTokens):
        return f"delete tokens {_token_counts(call)} (Option 2)"
    if isinstance(call, DeleteChannels):
        return f"delete channels [{', '.join(call.channels())}] (Option 1)"
    if isinstance(call, CreateProfile):
        return "create profile"
    raise TypeError(f"no description for call type {type(call).__name__}")


def _token_counts(call: Call) -> str:
    """`push` and `inapp`, each with its count (`TIMES`) when above one, in channel order."""
    counts: dict[str, int] = {}
    for change in call.changes:
        counts[change.channel] = counts.get(change.channel, 0) + 1
    # web push (a removal `remove:` lists) after the documented channels
    names = sorted(counts, key=lambda name: CHANNEL_ORDER.get(name, len(CHANNEL_ORDER)))
    return ", ".join(f"{name}{TIMES}{counts[name]}" if counts[name] > 1 else name
                     for name in names)


def describe_entry(call: Call, change: Change, *, show_values: bool) -> str:
    """One change as a line of `call` (without the marker).

    A token whose fields change is shown twice: in the Option 2 delete as a delete that will
    be re-added, `push: fcm_token:ab…f3 (deleted, then re-added with new fields)`, and in the
    re-add with what changes, `push: fcm_token:ab…f3: status 1 -> 0`.
    """
    before, after = change.before, change.after
    if before is None or after is None:  # an entry added or removed: most of any plan
        return describe_change(change, show_values=show_values)
    if isinstance(before, Token) and isinstance(after, Token) and before.token == after.token:
        token = before.token if show_values else mask_token(before.token)
        if isinstance(call, DeleteTokens):
            return f"{change.channel}: {printable(token)} {READDED}"
        if isinstance(call, ReAddTokens):
            return f"{change.channel}: {printable(token)}: {printable(_fields(before, after))}"
    return describe_change(change, show_values=show_values)


def _fields(before: Token, after: Token) -> str:
    """`integration (all) -> I2, status 1 -> 0`: the fields of a token that change."""
    parts = []
    if before.integration_id != after.integration_id:
        parts.append(f"integration {_integration(before)} -> {_integration(after)}")
    if before.status != after.status:
        parts.append(f"status {before.status} -> {after.status}")
    return ", ".join(parts) or "unchanged"


def _integration(token: Token) -> str:
    return ALL_INTEGRATIONS if token.integration_id is None else token.integration_id


def describe_change(change: Change, *, show_values: bool) -> str:
    """`email: a•••@example.com`, `sms: +91•••••0000 -> +91•••••1111` (without the marker);
    `email: u•••@example.com#3fa1 -> u•••@example.com#9c02` when both sides mask alike."""
    channel, before, after = change
    if before is None and after is not None:
        shown = display_value(channel, after, show_values=show_values)
    elif after is None and before is not None:
        shown = display_value(channel, before, show_values=show_values)
    elif before is not None and after is not None:
        # Two values that mask alike carry a fingerprint each (`u•••@example.com#3fa1`).
        shown = " -> ".join(display_pair(channel, before, after, show_values=show_values))
    else:
        shown = "(nothing)"
    return f"{channel}: {printable(shown)}"


def describe_counts(add: int, change: int, remove: int) -> str:
    """`1 to add, 2 to remove`: only the non-zero parts."""
    parts = [f"{count} to {verb}" for count, verb in
             ((add, "add"), (change, "change"), (remove, "remove")) if count]
    return ", ".join(parts) or "no changes"


def summary_line(plan: Plan) -> str:
    """`Plan: 3 to add, 1 to change, 4 to remove, in 5 calls across 3 profiles.`"""
    return summary_text(plan.summary, len(plan.calls))


def summary_text(summary: Summary, calls: int) -> str:
    """`summary_line` of a plan with `calls` calls, counted in `summary`."""
    if not summary.has_changes:
        return NO_CHANGES
    line = (f"Plan: {summary.add} to add, {summary.change} to change, {summary.remove} to "
            f"remove, in {plural(calls, 'call')} across {plural(summary.profiles, 'profile')}")
    if summary.forget:
        verb = "leaves" if summary.forget == 1 else "leave"
        line += (f"; {plural(summary.forget, 'profile')} with no channel data "
                 f"{verb} the state without a call")
    return line + "."


class Paint:
    """Wraps text in an ANSI style, or leaves it alone when color is off."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if self.enabled else text


def inline_markdown(text: str) -> str:
    """`text` as literal inline markdown, safe in a table cell: punctuation backslashed."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", printable(text))


Section = tuple[str, int]
"""One folded markdown section and the number of changes it shows."""

CutNote = Callable[[int, int, int], str]
"""(profiles left out, changes left out, limit) -> the note that says so."""


def fit_sections(head: str, sections: Iterable[Section], *, profiles: int, changes: int,
                 limit: int, note: CutNote) -> str:
    """`head` and as many `sections` as fit in `limit` characters, then `note` if any were cut.

    `sections` is consumed lazily and no further than the first that does not fit, so a
    100,000-profile document costs little more than its shown part. `profiles` and `changes`
    are the totals, from which what was left out is counted. Ends with one newline.
    """
    note_room = len(note(10**15, 10**15, limit))
    if len(head) + note_room > limit:
        raise ValueError(f"a markdown limit of {limit} characters cannot hold the summary")
    parts = [head]
    size = len(head)
    shown_profiles = shown_changes = 0
    for section, count in sections:
        if size + len(section) + note_room > limit:
            break
        parts.append(section)
        size += len(section)
        shown_profiles += 1
        shown_changes += count
    if shown_profiles < profiles:
        parts.append(note(profiles - shown_profiles, changes - shown_changes, limit))
    return "".join(parts).rstrip("\n") + "\n"


def cut_note(profiles: int, changes: int, limit: int, see_all: str) -> str:
    """`> [!NOTE]` saying how much was left out to stay under `limit`; `see_all` says how to
    see everything."""
    return (f"> [!NOTE]\n> **{profiles:,} more {noun(profiles, 'profile')} ({changes:,} "
            f"{noun(changes, 'change')}) left out** to keep this comment under {limit:,} "
            f"characters. {see_all}\n")


def drift_title(report: DriftReport) -> str:
    """`2 of 5 profiles changed outside reconciler` (no workspace: each format places it)."""
    return (f"{report.summary.profiles} of {plural(report.checked, 'profile')} changed "
            "outside reconciler")


def no_drift(report: DriftReport) -> str:
    if report.checked == 0:
        return "No drift: no profile was read."
    return ("No drift: the server matches the recorded state for all "
            f"{plural(report.checked, 'profile')}.")


def drift_counts(summary: DriftSummary) -> str:
    """`1 added, 2 changed, 3 removed on the server; 1 unmanaged key changed`."""
    entries = [f"{count} {verb}" for count, verb in ((summary.added, "added"),
               (summary.changed, "changed"), (summary.removed, "removed")) if count]
    parts = [", ".join(entries) + " on the server"] if entries else []
    if summary.unmanaged:
        parts.append(f"{plural(summary.unmanaged, 'unmanaged key')} changed")
    return "; ".join(parts) or "no channel data changed"


def drift_summary_line(report: DriftReport) -> str:
    """`Drift in 2 profiles (1 deleted on the server): 1 added, 3 removed on the server.`"""
    summary = report.summary
    if not report.has_drift:
        return no_drift(report)
    whole = [f"{summary.missing} deleted on the server" if summary.missing else "",
             f"{summary.appeared} back on it" if summary.appeared else ""]
    extra = ", ".join(part for part in whole if part)
    return (f"Drift in {plural(summary.profiles, 'profile')}"
            + (f" ({extra})" if extra else "") + f": {drift_counts(summary)}.")


def unmanaged_action(before: Any, after: Any) -> str:
    if before is None:
        return "+"
    if after is None:
        return "-"
    return "~"


def describe_unmanaged(key: str, before: Any, after: Any, *, show_values: bool) -> str:
    """`webpush: (not managed by reconciler)`; with `show_values`, the raw JSON as well."""
    if not show_values:
        return f"{printable(key)}: {NOT_MANAGED}"
    shown = " -> ".join(_raw(value) for value in (before, after) if value is not None)
    return f"{printable(key)}: {printable(shown)} {NOT_MANAGED}"


def _raw(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
