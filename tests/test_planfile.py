"""Saved plans: round trip, and refusal of edited, malformed, masked, old and stale plans."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler import plandoc
from reconciler.encryption import Encryption
from reconciler.errors import EncryptionError, PlanEditedError, PlanFileError, PlanStaleError
from reconciler.model import ChannelData, Token
from reconciler.plan import PLAN_FORMAT_VERSION, Plan, ReAddTokens
from reconciler.plandoc import checksum, document_lines, encode
from reconciler.planfile import check_fresh, read_plan, write_plan
from reconciler.planner import diff
from reconciler.render.json import render_json

LINEAGE = "00000000-0000-0000-0000-000000000001"
KEY = "q0h3QfUjWwq5m2PO1tdQmZ3Zbmn3Lq2jL8k0V3yT2hE="


def sample_plan(profiles: int = 0) -> Plan:
    """Every kind of call (PATCH, Option 2, Option 1 with forget, re-add), and `profiles`
    more new profiles."""
    desired = {"u1": ChannelData.from_json({"email": "a@x.io", "push": [
                   {"token": "new"}, {"token": "x", "integration_id": "I1", "status": 0}]}),
               "a/b": ChannelData.from_json({"sms": "+1555"})}
    desired.update({f"n{index:04d}": ChannelData.from_json({"email": f"n{index}@x.io"})
                    for index in range(profiles)})
    recorded = {"u1": ChannelData.from_json({"push": [{"token": "old"}, {"token": "x"}]}),
                "gone": ChannelData.from_json({"teams": "general"})}
    return Plan(plan_id="p-1", created_at="2026-11-28T00:00:00Z", workspace="FY1",
                version="live", lineage=LINEAGE, serial=4, config_digest="sha256:abc",
                recorded_entries=3, calls=diff(desired, recorded))


def saved(tmp_path: Path, plan: Plan | None = None) -> Path:
    path = tmp_path / "plan.json"
    write_plan(plan or sample_plan(), path)
    return path


def document_of(plan: Plan) -> dict[str, Any]:
    """The saved document as a mapping, as any JSON reader reads the file."""
    loaded: dict[str, Any] = orjson.loads(b"".join(document_lines(plan)))
    return loaded


def test_saved_plan_round_trips(tmp_path: Path) -> None:
    plan = sample_plan()
    written = write_plan(plan, tmp_path / "plan.json")
    loaded = read_plan(tmp_path / "plan.json")
    assert loaded == plan and loaded.calls == plan.calls
    assert loaded.checksum == written == document_of(plan)["checksum"]
    assert (loaded.lineage, loaded.serial, loaded.digest()) == (LINEAGE, 4, "sha256:abc")
    assert [call.operation for call in loaded.calls if call.distinct_id == "u1"] == [
        "patch_channel", "delete_tokens", "readd_tokens"]
    assert isinstance(loaded.calls[-1], ReAddTokens)
    assert loaded.summary == plan.summary
    assert (loaded.summary.change, loaded.summary.remove) == (1, 2)


def test_a_saved_plan_is_one_json_document_with_one_call_per_line(tmp_path: Path) -> None:
    plan = sample_plan()
    lines = saved(tmp_path, plan).read_bytes().split(b"\n")
    assert lines[0].startswith(b'{"format_version":2,') and lines[0].endswith(b',"calls":[')
    assert len(lines) == len(plan.calls) + 3  # header, calls, trailer, and the final newline
    assert [orjson.loads(line.rstrip(b",")) for line in lines[1:-2]] == [
        call.to_json() for call in plan.calls]
    assert lines[-2].startswith(b'],"checksum":"sha256:') and lines[-1] == b""
    document = json.loads(b"\n".join(lines))
    assert document["format_version"] == PLAN_FORMAT_VERSION == 2
    assert document["checksum"] == checksum(document)


def test_a_call_carries_each_fact_once_its_changes() -> None:
    # The request is what the changes make: the file holds no method, path or body, and a
    # side that is None (an added entry's before, a removed one's after) is left out.
    calls = document_of(sample_plan())["calls"]
    assert calls[0] == {"distinct_id": "a/b", "operation": "patch_channel",
                        "changes": [{"channel": "sms", "after": "+1555"}]}
    assert calls[1] == {"distinct_id": "gone", "operation": "delete_channels",
                         "changes": [{"channel": "teams", "before": "general"}], "forget": True}


def test_a_larger_plan_round_trips_and_applies_the_same_requests(tmp_path: Path) -> None:
    plan = sample_plan(profiles=2_500)  # more calls than one batch of the reader
    loaded = read_plan(saved(tmp_path, plan))
    assert loaded.calls == plan.calls
    assert [call.request() for call in loaded.calls] == [call.request() for call in plan.calls]


def test_an_empty_plan_round_trips(tmp_path: Path) -> None:
    plan = Plan(plan_id="p-0", created_at="2026-11-28T00:00:00Z", workspace="FY1",
                version="live", lineage=None, serial=0, config_digest="sha256:abc",
                recorded_entries=0, calls=())
    assert read_plan(saved(tmp_path, plan)) == plan


def test_checksum_covers_every_field() -> None:
    document = document_of(sample_plan())
    for key in ("serial", "lineage"):
        edited = json.loads(json.dumps(document))
        edited["state"][key] = "tampered"
        assert checksum(edited) != document["checksum"]


# --- edits, without the checksum recomputed -------------------------------------------------

def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


EDITS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "a value in a call": lambda lines: [lines[0], lines[1].replace(b"+1555", b"+1999"),
                                        *lines[2:]],
    "the header (a stale plan made to look fresh)": lambda lines: [
        lines[0].replace(b'"serial":4', b'"serial":99'), *lines[1:]],
    "a call line removed": lambda lines: [lines[0], *lines[2:]],
    "two calls swapped": lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
    "a call line repeated": lambda lines: [lines[0], lines[1], *lines[1:]],
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_plan_is_refused(tmp_path: Path, edit: str) -> None:
    path = saved(tmp_path)
    path.write_bytes(b"".join(EDITS[edit](_lines(path))))
    with pytest.raises(PlanEditedError, match="edited after it was saved"):
        read_plan(path)


@pytest.mark.parametrize("cut", [1, 40, 200])
def test_a_plan_cut_short_is_refused(tmp_path: Path, cut: int) -> None:
    path = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(PlanEditedError, match="ends before its checksum: it was cut short"):
        read_plan(path)


def test_a_plan_whose_trailer_is_gone_is_refused(tmp_path: Path) -> None:
    path = saved(tmp_path)
    path.write_bytes(b"".join(_lines(path)[:-1]))
    with pytest.raises(PlanEditedError, match="ends before its checksum"):
        read_plan(path)


def test_a_reformatted_plan_counts_as_edited(tmp_path: Path) -> None:
    # Its checksum is over the lines as written; read again, it would prove nothing.
    path = saved(tmp_path)
    path.write_text(json.dumps(json.loads(path.read_bytes()), indent=2))
    with pytest.raises(PlanEditedError, match="not laid out as `plan --out` writes it"):
        read_plan(path)


def test_an_edit_that_also_breaks_the_form_is_named_an_edit(tmp_path: Path) -> None:
    path = saved(tmp_path)
    lines = _lines(path)
    path.write_bytes(b"".join([lines[0], b"{not json\n", *lines[2:]]))
    with pytest.raises(PlanEditedError, match="edited after it was saved"):
        read_plan(path)


# --- refusals before the checksum: what is no saved plan of this version --------------------

def test_a_masked_rendering_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "printed.json"
    path.write_text(render_json(sample_plan()))
    with pytest.raises(PlanFileError, match="printed with its values masked"):
        read_plan(path)


def old_plan_document() -> dict[str, Any]:
    """A plan as format 1 wrote it: pretty-printed, each call with its request body."""
    return {
        "calls": [{
            "body": {"channel": {"email": "a@x.io"}},
            "changes": [{"after": "a@x.io", "before": None, "channel": "email"}],
            "distinct_id": "u1", "method": "PATCH", "operation": "patch_channel",
            "path": "/profiles/u1/channel",
        }],
        "checksum": "sha256:" + "0" * 64, "config_digest": "sha256:abc",
        "created_at": "2026-01-01T00:00:00Z", "forced": False, "forget": [],
        "format_version": 1, "plan_id": "p-old",
        "state": {"lineage": LINEAGE, "recorded_entries": 1, "serial": 4},
        "summary": {"add": 1, "calls": {"delete_channels": 0, "delete_tokens": 0,
                                        "patch_channel": 1, "readd_tokens": 0},
                    "change": 0, "forget": 0, "profiles": 1, "remove": 0},
        "targets": [], "version": "live", "warnings": [], "workspace": "FY1",
    }


def test_a_plan_of_the_previous_format_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_bytes(orjson.dumps(old_plan_document(), option=orjson.OPT_INDENT_2) + b"\n")
    with pytest.raises(PlanFileError) as raised:
        read_plan(path)
    assert str(raised.value) == (
        f"{path} has plan format_version 1 (an older reconciler wrote it); this reconciler "
        "reads version 2: run `reconciler plan --out` again")


def test_a_sealed_plan_of_the_previous_format_is_refused_with_what_to_do(
        tmp_path: Path) -> None:
    encryption = Encryption.configure("env:KEY", None, None, {"KEY": KEY})
    path = tmp_path / "old.json"
    path.write_bytes(encryption.seal_file("plan", orjson.dumps(old_plan_document())))
    with pytest.raises(PlanFileError, match=r"format_version 1 .* run `reconciler plan --out`"):
        read_plan(path, encryption)


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "is not valid JSON: unexpected character, expected a string key at line 1 "
                   "column 2: it is not a saved plan"),
    (b"[]", "has no checksum"),
    (b'{"format_version": 7, "checksum": "x"}', "format_version 7; this reconciler reads"),
    (b"", "is not valid JSON"),
])
def test_unreadable_plans_are_refused_with_the_reason(tmp_path: Path, content: bytes,
                                                      message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(PlanFileError, match=message):
        read_plan(path)


def test_missing_plan_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"cannot read plan file .*nope\.json"):
        read_plan(tmp_path / "nope.json")


# --- sealed plans ----------------------------------------------------------------------------

def sealing() -> Encryption:
    return Encryption.configure("env:KEY", None, None, {"KEY": KEY})


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 kB, so that a small plan is sealed in several."""
    monkeypatch.setattr(plandoc, "BLOCK_BYTES", 4096)


