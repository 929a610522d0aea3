"""The audit ledger: a hash chain that verify checks, safe to append to from threads and
processes, filtered and rendered for `reconciler audit`."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.audit import (
    TORN_LINE_OPERATION,
    AuditContext,
    AuditEntry,
    AuditError,
    AuditLedger,
    git_commit,
    query,
    render_records,
    resolve_actor,
    verify,
)
from reconciler.audit import ledger as ledger_module
from reconciler.audit.keys import PERSONAL
from reconciler.audit.report import CSV_COLUMNS, FIELDS
from reconciler.audit.verify import ChainCheck

ENTRY_FIELDS = ("time", "actor", "commit", "plan_id", "workspace", "version", "distinct_id",
                "operation", "request", "status", "message", "attempts", "before", "after",
                "forced")
# As the ledger line holds a record about a profile: its personal values sealed.
RECORD_FIELDS = (*(name for name in ENTRY_FIELDS if name not in PERSONAL), "sealed", "seq",
                 "prev", "hash")


def make_entry(number: int, **changes: Any) -> AuditEntry:
    channel = {"email": f"user{number}@example.com",
               "push": [{"token": f"fcm_token:{number}", "status": 1}]}
    fields: dict[str, Any] = {
        "actor": "alice", "commit": "c" * 40, "plan_id": "plan-1", "workspace": "FYTEST",
        "version": "live", "distinct_id": f"u-{number}", "operation": "patch_channel",
        "request": {"channel": channel}, "status": 200, "message": "Updated", "attempts": 1,
        "before": {}, "after": channel,
    }
    fields.update(changes)
    return AuditEntry(**fields)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.jsonl"


def write_chain(path: Path, count: int) -> None:
    with AuditLedger(path) as ledger:
        for number in range(1, count + 1):
            ledger.append(make_entry(number))


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def line_record(line: bytes) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(line)
    return record


def with_every_field(record: dict[str, Any]) -> dict[str, Any]:
    """`record` as `audit --format json` gives it: every documented field, null if absent."""
    return {**{name: None for name in FIELDS}, **record}


def expected_hash(record: dict[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --- the chain ----------------------------------------------------------------------------

def test_chain_of_records_verifies(path: Path) -> None:
    write_chain(path, 5)

    result = verify(path)

    records = list(AuditLedger(path).records())
    assert result.ok, result.describe()
    assert (result.count, result.first_bad, result.reason) == (5, None, None)
    assert [record["seq"] for record in records] == [1, 2, 3, 4, 5]
    assert [record["prev"] for record in records] == ["", *(r["hash"] for r in records[:-1])]
    assert result.head == records[-1]["hash"]
    assert result.describe() == f"{path}: 5 records, chain intact, head {result.head}"


def test_record_holds_every_field_and_hashes_its_canonical_json(path: Path) -> None:
    write_chain(path, 1)

    record = line_record(read_lines(path)[0])

    assert sorted(record) == sorted(RECORD_FIELDS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
    assert record["hash"] == expected_hash(record)
    assert b"user1@example.com" not in read_lines(path)[0]
    assert next(query(path))["request"]["channel"]["email"] == "user1@example.com"
    assert record["forced"] is False


def test_missing_ledger_is_an_empty_intact_one(path: Path) -> None:
    assert verify(path).ok
    assert verify(path).count == 0
    assert list(query(path)) == []


@pytest.mark.parametrize("field", RECORD_FIELDS)
@pytest.mark.parametrize("index", [0, 2, 4])
def test_editing_any_field_of_any_record_is_detected(path: Path, field: str, index: int) -> None:
    write_chain(path, 5)
    lines = read_lines(path)
    record = line_record(lines[index])
    record[field] = "tampered" if record[field] != "tampered" else "other"
    lines[index] = orjson.dumps(record) + b"\n"
    write_lines(path, lines)

    result = verify(path)

    assert not result.ok
    assert (result.first_bad, result.reason, result.count) == (index + 1, "edited", index)
    assert result.describe().startswith(f"{path}:{index + 1}: edited: ")


def test_rewritten_record_with_a_recomputed_hash_breaks_the_next_link(path: Path) -> None:
    write_chain(path, 5)
    lines = read_lines(path)
    record = line_record(lines[1])
    record["message"] = "nothing happened here"
    record["hash"] = expected_hash(record)
    lines[1] = orjson.dumps(record) + b"\n"
    write_lines(path, lines)

    result = verify(path)

    assert (result.first_bad, result.reason) == (3, "edited")
    assert "prev" in result.detail


@pytest.mark.parametrize("index", [0, 2, 3])
def test_removing_a_record_is_detected(path: Path, index: int) -> None:
    write_chain(path, 5)
    lines = read_lines(path)
    del lines[index]
    write_lines(path, lines)

    result = verify(path)

    assert (result.first_bad, result.reason, result.count) == (index + 1, "removed", index)
    assert f"record {index + 1} is missing" in result.detail


def test_removing_the_last_records_leaves_a_valid_chain_with_another_head(path: Path) -> None:
    # A hash chain cannot tell a removed tail from a shorter ledger: the head, once published,
    # is what anchors it.
    write_chain(path, 5)
    head = verify(path).head
    write_lines(path, read_lines(path)[:4])

    result = verify(path)

    assert result.ok
    assert result.count == 4
    assert result.head != head


@pytest.mark.parametrize(("first", "second"), [(1, 2), (0, 3), (3, 4)])
def test_swapping_two_records_is_detected(path: Path, first: int, second: int) -> None:
    write_chain(path, 5)
    lines = read_lines(path)
    lines[first], lines[second] = lines[second], lines[first]
    write_lines(path, lines)

    result = verify(path)

    assert (result.first_bad, result.reason, result.count) == (first + 1, "reordered", first)


def test_truncated_last_line_is_detected(path: Path) -> None:
    write_chain(path, 5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])

    result = verify(path)

    assert (result.first_bad, result.reason, result.count) == (5, "truncated", 4)


def test_line_that_is_not_json_is_detected(path: Path) -> None:
    write_chain(path, 5)
    lines = read_lines(path)
    lines[2] = b"garbage\n"
    write_lines(path, lines)

    result = verify(path)

    assert (result.first_bad, result.reason, result.count) == (3, "not_json", 2)


def test_json_that_is_not_a_record_is_detected(path: Path) -> None:
    write_chain(path, 3)
    write_lines(path, [*read_lines(path), b"[1, 2]\n"])

    assert (verify(path).first_bad, verify(path).reason) == (4, "not_record")


def test_record_holding_a_key_twice_is_edited_and_never_handed_on(path: Path) -> None:
    # Its hash vouches for one of the two values; a reader may believe the other.
    write_chain(path, 3)
    lines = read_lines(path)
    lines[1] = lines[1].replace(b'"actor":"alice"', b'"actor":"mallory","actor":"alice"')
    write_lines(path, lines)
    check = ChainCheck(path)

    shown = [record["seq"] for record in check.records()]

    assert shown == [1, 3]
    assert check.result == verify(path)
    assert (check.result.first_bad, check.result.reason) == (2, "edited")
    assert check.result.detail == ('it holds the key "actor" twice in one object (at '
                                   '"/actor"), and its hash vouches for only one of the two '
                                   'values')


def test_gap_followed_by_a_seq_of_another_type_is_judged_at_once(path: Path) -> None:
    # `"x" in range(2, 10**15)` would compare against every number of the range.
    write_chain(path, 2)
    lines = read_lines(path)
    record = line_record(lines[1])
    record["seq"] = 10**15
    record["hash"] = expected_hash(record)
    lines[1] = orjson.dumps(record) + b"\n"
    write_lines(path, [*lines, orjson.dumps({"seq": "x"}) + b"\n"])
    script = ("import sys; from pathlib import Path; from reconciler.audit import verify; "
              "print(verify(Path(sys.argv[1])).describe())")

    # In a process of its own: the scan would hold the GIL, and no thread could time it out.
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, timeout=30, check=True)

    assert done.stdout == (f"{path}:2: removed: record 2 to {10**15 - 1} is missing before "
                           f"this line (record {10**15})\n")


# --- one pass: the records and the verdict ----------------------------------------------

def test_chain_check_yields_every_json_object_and_the_same_verdict_as_verify(
        path: Path) -> None:
    write_chain(path, 4)
    lines = read_lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(path, [*lines[:3], b"garbage\n", b"[1]\n", *lines[3:]])
    check = ChainCheck(path)

    records = list(check.records())

    assert [record["seq"] for record in records] == [1, 3, 2, 4]
    assert check.result == verify(path)
    assert (check.result.first_bad, check.result.reason) == (2, "reordered")


def test_chain_check_reads_lazily_and_has_a_verdict_only_at_the_end(path: Path) -> None:
    write_chain(path, 3)
    check = ChainCheck(path)
    records = check.records()

    assert next(records)["seq"] == 1
    with pytest.raises(RuntimeError, match="once every record was read"):
        _ = check.result
    assert [record["seq"] for record in records] == [2, 3]
    assert check.result.ok and check.result.count == 3


def test_chain_check_of_a_missing_ledger_is_empty_and_intact(path: Path) -> None:
    check = ChainCheck(path)

    assert list(check.records()) == []
    assert check.result.ok and check.result.count == 0


# --- torn lines ---------------------------------------------------------------------------

def test_torn_last_line_is_ended_by_a_marker_on_next_append(path: Path) -> None:
    write_chain(path, 5)
    size = path.stat().st_size
    torn = read_lines(path)[0][:50]
    with path.open("ab") as file:
        file.write(torn)
    assert verify(path).reason == "truncated"

    with AuditLedger(path) as ledger:
        ledger.append(make_entry(6, actor="bob"))

    result = verify(path)
    lines = read_lines(path)
    marker, last = line_record(lines[6]), line_record(lines[7])
    assert result.ok, result.describe()
    assert (result.count, result.repaired) == (7, (6,))
    assert "torn line 6 repaired" in result.describe()
    assert lines[5] == torn + b"\n"
    assert marker["operation"] == TORN_LINE_OPERATION
    assert marker["request"] == {"offset": size, "length": 50,
                                 "sha256": hashlib.sha256(torn).hexdigest()}
    assert (marker["seq"], marker["actor"], marker["distinct_id"]) == (6, "bob", None)
    assert marker["prev"] == line_record(lines[4])["hash"]
    assert (last["seq"], last["prev"], last["distinct_id"]) == (7, marker["hash"], "u-6")


def test_torn_line_that_only_lost_its_newline_is_ended_without_a_marker(path: Path) -> None:
    write_chain(path, 3)
    path.write_bytes(path.read_bytes()[:-1])

    with AuditLedger(path) as ledger:
        ledger.append(make_entry(4))

    assert verify(path).ok
    assert verify(path).count == 4
    assert TORN_LINE_OPERATION not in path.read_text()


def test_torn_file_without_any_whole_line_starts_the_chain_with_the_marker(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b'{"time":"2024-')

    with AuditLedger(path) as ledger:
        ledger.append(make_entry(1))

    result = verify(path)
    assert (result.ok, result.count, result.repaired) == (True, 2, (1,))


def test_editing_a_repaired_torn_line_is_detected(path: Path) -> None:
    write_chain(path, 2)
    with path.open("ab") as file:
        file.write(b'{"time":"2024-01-01')
    with AuditLedger(path) as ledger:
        ledger.append(make_entry(3))
    lines = read_lines(path)
    lines[2] = b'{"time":"2025-01-01\n'
    write_lines(path, lines)

    result = verify(path)

    assert (result.first_bad, result.reason) == (3, "not_json")


def test_append_refuses_a_ledger_whose_last_line_is_not_a_record(path: Path) -> None:
    write_chain(path, 2)
    write_lines(path, [*read_lines(path), b"garbage\n"])
    ledger = AuditLedger(path)

    with pytest.raises(AuditError, match=r"audit\.jsonl:3: the last line is not"):
        ledger.check()
    with pytest.raises(AuditError, match="reconciler audit verify"):
        ledger.append(make_entry(3))
    ledger.close()
    assert len(read_lines(path)) == 3


def test_failed_write_leaves_the_ledger_as_it_was(path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write_chain(path, 2)
    before = path.read_bytes()
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[:20])  # as on a full disk

    ledger = AuditLedger(path)
    ledger.append(make_entry(3))
    monkeypatch.setattr(os, "write", short_write)
    with pytest.raises(AuditError, match="short write"):
        ledger.append(make_entry(4))
    monkeypatch.setattr(os, "write", real_write)
    assert path.read_bytes().startswith(before)
    assert len(read_lines(path)) == 3
    ledger.append(make_entry(4))
    ledger.close()

    assert verify(path).ok
    assert verify(path).count == 4


# --- appending ----------------------------------------------------------------------------

def test_concurrent_appends_from_8_threads_make_one_valid_chain(path: Path) -> None:
    ledger = AuditLedger(path)
    barrier = threading.Barrier(8)

    def work(thread: int) -> None:
        barrier.wait()
        for number in range(50):
            ledger.append(make_entry(number, distinct_id=f"t{thread}-{number}"))

    threads = [threading.Thread(target=work, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.close()

    result = verify(path)
    assert result.ok, result.describe()
    assert result.count == 400
    assert {r["distinct_id"] for r in query(path)} == {
        f"t{t}-{n}" for t in range(8) for n in range(50)}


APPEND_FROM_PROCESS = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from reconciler.audit import AuditEntry, AuditLedger
    path, name, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.0005)
    with AuditLedger(path) as ledger:
        for number in range(count):
            ledger.append(AuditEntry(
                actor=name, commit=None, plan_id=name, workspace=name, version="live",
                distinct_id=f"{name}-{number}", operation="patch_channel",
                request={"channel": {"email": "a@example.com"}}, status=200,
                message="Updated", attempts=1, before=None, after=None))
""")


