"""Reading the audit ledger for people: `reconciler audit [--profile] [--since] [--format]`.

Records come from `verify.ChainCheck`, which judges the chain in the same pass; this module
only filters and renders them, one record at a time, so a ledger of millions of records is
never held whole.

- `text`: one summary line per record; with a profile, its history as a story (`history`):
  per record, when, who, which operation, what the server answered, and what it changed in
  the profile's channel data, entry by entry, masked as plans mask them unless `show_values`.
- `json`: JSON Lines, one object per record with the fields of `FIELDS` first, in that
  order, always present (null when a record lacks one), then any field a later version of
  the ledger adds.
- `csv`: a header of `FIELDS`, then one row per record.
In every format, the personal values of requests and channel data (emails, phone numbers,
tokens) are masked as plans mask them, unless `show_values`: the export of full values is a
deliberate `--show-values`.

A distinct_id, value or server `_message` may hold terminal controls (`\\x1b[2J`, `\\u202e`,
CR, BEL, NUL). None reaches the output raw: text escapes them (`printable`, after folding
whitespace runs into one space); CSV escapes them too but keeps newlines and tabs, which
its quoting carries; JSON writes them as `\\uXXXX` (`printable_json`), which decodes to
the exact recorded value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import orjson

from reconciler.audit.keys import ProfileKeys, keys_path
from reconciler.audit.verify import ChainCheck
from reconciler.converge import Outcome
from reconciler.drift import compare
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.mask import mask_channel_object, mask_message, mask_request
from reconciler.model import ChannelData
from reconciler.render.common import (
    describe_change,
    describe_unmanaged,
    plural,
    printable,
    printable_json,
    unmanaged_action,
)

Format: TypeAlias = Literal["text", "json", "csv"]
FORMATS: Final = ("text", "json", "csv")

FIELDS: Final = (
    "seq", "time", "actor", "commit", "pipeline", "plan_id", "workspace", "version",
    "distinct_id", "operation", "method", "path", "request", "request_id", "status", "outcome",
    "message", "attempts", "settles", "found", "forced", "before", "after", "prev", "hash",
    "erased",
)
"""The fields of `audit --format json` and the columns of `--format csv`, in order; README.md
documents each. A field may be added; none is renamed or removed."""
CSV_COLUMNS: Final = FIELDS

_JSON_COLUMNS: Final = frozenset({"request", "settles", "before", "after"})
_CSV_KEEP: Final = "\n\t"  # carried by CSV's quoting, and harmless on a terminal
_INDENT: Final = "  "
_SHORT_COMMIT: Final = 12
_UNREADABLE: Final = (AttributeError, KeyError, TypeError, ValueError)
ERASED: Final = "[values erased]"


def query(path: Path, *, profile: str | None = None, since: datetime | None = None,
          encryption: Encryption = NO_ENCRYPTION) -> Iterator[dict[str, Any]]:
    """The records of one profile and/or from `since` on (a naive `since` is UTC), with
    their sealed values opened."""
    return opened(select(ChainCheck(path).records(), profile=profile, since=since),
                  ProfileKeys(keys_path(path), encryption))


def opened(records: Iterable[dict[str, Any]], keys: ProfileKeys) -> Iterator[dict[str, Any]]:
    """`records` with their sealed values opened with `keys` (the ledger's data keys);
    those of an erased profile come with `erased: true` and no values."""
    keys.refresh()
    return (keys.open_record(record) for record in records)


def select(records: Iterable[dict[str, Any]], *, profile: str | None = None,
           since: datetime | None = None, workspace: str | None = None,
           version: str | None = None) -> Iterator[dict[str, Any]]:
    """`records` of one profile, of one workspace and/or version, and/or from `since` on,
    lazily, in their order."""
    threshold = None if since is None else _as_utc(since)
    for record in records:
        if profile is not None and record.get("distinct_id") != profile:
            continue
        if workspace is not None and record.get("workspace") != workspace:
            continue
        if version is not None and record.get("version") != version:
            continue
        if threshold is not None:
            when = _parse_time(record.get("time"))
            if when is None or when < threshold:
                continue
        yield record


def render_records(records: Iterable[Mapping[str, Any]], fmt: Format, *,
                   profile: str | None = None, show_values: bool = False) -> Iterator[str]:
    """The records as text; each string yielded is one whole unit ending in a newline.

    `profile`: the records are that profile's, and `text` tells its history.
    """
    shown = records if show_values else (masked(record) for record in records)
    if fmt == "text":
        if profile is not None:
            return history(records, profile, show_values=show_values)
        return (_text_line(record) for record in shown)
    if fmt == "json":
        return (json_line(record) for record in shown)
    if fmt == "csv":
        return _csv_rows(shown)
    raise ValueError(f"unknown audit format {fmt!r}; expected one of {', '.join(FORMATS)}")


def masked(record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` with the personal values of its request and channel data masked, as plans
    mask them (`--show-values` shows them)."""
    message = record.get("message")
    return {**record, "request": mask_request(record.get("request")),
            "message": mask_message(message, record.get("request") or {
                "channel": record.get("before") or {}}) if isinstance(message, str)
            else message,
            "before": mask_channel_object(record.get("before")),
            "after": mask_channel_object(record.get("after"))}


def json_line(record: Mapping[str, Any]) -> str:
    """One record as a line of JSON Lines: `FIELDS` first, then fields added later."""
    document = {name: record.get(name) for name in FIELDS}
    document.update((name, value) for name, value in record.items() if name not in document)
    return printable_json(orjson.dumps(document).decode()) + "\n"


def _text_line(record: Mapping[str, Any]) -> str:
    fields = [
        record.get("time"),
        record.get("actor"),
        f"{_one_line(record.get('workspace'))}/{_one_line(record.get('version'))}",
        record.get("distinct_id"),
        record.get("operation"),
        record.get("status"),
        f"attempts={_one_line(record.get('attempts'))}",
        ERASED if record.get("erased") else record.get("message"),
    ]
    line = "  ".join(_one_line(value) for value in fields)
    if record.get("forced"):
        line += "  [forced]"
    return line + "\n"


def history(records: Iterable[Mapping[str, Any]], distinct_id: str, *,
            show_values: bool) -> Iterator[str]:
    """A profile's records as a story, oldest first: a paragraph per record, then a count.

    A paragraph says when, `#seq`, the operation (method and path), the run (actor, plan,
    workspace/version, commit, pipeline); what the server answered; which writes a read-back
    settles and what it found; then each channel entry `before` and `after` differ by:

        2024-05-01T09:00:00.000Z  #1  patch_channel (PATCH /profiles/u-1/channel), in a …
          outcome ok, status 200, attempt 1: Updated
          + email: a•••@example.com
    """
    note = "" if show_values else " Values are masked (--show-values shows them)."
    yield f"History of profile {_one_line(distinct_id)}, oldest first.{note}\n"
    count = 0
    # request_id -> seq of the writes of unknown outcome not yet settled: a read-back names
    # them by their `#seq`. Only the unsettled are kept, so memory stays small.
    unsettled: dict[str, Any] = {}
    for record in records:
        count += 1
        told = record if show_values else {**record, "message": masked(record)["message"]}
        yield "\n" + "".join(line + "\n" for line in _story(told, unsettled,
                                                             show_values=show_values))
        request_id, settles = record.get("request_id"), record.get("settles")
        if isinstance(request_id, str) and record.get("outcome") == Outcome.UNKNOWN.value:
            unsettled[request_id] = record.get("seq")
        for settled in settles if isinstance(settles, list) else ():
            if isinstance(settled, str):
                unsettled.pop(settled, None)
    yield ("\n" + (f"{plural(count, 'record')}." if count else
                   "No record of this profile (is it the right --state-dir?).") + "\n")


def _story(record: Mapping[str, Any], writes: Mapping[str, Any], *,
           show_values: bool) -> list[str]:
    context = [f"plan {_one_line(record.get('plan_id'))}",
               f"{_one_line(record.get('workspace'))}/{_one_line(record.get('version'))}"]
    commit = record.get("commit")
    if isinstance(commit, str) and commit:
        context.append(f"commit {_one_line(commit[:_SHORT_COMMIT])}")
    if record.get("pipeline"):
        context.append(f"pipeline {_one_line(record.get('pipeline'))}")
    what = _one_line(record.get("operation"))
    if record.get("method") or record.get("path"):
        what += f" ({_one_line(record.get('method'))} {_one_line(record.get('path'))})"
    head = (f"{_one_line(record.get('time'))}  #{_one_line(record.get('seq'))}  {what}, in a "
            f"run by {_one_line(record.get('actor'))} ({', '.join(context)})")
    if record.get("forced"):
        head += "  [forced]"
    lines = [head, _INDENT + _answer(record)]
    settles = record.get("settles")
    if isinstance(settles, list) and settles:
        found = record.get("found")
        named = ", ".join(_write_name(request_id, writes) for request_id in settles)
        lines.append(f"{_INDENT}settles {named}"
                     + (f": {_one_line(str(found).replace('_', ' '))}" if found else ""))
    if record.get("erased"):
        lines.append(f"{_INDENT}channel data {ERASED}")
    else:
        lines.extend(_INDENT + line for line in
                     _what_changed(record.get("before"), record.get("after"),
                                   show_values=show_values))
    return lines


def _write_name(request_id: Any, writes: Mapping[str, Any]) -> str:
    """`#12`, the write's record in this history; else the start of its `request_id`."""
    # A hand-edited `settles` may hold anything; only a str can be a key.
    if isinstance(request_id, str) and request_id in writes:
        return f"#{_one_line(writes[request_id])}"
    return f"request {_one_line(str(request_id)[:_SHORT_COMMIT])}"


def _answer(record: Mapping[str, Any]) -> str:
    """`outcome ok, status 200, attempt 1: Updated`: what the server said, as recorded."""
    parts = []
    outcome = record.get("outcome")
    if outcome is not None:
        parts.append(f"outcome {_one_line(outcome)}")
    status = record.get("status")
    parts.append("no HTTP status" if status is None else f"status {_one_line(status)}")
    attempts = record.get("attempts")
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0:
        parts.append(f"attempt {attempts}")
    message = ERASED if record.get("erased") else record.get("message")
    text = ", ".join(parts)
    return f"{text}: {_one_line(message)}" if message else text


def _what_changed(before: Any, after: Any, *, show_values: bool) -> list[str]:
    """The change from `before` to `after` (API `channel` objects), one line per entry."""
    if before is None and after is None:
        return ["channel data before and after it not recorded"]
    if before is None:
        return ["channel data before it not recorded"]
    if after is None:
        return ["channel data after it not recorded"]
    try:
        drift = compare("", ChannelData.from_json(before), ChannelData.from_json(after))
        if drift is None:
            return ["no change to the channel data"]
        lines = [f"{change.action} {describe_change(change, show_values=show_values)}"
                 for change in drift.changes]
        lines.extend(f"{unmanaged_action(old, new)} "
                     f"{describe_unmanaged(key, old, new, show_values=show_values)}"
                     for key, old, new in drift.unmanaged)
    except _UNREADABLE:  # a hand-edited record: verify names it, the report goes on
        return ["channel data not readable as Fyno channel objects"]
    return lines


def _one_line(value: Any) -> str:
    """`-` for a missing value; no newline may split the line, no control character shows."""
    if value is None or value == "":
        return "-"
    return printable(" ".join(str(value).split()))


def _csv_rows(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for record in records:
        writer.writerow([_csv_cell(column, record.get(column)) for column in CSV_COLUMNS])
        yield flush()


def _csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in _JSON_COLUMNS:
        return printable_json(orjson.dumps(value).decode())
    if isinstance(value, bool):
        return "true" if value else "false"
    return printable(str(value), keep=_CSV_KEEP)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None