def test_a_sealed_plan_round_trips_and_holds_no_value_in_clear(tmp_path: Path) -> None:
    plan = sample_plan(profiles=3_000)  # several sealed blocks
    path = tmp_path / "plan.json"
    write_plan(plan, path, sealing())
    data = path.read_bytes()
    assert data.startswith(b'{"reconciler_encrypted":1,"content":"plan-blocks"')
    assert b"+1555" not in data and b"a@x.io" not in data and len(data.splitlines()) > 2
    assert read_plan(path, sealing()) == plan


def test_a_sealed_plan_needs_its_key(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path, sealing())
    with pytest.raises(EncryptionError, match="no key is configured"):
        read_plan(path)


@pytest.mark.parametrize("edit", ["a block changed", "blocks swapped", "a block removed"])
def test_an_edited_sealed_plan_is_refused(tmp_path: Path, edit: str) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(profiles=3_000), path, sealing())
    header, *sealed = path.read_bytes().splitlines(keepends=True)
    assert len(sealed) >= 3
    if edit == "a block changed":
        sealed[0] = sealed[0][:10] + (b"A" if sealed[0][10:11] != b"A" else b"B") + sealed[0][11:]
    elif edit == "blocks swapped":
        sealed[0], sealed[1] = sealed[1], sealed[0]
    else:
        del sealed[1]
    path.write_bytes(header + b"".join(sealed))
    with pytest.raises(EncryptionError, match="failed authentication"):
        read_plan(path, sealing())