def test_concurrent_appends_from_3_processes_make_one_valid_chain(path: Path) -> None:
    go = path.parent.parent / "go"
    write_chain(path, 1)
    processes = [
        subprocess.Popen([sys.executable, "-c", APPEND_FROM_PROCESS, str(path), f"p{index}",
                          "400", str(go)], stdout=subprocess.PIPE, text=True)
        for index in range(3)]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    go.touch()
    for process in processes:
        assert process.wait(timeout=60) == 0

    result = verify(path)
    assert result.ok, result.describe()
    assert result.count == 1201
    assert {r["distinct_id"] for r in query(path)} == {
        "u-1", *(f"p{p}-{n}" for p in range(3) for n in range(400))}


def test_appending_reads_the_tail_only_when_another_writer_appended(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real_read_tail = ledger_module._read_tail

    def counting_read_tail(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_read_tail(*args)

    monkeypatch.setattr(ledger_module, "_read_tail", counting_read_tail)
    mine, other = AuditLedger(path), AuditLedger(path)
    for number in range(20):
        mine.append(make_entry(number))
    assert calls == 1
    other.append(make_entry(100))
    mine.append(make_entry(101))
    mine.close()
    other.close()

    assert calls == 3
    assert verify(path).ok
    assert verify(path).count == 22


def test_ledger_moved_away_is_started_anew(path: Path) -> None:
    ledger = AuditLedger(path)
    ledger.append(make_entry(1))
    path.rename(path.with_name("audit-old.jsonl"))
    ledger.append(make_entry(2))
    ledger.close()

    assert [r["seq"] for r in query(path)] == [1]
    assert verify(path).ok


@pytest.mark.parametrize("umask", [0o000, 0o377])
def test_ledger_file_is_private_whatever_the_umask(path: Path, umask: int) -> None:
    path.parent.mkdir()
    previous = os.umask(umask)
    try:
        write_chain(path, 1)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_ledger_checked_out_world_readable_is_made_private(path: Path) -> None:
    write_chain(path, 1)
    path.chmod(0o644)  # as git checks files out
    write_chain(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_suffix(".keys").stat().st_mode) == 0o600


def test_state_directory_is_created_private(path: Path) -> None:
    previous = os.umask(0)
    try:
        write_chain(path, 1)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(("durable", "syncs"), [(False, 0), (True, 3)])
def test_durable_ledger_fsyncs_every_record(path: Path, monkeypatch: pytest.MonkeyPatch,
                                            durable: bool, syncs: int) -> None:
    path.parent.mkdir()
    path.touch()
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)

    with AuditLedger(path, durable=durable) as ledger:
        ledger.prepare(("FYTEST", "live", f"u-{number}") for number in range(3))
        synced.clear()  # the data keys, made before the calls as apply does
        for number in range(3):
            ledger.append(make_entry(number))

    assert len(synced) == syncs


def test_api_key_in_the_environment_never_reaches_the_ledger(path: Path,
                                                             tmp_path: Path) -> None:
    env = {"FYNO_API_KEY": "sk-secret-123", "RECONCILER_ACTOR": "carol"}
    context = AuditContext.current(config_dir=tmp_path, plan_id="plan-9", workspace="FYTEST",
                                   version="test", forced=True, env=env)
    with AuditLedger(path) as ledger:
        ledger.append(context.entry("u-1", "delete_channels",
                                    request={"channel": ["sms"]}, status=200,
                                    message="Deleted", attempts=2, before=None, after=None))

    record = next(query(path))
    assert b"sk-secret-123" not in path.read_bytes()
    assert (record["actor"], record["plan_id"], record["version"]) == ("carol", "plan-9", "test")
    assert (record["forced"], record["attempts"], record["operation"]) == (
        True, 2, "delete_channels")


# --- query and render ---------------------------------------------------------------------

@pytest.fixture
def history(path: Path) -> Path:
    with AuditLedger(path) as ledger:
        ledger.append(make_entry(1, time="2024-05-01T09:00:00.000Z"))
        ledger.append(make_entry(2, time="2024-05-02T09:00:00.000Z"))
        ledger.append(make_entry(1, time="2024-05-03T09:00:00.000Z", operation="delete_tokens"))
        ledger.append(make_entry(3, time="2024-05-04T09:00:00.000Z"))
    return path


def test_profile_filter_keeps_that_profiles_records(history: Path) -> None:
    records = list(query(history, profile="u-1"))

    assert [r["seq"] for r in records] == [1, 3]


def test_since_filter_keeps_records_from_that_moment(history: Path) -> None:
    since = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)

    assert [r["seq"] for r in query(history, since=since)] == [2, 3, 4]


