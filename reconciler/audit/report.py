"""Reading the audit ledger for people: `reconciler audit [--profile] [--since] [--format]`.

Values are shown in full: the ledger is the audit trail, and whoever may read the file may
read its report. The text format stays a one-line summary per record; `json` and `csv` carry
everything.

A distinct_id, value or server `_message` may hold terminal controls (`\\x1b[2J`, `\\u202e`,
CR, BEL, NUL). None reaches the output raw: text escapes them (`printable`, after folding
whitespace runs into one space); CSV escapes them too but keeps newlines and tabs, which
its quoting carries; JSON writes them as `\\uXXXX` (`printable_json`), which decodes to
the exact recorded value. CSV and text are for people and spreadsheets; JSON is the
faithful export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import orjson

from reconciler.audit.ledger import read_records
from reconciler.render.common import printable, printable_json

Format: TypeAlias = Literal["text", "json", "csv"]
FORMATS: Final = ("text", "json", "csv")

CSV_COLUMNS: Final = (
    "seq", "time", "actor", "commit", "plan_id", "workspace", "version", "distinct_id",
    "operation", "status", "message", "attempts", "forced", "request", "before", "after",
    "prev", "hash",
)
_JSON_COLUMNS: Final = frozenset({"request", "before", "after"})
_CSV_KEEP: Final = "\n\t"  # carried by CSV's quoting, and harmless on a terminal


def query(path: Path, *, profile: str | None = None,
          since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The records of one profile and/or from `since` on (a naive `since` is UTC)."""
    threshold = None if since is None else _as_utc(since)
    for record in read_records(path):
        if profile is not None and record.get("distinct_id") != profile:
            continue
        if threshold is not None:
            when = _parse_time(record.get("time"))
            if when is None or when < threshold:
                continue
        yield record


def render_records(records: Iterable[Mapping[str, Any]], fmt: Format) -> Iterator[str]:
    """The records as text; each string yielded is one whole unit ending in a newline."""
    if fmt == "text":
        return (_text_line(record) for record in records)
    if fmt == "json":
        return (printable_json(orjson.dumps(record).decode()) + "\n" for record in records)
    if fmt == "csv":
        return _csv_rows(records)
    raise ValueError(f"unknown audit format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _text_line(record: Mapping[str, Any]) -> str:
    fields = [
        record.get("time"),
        record.get("actor"),
        f"{_one_line(record.get('workspace'))}/{_one_line(record.get('version'))}",
        record.get("distinct_id"),
        record.get("operation"),
        record.get("status"),
        f"attempts={_one_line(record.get('attempts'))}",
        record.get("message"),
    ]
    line = "  ".join(_one_line(value) for value in fields)
    if record.get("forced"):
        line += "  [forced]"
    return line + "\n"


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