def test_a_sealed_plan_cut_at_a_block_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(profiles=3_000), path, sealing())
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    with pytest.raises(PlanEditedError, match="ends before its checksum"):
        read_plan(path, sealing())


def test_a_clear_plan_is_read_when_a_key_is_configured(tmp_path: Path) -> None:
    assert read_plan(saved(tmp_path), sealing()) == sample_plan()


# --- staleness -----------------------------------------------------------------------------

def test_plan_for_the_current_state_is_fresh() -> None:
    check_fresh(sample_plan(), Path("plan.json"), LINEAGE, 4, "FY1", "live")


def test_plan_computed_against_an_older_serial_is_stale() -> None:
    with pytest.raises(PlanStaleError, match="computed against state serial 4, and the state "
                                             "is now at serial 6"):
        check_fresh(sample_plan(), Path("plan.json"), LINEAGE, 6, "FY1", "live")


def test_plan_computed_against_another_lineage_is_stale() -> None:
    with pytest.raises(PlanStaleError, match="another state"):
        check_fresh(sample_plan(), Path("plan.json"), "ffff", 4, "FY1", "live")


def test_plan_for_another_workspace_is_refused() -> None:
    with pytest.raises(PlanStaleError, match="workspace FY1"):
        check_fresh(sample_plan(), Path("plan.json"), LINEAGE, 4, "FY2", "live")