def test_since_without_zone_is_utc_and_with_zone_is_converted(history: Path) -> None:
    naive = datetime(2024, 5, 3, 9, 0)
    india = datetime(2024, 5, 3, 14, 31, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    assert [r["seq"] for r in query(history, since=naive)] == [3, 4]
    assert [r["seq"] for r in query(history, since=india)] == [4]


def test_profile_and_since_filters_combine(history: Path) -> None:
    since = datetime(2024, 5, 2, tzinfo=UTC)

    assert [r["seq"] for r in query(history, profile="u-1", since=since)] == [3]


def test_text_format_is_one_summary_line_per_record(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(make_entry(1, time="2024-05-01T09:00:00.000Z", attempts=3,
                                 message="Bad\nrequest", status=400, forced=True))
        ledger.append(make_entry(2, time="2024-05-01T09:00:01.000Z", status=None,
                                 message="timed out"))

    lines = list(render_records(query(path), "text"))

    assert lines == [
        "2024-05-01T09:00:00.000Z  alice  FYTEST/live  u-1  patch_channel  400  attempts=3  "
        "Bad request  [forced]\n",
        "2024-05-01T09:00:01.000Z  alice  FYTEST/live  u-2  patch_channel  -  attempts=1  "
        "timed out\n",
    ]


def test_json_format_is_json_lines_of_full_records(history: Path) -> None:
    text = "".join(render_records(query(history), "json", show_values=True))

    parsed = [orjson.loads(line) for line in text.splitlines()]
    assert parsed == [with_every_field(record) for record in query(history)]
    assert len(parsed) == 4


def test_csv_format_parses_with_the_csv_module(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(make_entry(1, message='Bad, "quoted"\nrequest', commit=None))
        ledger.append(make_entry(2))

    text = "".join(render_records(query(path), "csv", show_values=True))

    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2
    first = rows[0]
    assert first["message"] == 'Bad, "quoted"\nrequest'
    assert (first["seq"], first["status"], first["commit"], first["forced"]) == (
        "1", "200", "", "false")
    assert orjson.loads(first["request"]) == make_entry(1).request
    assert orjson.loads(first["before"]) == {}
    assert first["hash"] == next(query(path))["hash"]


def test_csv_of_no_records_is_its_header(path: Path) -> None:
    assert list(render_records([], "csv")) == [",".join(CSV_COLUMNS) + "\n"]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit format 'xml'"):
        render_records([], "xml")  # type: ignore[arg-type]


# --- actor and commit ---------------------------------------------------------------------

@pytest.mark.parametrize(("env", "actor"), [
    ({"RECONCILER_ACTOR": "rita", "GITHUB_ACTOR": "octocat", "USER": "u"}, "rita"),
    ({"RECONCILER_ACTOR": "  ", "GITHUB_ACTOR": "octocat", "USER": "u"}, "octocat"),
    ({"GITHUB_ACTOR": "octocat", "GITLAB_USER_LOGIN": "tanuki"}, "octocat"),
    ({"GITLAB_USER_LOGIN": "tanuki", "USER": "u"}, "tanuki"),
    ({"BUILDKITE_BUILD_CREATOR": "Kite Flyer"}, "Kite Flyer"),
    ({"CIRCLE_USERNAME": "circler"}, "circler"),
    ({"BUILD_REQUESTEDFOR": "Azure Person"}, "Azure Person"),
])
def test_actor_is_reconciler_actor_then_ci_actor(env: dict[str, str], actor: str) -> None:
    assert resolve_actor(env) == actor


def test_actor_falls_back_to_user_at_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "build-7")

    assert resolve_actor({"USER": "dave", "FYNO_API_KEY": "k"}) == "dave@build-7"
    assert resolve_actor({"LOGNAME": "erin", "USER": "dave"}) == "erin@build-7"
    assert resolve_actor({}).endswith("@build-7")
    assert resolve_actor({}) != "@build-7"


@pytest.fixture
def no_outer_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git must not find a repository above tmp_path, whatever the machine."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    yield


def git(directory: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(directory), "-c", "user.name=T", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_git_commit_is_the_head_of_the_repository_holding_the_directory(
        tmp_path: Path, no_outer_repo: None) -> None:
    repo = tmp_path / "repo"
    (repo / "profiles").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "profiles" / "a.yaml").write_text("profiles: {}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "profiles")

    head = git(repo, "rev-parse", "HEAD")
    assert re.fullmatch(r"[0-9a-f]{40}", head)
    assert git_commit(repo) == head
    assert git_commit(repo / "profiles") == head


def test_git_commit_is_none_in_a_repository_without_commits(
        tmp_path: Path, no_outer_repo: None) -> None:
    git(tmp_path, "init", "-q")

    assert git_commit(tmp_path) is None


def test_git_commit_is_none_outside_a_repository(tmp_path: Path, no_outer_repo: None) -> None:
    (tmp_path / "plain").mkdir()

    assert git_commit(tmp_path / "plain") is None
    assert git_commit(tmp_path / "does-not-exist") is None


def test_git_commit_is_none_without_git(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert git_commit(Path.cwd()) is None


def test_forked_child_appends_under_a_lock_of_its_own(path: Path) -> None:
    ledger = AuditLedger(path)
    ledger.append(make_entry(1))
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            for number in range(500):
                ledger.append(make_entry(number, distinct_id=f"child-{number}"))
        except BaseException:
            code = 1
        os._exit(code)
    for number in range(500):
        ledger.append(make_entry(number, distinct_id=f"parent-{number}"))
    _, status = os.waitpid(child, 0)
    ledger.close()

    assert os.waitstatus_to_exitcode(status) == 0
    result = verify(path)
    assert result.ok, result.describe()
    assert result.count == 1001


# --- terminal control characters ------------------------------------------------------------

HOSTILE = "\x1b[2J\u202e\r\x07\x00\x9b\u2028\x7f"


def assert_printable(output: str) -> None:
    raw = sorted({char for char in output if not (char.isprintable() or char in "\n\t")})
    assert not raw, f"raw control characters {raw!r} in {output!r}"


@pytest.fixture
def hostile(path: Path) -> Path:
    with AuditLedger(path) as ledger:
        ledger.append(make_entry(1, distinct_id=f"u-{HOSTILE}", actor=f"eve{HOSTILE}",
                                 message=f"Bad {HOSTILE}\nrequest",
                                 request={"channel": {"email": HOSTILE}}))
    return path


def test_text_format_escapes_control_characters(hostile: Path) -> None:
    [line] = list(render_records(query(hostile), "text", show_values=True))
    assert_printable(line)
    assert "u-\\x1b[2J\\u202e \\x07\\x00\\x9b \\x7f" in line  # CR, U+2028: whitespace, folded
    assert "Bad \\x1b[2J\\u202e \\x07\\x00\\x9b \\x7f request" in line


def test_json_format_escapes_control_characters_as_json(hostile: Path) -> None:
    text = "".join(render_records(query(hostile), "json", show_values=True))
    assert_printable(text)
    assert [orjson.loads(line) for line in text.splitlines()] == [
        with_every_field(record) for record in query(hostile)]


def test_csv_format_escapes_control_characters_but_keeps_newlines(hostile: Path) -> None:
    text = "".join(render_records(query(hostile), "csv", show_values=True))
    assert_printable(text)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["message"] == "Bad \\x1b[2J\\u202e\\r\\x07\\x00\\x9b\\u2028\\x7f\nrequest"
    assert orjson.loads(row["request"]) == {"channel": {"email": HOSTILE}}


def test_json_and_csv_mask_personal_values_unless_show_values(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLedger(path) as ledger:
        ledger.append(AuditContext("alice", None, "p-1", "FYTEST", "live").entry(
            "u-1", "patch_channel", request={"channel": {
                "email": "alice@example.com", "sms": "+919879000000",
                "push": [{"token": "fcm_token:abcdef123456", "status": 1}]}},
            status=200, message="ok", attempts=1,
            before={"email": "old@example.com"}, after={"email": "alice@example.com",
                                                        "webpush": [{"endpoint": "e"}]}))
        ledger.append(AuditContext("alice", None, "p-1", "FYTEST", "live").entry(
            "u-1", "delete_tokens", request={"push": ["fcm_token:abcdef123456"]},
            status=200, message="ok", attempts=1, before=None, after=None))
    for fmt in ("json", "csv"):
        masked = "".join(render_records(query(path), fmt))
        for value in ("alice@example.com", "old@example.com", "9879000000", "abcdef123456"):
            assert value not in masked, (fmt, value)
        assert "a\u2022\u2022\u2022@example.com" in masked or "a•••@example.com" in masked
        shown = "".join(render_records(query(path), fmt, show_values=True))
        assert "alice@example.com" in shown and "abcdef123456" in shown
