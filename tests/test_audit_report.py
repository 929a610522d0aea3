"""`reconciler audit`'s renderings: JSON Lines with documented fields, a profile's history."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.audit import AuditEntry, AuditLedger, query, render_records
from reconciler.audit.report import FIELDS, history, json_line, select

README = Path(__file__).resolve().parent.parent / "README.md"
HOSTILE = "\x1b[2J\u202e\r\x07\x00\x9b\u2028\x7f"


def entry(distinct_id: str = "u-1", **changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "actor": "alice", "commit": "c" * 40, "plan_id": "plan-1", "workspace": "FYTEST",
        "version": "live", "distinct_id": distinct_id, "operation": "patch_channel",
        "request": {"channel": {"email": "alice@example.com"}}, "status": 200,
        "message": "Updated", "attempts": 1, "before": {},
        "after": {"email": "alice@example.com"}, "time": "2024-05-01T09:00:00.000Z",
    }
    fields.update(changes)
    return AuditEntry(**fields)


def write(path: Path, *entries: AuditEntry) -> Path:
    with AuditLedger(path) as ledger:
        for item in entries:
            ledger.append(item)
    return path


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.jsonl"


def story(path: Path, profile: str = "u-1", *, show_values: bool = False) -> str:
    return "".join(render_records(query(path, profile=profile), "text", profile=profile,
                                  show_values=show_values))


def paragraphs(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.split("\n\n")]


# --- JSON Lines ---------------------------------------------------------------------------

def test_json_line_has_every_documented_field_in_order(path: Path) -> None:
    write(path, entry(), entry("u-2", commit=None))

    lines = "".join(render_records(query(path), "json", show_values=True)).split("\n")

    assert lines[-1] == ""
    records = [orjson.loads(line) for line in lines[:-1]]
    assert [tuple(record) for record in records] == [FIELDS, FIELDS]
    assert records[1]["commit"] is None
    assert records[0]["request"] == {"channel": {"email": "alice@example.com"}}


def test_json_line_gives_null_for_a_field_an_older_record_lacks() -> None:
    record = orjson.loads(json_line({"seq": 1, "operation": "patch_channel"}))

    assert tuple(record) == FIELDS
    assert (record["seq"], record["forced"], record["hash"]) == (1, None, None)


def test_json_line_keeps_fields_added_later_after_the_documented_ones() -> None:
    record = orjson.loads(json_line({"zone": "eu", "seq": 4, "outcome": "unknown",
                                     "retried_by": "u"}))

    assert tuple(record) == (*FIELDS, "zone", "retried_by")
    assert (record["zone"], record["outcome"], record["retried_by"]) == ("eu", "unknown", "u")


def test_json_line_is_one_line_whatever_the_values_hold() -> None:
    record = {"seq": 1, "message": f"bad\n{HOSTILE}", "after": {"sms": HOSTILE}}

    line = json_line(record)

    assert line.count("\n") == 1 and line.endswith("\n")
    assert all(char.isprintable() for char in line[:-1])
    assert orjson.loads(line)["message"] == f"bad\n{HOSTILE}"
    assert orjson.loads(line)["after"] == {"sms": HOSTILE}


def test_every_field_a_record_can_hold_is_a_documented_field() -> None:
    # A field added to AuditEntry must be added to FIELDS (and README.md) too.
    filled: dict[str, Any] = {field.name: "x" for field in dataclasses.fields(AuditEntry)}

    # the chain's fields, and `erased`, which reading adds to a record whose key is gone
    written = {*AuditEntry(**filled).to_json(), "seq", "prev", "hash", "erased"}

    assert written == set(FIELDS)


def test_readme_documents_exactly_the_json_fields_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("| field | type | meaning |", 1)[1].split("\n\n", 1)[0]

    names = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)

    assert tuple(names) == FIELDS


# --- a profile's history ------------------------------------------------------------------

def test_history_is_the_profiles_records_in_ledger_order(path: Path) -> None:
    write(path,
          entry(time="2024-05-01T09:00:00.000Z"),
          entry("u-2", time="2024-05-01T09:30:00.000Z"),
          entry(time="2024-05-02T09:00:00.000Z", operation="delete_channels",
                request={"channel": ["email"]}, message="Deleted",
                before={"email": "alice@example.com"}, after={}))

    blocks = paragraphs(story(path))

    assert blocks[0] == ["History of profile u-1, oldest first. Values are masked "
                         "(--show-values shows them)."]
    assert blocks[1] == [
        "2024-05-01T09:00:00.000Z  #1  patch_channel, in a run by alice "
        "(plan plan-1, FYTEST/live, commit cccccccccccc)",
        "  status 200, attempt 1: Updated",
        "  + email: a•••@example.com",
    ]
    assert blocks[2] == [
        "2024-05-02T09:00:00.000Z  #3  delete_channels, in a run by alice "
        "(plan plan-1, FYTEST/live, commit cccccccccccc)",
        "  status 200, attempt 1: Deleted",
        "  - email: a•••@example.com",
    ]
    assert blocks[3] == ["2 records."]


def test_history_shows_every_channel_entry_that_changed(path: Path) -> None:
    before = {"sms": "+919879000000", "email": "alice@example.com",
              "push": [{"token": "fcm_token:abcdefgh01", "status": 1},
                       {"token": "fcm_token:abcdefgh02", "status": 1}],
              "webpush": {"endpoint": "https://push.example.com/1"}}
    after = {"sms": "+919879111111", "email": "alice@example.com",
             "push": [{"token": "fcm_token:abcdefgh01", "status": 0},
                      {"token": "fcm_token:zyxwvuts03", "status": 1}]}
    write(path, entry(before=before, after=after))

    lines = paragraphs(story(path))[1][2:]

    assert lines == [
        "  ~ sms: +91•••••0000 -> +91•••••1111",
        "  ~ push: fcm_token:ab…01 -> fcm_token:ab…01 (status 0)",
        "  + push: fcm_token:zy…03",
        "  - push: fcm_token:ab…02",
        "  - webpush: (not managed by reconciler)",
    ]


def test_history_with_show_values_shows_them_in_full(path: Path) -> None:
    write(path, entry(before={"sms": "+919879000000"}, after={"sms": "+919879111111"}))

    text = story(path, show_values=True)

    assert text.startswith("History of profile u-1, oldest first.\n")
    assert "  ~ sms: +919879000000 -> +919879111111\n" in text


@pytest.mark.parametrize(("changes", "said"), [
    ({"status": 400, "message": "Invalid email", "after": {}, "before": {}},
     ["  status 400, attempt 1: Invalid email", "  no change to the channel data"]),
    ({"status": None, "message": "timed out", "attempts": 3, "after": None},
     ["  no HTTP status, attempt 3: timed out", "  channel data after it not recorded"]),
    ({"status": None, "message": "changed outside reconciler", "attempts": 0,
      "operation": "drift", "before": {"email": "alice@example.com"},
      "after": {"email": "mallory@example.com"}},
     ["  no HTTP status: changed outside reconciler",
      "  ~ email: a•••@example.com -> m•••@example.com"]),
    ({"before": None},
     ["  status 200, attempt 1: Updated", "  channel data before it not recorded"]),
    ({"before": {"push": "not a list"}},
     ["  status 200, attempt 1: Updated",
      "  channel data not readable as Fyno channel objects"]),
    ({"after": {"email": 5}},
     ["  status 200, attempt 1: Updated",
      "  channel data not readable as Fyno channel objects"]),
])
def test_history_says_what_the_server_answered_and_what_changed(
        path: Path, changes: dict[str, Any], said: list[str]) -> None:
    write(path, entry(**changes))

    assert paragraphs(story(path))[1][1:] == said


def test_history_shows_an_outcome_when_the_record_has_one() -> None:
    record = {"seq": 7, "time": "t", "actor": "a", "distinct_id": "u-1",
              "operation": "patch_channel", "outcome": "unknown", "status": 503,
              "message": "Service Unavailable", "attempts": 2, "before": {}, "after": None}

    text = "".join(history([record], "u-1", show_values=False))

    assert "\n  outcome unknown, status 503, attempt 2: Service Unavailable\n" in text


def test_history_names_the_request_and_the_write_a_read_back_settles() -> None:
    base = {"time": "t", "actor": "ci", "plan_id": "p", "workspace": "FY1", "version": "live",
            "distinct_id": "u-1", "before": {}}
    write = {**base, "seq": 4, "operation": "patch_channel", "method": "PATCH",
             "path": "/profiles/u-1/channel", "outcome": "unknown", "status": None,
             "message": "no answer", "attempts": 1, "request_id": "a" * 32, "after": None,
             "pipeline": "https://ci.example.com/runs/7"}
    read = {**base, "seq": 5, "operation": "read_back", "method": "GET",
            "path": "/profiles/u-1", "status": 200, "message": "", "attempts": 1,
            "settles": ["a" * 32, "b" * 32], "found": "landed_partly",
            "after": {"email": "alice@example.com"}}

    blocks = paragraphs("".join(history([write, read], "u-1", show_values=False)))

    assert blocks[1] == [
        "t  #4  patch_channel (PATCH /profiles/u-1/channel), in a run by ci (plan p, FY1/live, "
        "pipeline https://ci.example.com/runs/7)",
        "  outcome unknown, no HTTP status, attempt 1: no answer",
        "  channel data after it not recorded",
    ]
    assert blocks[2] == [
        "t  #5  read_back (GET /profiles/u-1), in a run by ci (plan p, FY1/live)",
        "  status 200, attempt 1",
        "  settles #4, request bbbbbbbbbbbb: landed partly",
        "  + email: a•••@example.com",
    ]


def test_history_marks_a_forced_call_and_leaves_out_a_missing_commit(path: Path) -> None:
    write(path, entry(forced=True, commit=None))

    head = paragraphs(story(path))[1][0]

    assert head == ("2024-05-01T09:00:00.000Z  #1  patch_channel, in a run by alice "
                    "(plan plan-1, FYTEST/live)  [forced]")


def test_history_of_a_profile_without_records_says_so() -> None:
    text = "".join(history([], "u-9", show_values=False))

    assert text.endswith("\n\nNo record of this profile (is it the right --state-dir?).\n")


def test_history_escapes_control_characters_everywhere(path: Path) -> None:
    write(path, entry(f"u-{HOSTILE}", actor=f"eve{HOSTILE}", message=f"bad {HOSTILE}",
                      before={"email": f"a{HOSTILE}@example.com"},
                      after={"email": f"b{HOSTILE}@example.com", HOSTILE: 1}))

    for show_values in (False, True):
        text = story(path, f"u-{HOSTILE}", show_values=show_values)
        assert all(char.isprintable() or char == "\n" for char in text), text
        assert "u-\\x1b[2J\\u202e" in text and "eve\\x1b[2J" in text


def test_select_keeps_order_and_is_lazy() -> None:
    seen: list[int] = []

    def records() -> Any:
        for number in range(1, 1_000_000):
            seen.append(number)
            yield {"seq": number, "distinct_id": f"u-{number % 3}"}

    chosen = select(records(), profile="u-1")

    assert [next(chosen)["seq"], next(chosen)["seq"]] == [1, 4]
    assert seen == [1, 2, 3, 4]