# --- every field checked, even under a checksum that matches ------------------------------------
# The checksum proves only that nobody edited the plan without recomputing it: anyone can
# recompute it. What a plan holds is checked as if it came from anywhere.

def resealed(document: dict[str, Any], path: Path) -> Path:
    document["checksum"] = checksum(document)
    path.write_bytes(encode(document))
    return path


def _edit(*path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    *path, key, value = path_and_value

    def change(document: dict[str, Any]) -> None:
        for part in path:
            document = document[part]
        document[key] = value
    return change


MALFORMED = {
    "NUL in a distinct_id": (_edit("calls", 0, "distinct_id", "a\x00b"),
                             "at /calls/0/distinct_id: holds the control character U+0000"),
    "workspace naming another directory": (_edit("workspace", "../FY1"),
                                           "at /workspace: holds a path separator"),
    "serial 2^64-1": (_edit("state", "serial", 2**64 - 1),
                      "at /state/serial: an integer above the maximum 9007199254740991"),
    "recorded entries as text": (_edit("state", "recorded_entries", "3"),
                                 "at /state/recorded_entries: a string where an integer is "
                                 "expected"),
    "lineage of the wrong type": (_edit("state", "lineage", 7),
                                  "at /state/lineage: an integer where null or a string is "
                                  "expected"),
    "created_at that is no time": (_edit("created_at", "yesterday"),
                                   "at /created_at: not a valid date-time"),
    "target with a NUL": (_edit("targets", ["u\x00"]),
                          "at /targets/0: holds the control character U+0000"),
    "token status 2": (_edit("calls", 2, "changes", 1, "after", "status", 2),
                       "at /calls/2/changes/1/after"),
    "unknown operation": (_edit("calls", 0, "operation", "drop_everything"),
                          'at /calls/0/operation: not one of "patch_channel", "delete_tokens"'),
    "a request body, which the changes make": (
        _edit("calls", 0, "body", {"channel": {"sms": "+1999"}}), "at /calls/0: "),
    "a PATCH that removes": (_edit("calls", 0, "changes", 0, "after", None), "at /calls/0/"),
    "a summary that does not count the calls": (
        _edit("summary", "add", 99), "at /summary: it does not count its calls"),
    "a webpush delete that is no JSON": (
        _edit("calls", 3, "changes", [{"channel": "webpush", "before": "{nope"}]),
        "at /calls/3: a webpush token to delete is not the JSON text of a token"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_plan_with_a_wrong_field_and_a_matching_checksum_is_refused(
        tmp_path: Path, case: str) -> None:
    change, expected = MALFORMED[case]
    document = document_of(sample_plan())
    change(document)
    path = resealed(document, tmp_path / "plan.json")
    with pytest.raises(PlanFileError) as raised:
        read_plan(path)
    assert type(raised.value) is PlanFileError
    assert str(raised.value).startswith(f"{path} is not a valid saved plan: ")
    assert expected in str(raised.value)
    assert "+1555" not in str(raised.value) and "+1999" not in str(raised.value)


def test_a_malformed_call_far_into_the_plan_is_placed_exactly(tmp_path: Path) -> None:
    document = document_of(sample_plan(profiles=2_500))
    document["calls"][2_345]["operation"] = "drop_everything"
    with pytest.raises(PlanFileError, match="at /calls/2345/operation: not one of"):
        read_plan(resealed(document, tmp_path / "plan.json"))


def test_a_plan_with_a_repeated_key_is_refused_even_with_a_matching_checksum(
        tmp_path: Path) -> None:
    # The checksum is over what a last-wins parser reads; the first value is what a reviewer
    # reading the file sees, and would not be what apply uses.
    path = resealed(document_of(sample_plan()), tmp_path / "plan.json")
    lines = _lines(path)
    lines[0] = lines[0].replace(b'"serial":4', b'"serial":3,"serial":4')
    path.write_bytes(b"".join(lines))
    path.write_bytes(resealed_bytes(path))
    with pytest.raises(PlanFileError) as raised:
        read_plan(path)
    assert str(raised.value).startswith(
        f'{path} line 1 holds the key "serial" twice in one object (at "/state/serial")')


def test_a_plan_with_a_repeated_key_in_a_call_is_refused(tmp_path: Path) -> None:
    path = saved(tmp_path)
    lines = _lines(path)
    lines[1] = lines[1].replace(b'"channel":"sms"', b'"channel":"sms","channel":"sms"', 1)
    path.write_bytes(b"".join(lines))
    path.write_bytes(resealed_bytes(path))
    with pytest.raises(PlanFileError, match=r'line 2 holds the key "channel" twice in one '
                                            r'object \(at "/changes/0/channel"\)'):
        read_plan(path)


def resealed_bytes(path: Path) -> bytes:
    """The file's lines with the trailer's checksum recomputed over them, as anyone can."""
    import hashlib

    *lines, _ = _lines(path)
    digest = hashlib.sha256(b"".join(lines)).hexdigest()
    return b"".join(lines) + b'],"checksum":"sha256:' + digest.encode() + b'"}\n'


def test_a_token_with_a_null_integration_id_is_read_as_one_without(tmp_path: Path) -> None:
    document = document_of(sample_plan())
    document["calls"][4]["changes"][0]["after"]["integration_id"] = None
    document["calls"][3]["changes"][1]["after"]["integration_id"] = None
    plan = read_plan(resealed(document, tmp_path / "plan.json"))
    assert plan.calls[4].changes[0].after == Token("x", None, 0)


def test_a_plan_with_non_ascii_distinct_ids_round_trips(tmp_path: Path) -> None:
    desired = {"用户-1": ChannelData.from_json({"email": "a@x.io"}),
               "e\u0301": ChannelData.from_json({"sms": "+1555"})}
    plan = Plan(plan_id="p-1", created_at="2026-11-28T00:00:00Z", workspace="FY1",
                version="live", lineage=LINEAGE, serial=4, config_digest="sha256:abc",
                recorded_entries=0, calls=diff(desired, {}))
    assert read_plan(saved(tmp_path, plan)).calls == plan.calls
