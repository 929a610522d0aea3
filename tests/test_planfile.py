"""Saved plans: round trip, and refusal of edited, malformed and stale plans."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import PlanEditedError, PlanFileError, PlanStaleError
from reconciler.model import ChannelData, Token
from reconciler.plan import PatchChannels, Plan, ReAddTokens, checksum
from reconciler.planfile import check_fresh, read_plan, write_plan
from reconciler.planner import diff

LINEAGE = "00000000-0000-0000-0000-000000000001"


def sample_plan() -> Plan:
    desired = {"u1": ChannelData.from_json({"email": "a@x.io", "push": [
                   {"token": "new"}, {"token": "x", "integration_id": "I1", "status": 0}]}),
               "a/b": ChannelData.from_json({"sms": "+1555"})}
    recorded = {"u1": ChannelData.from_json({"push": [{"token": "old"}, {"token": "x"}]}),
                "gone": ChannelData.from_json({"teams": "general"})}
    return Plan(plan_id="p-1", created_at="2026-11-28T00:00:00Z", workspace="FY1",
                version="live", lineage=LINEAGE, serial=4, config_digest="sha256:abc",
                recorded_entries=3, calls=diff(desired, recorded))


def test_saved_plan_round_trips(tmp_path: Path) -> None:
    plan = sample_plan()
    path = tmp_path / "plan.json"
    write_plan(plan, path)
    loaded = read_plan(path)
    assert loaded.calls == plan.calls
    assert (loaded.lineage, loaded.serial, loaded.config_digest) == (LINEAGE, 4, "sha256:abc")
    assert loaded.to_json() == plan.to_json()
    assert [call.operation for call in loaded.calls if call.distinct_id == "u1"] == [
        "patch_channel", "delete_tokens", "readd_tokens"]
    assert isinstance(loaded.calls[-1], ReAddTokens)
    assert loaded.summary == plan.summary
    assert (loaded.summary.change, loaded.summary.remove) == (1, 2)


def old_plan_document() -> dict[str, Any]:
    """A plan saved before re-adds existed: its PATCH re-sends a token with new fields, and
    its summary counts no readd_tokens calls."""
    document: dict[str, Any] = {
        "format_version": 1, "plan_id": "p-old", "created_at": "2026-01-01T00:00:00Z",
        "workspace": "FY1", "version": "live",
        "state": {"lineage": LINEAGE, "serial": 4, "recorded_entries": 1},
        "config_digest": "sha256:abc", "targets": [], "forced": False, "warnings": [],
        "forget": [],
        "calls": [{
            "distinct_id": "u1", "operation": "patch_channel", "method": "PATCH",
            "path": "/profiles/u1/channel",
            "body": {"channel": {"push": [{"token": "x", "status": 0}]}},
            "changes": [{"channel": "push", "before": {"token": "x", "status": 1},
                         "after": {"token": "x", "status": 0}}],
        }],
        "summary": {"profiles": 1, "add": 0, "change": 1, "remove": 0, "forget": 0,
                    "calls": {"patch_channel": 1, "delete_tokens": 0, "delete_channels": 0}},
    }
    document["checksum"] = checksum(document)
    return document


def test_plan_saved_before_re_adds_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old_plan_document()))
    plan = read_plan(path)
    (call,) = plan.calls
    assert type(call) is PatchChannels
    assert call.body() == {"channel": {"push": [{"token": "x", "status": 0}]}}
    assert (plan.summary.change, plan.summary.remove) == (1, 0)


def test_checksum_covers_every_field(tmp_path: Path) -> None:
    document = sample_plan().to_json()
    for key in ("serial", "lineage"):
        edited = json.loads(json.dumps(document))
        edited["state"][key] = "tampered"
        assert checksum(edited) != document["checksum"]


def test_edited_plan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    document = json.loads(path.read_text())
    document["state"]["serial"] = 99  # trying to make a stale plan look fresh
    path.write_text(json.dumps(document))
    with pytest.raises(PlanEditedError, match="edited after it was saved"):
        read_plan(path)


def test_malformed_plan_with_a_matching_checksum_is_refused(tmp_path: Path) -> None:
    document = sample_plan().to_json()
    document["calls"][0]["operation"] = "drop_everything"
    document["checksum"] = checksum(document)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PlanFileError, match="not a valid saved plan: at /calls/0/operation: "
                                            'not one of "patch_channel", "delete_tokens"'):
        read_plan(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "is not valid JSON: unexpected character, expected a string key at line 1 "
                   "column 2: it is not a saved plan"),
    (b"[]", "has no checksum"),
    (b'{"format_version": 7, "checksum": "x"}', "format_version 7"),
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
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode())
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
    # apply sends what the changes make: a body saying otherwise misleads the reviewer.
    "body that its changes do not make": (
        _edit("calls", 0, "body", "channel", "sms", "+1999"),
        "at /calls/0: its method, path or body is not what its changes make"),
    "path of another profile": (
        _edit("calls", 1, "path", "/profiles/u1/channel/delete"),
        "at /calls/1: its method, path or body is not what its changes make"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_plan_with_a_wrong_field_and_a_matching_checksum_is_refused(
        tmp_path: Path, case: str) -> None:
    change, expected = MALFORMED[case]
    document = sample_plan().to_json()
    change(document)
    path = resealed(document, tmp_path / "plan.json")
    with pytest.raises(PlanFileError) as raised:
        read_plan(path)
    assert str(raised.value).startswith(f"{path} is not a valid saved plan: ")
    assert expected in str(raised.value)
    assert "+1555" not in str(raised.value) and "+1999" not in str(raised.value)


def test_a_plan_with_a_repeated_key_is_refused_even_with_a_matching_checksum(
        tmp_path: Path) -> None:
    # The checksum is over what a last-wins parser reads; the first "calls" is what a reviewer
    # reading the file sees, and would not be what apply sends.
    document = sample_plan().to_json()
    text = json.dumps(document)
    path = tmp_path / "plan.json"
    path.write_text(text[:-1] + ', "calls": ' + json.dumps(document["calls"]) + "}")
    assert json.loads(path.read_text())["checksum"] == checksum(json.loads(path.read_text()))
    with pytest.raises(PlanFileError) as raised:
        read_plan(path)
    assert str(raised.value).startswith(
        f'plan file {path} holds the key "calls" twice in one object (at "/calls")')


def test_a_plan_with_a_repeated_key_deep_inside_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    text = path.read_text()
    path.write_text(text.replace('"before": null', '"before": null, "before": null', 1))
    with pytest.raises(PlanFileError, match=r'holds the key "before" twice in one object '
                                            r'\(at "/calls/0/changes/0/before"\)'):
        read_plan(path)


def test_a_token_with_a_null_integration_id_is_read_as_one_without(tmp_path: Path) -> None:
    document = sample_plan().to_json()
    readd = document["calls"][4]
    readd["body"]["channel"]["push"][0]["integration_id"] = None
    readd["changes"][0]["after"]["integration_id"] = None
    document["calls"][3]["changes"][1]["after"]["integration_id"] = None
    with pytest.raises(PlanFileError, match="at /calls/4: its method, path or body is not"):
        # A body is compared as written: null is not the absence that `plan --out` writes.
        read_plan(resealed(document, tmp_path / "plan.json"))
    del readd["body"]["channel"]["push"][0]["integration_id"]
    plan = read_plan(resealed(document, tmp_path / "plan.json"))
    assert plan.calls[4].changes[0].after == Token("x", None, 0)


def test_a_plan_with_non_ascii_distinct_ids_round_trips(tmp_path: Path) -> None:
    desired = {"用户-1": ChannelData.from_json({"email": "a@x.io"}),
               "e\u0301": ChannelData.from_json({"sms": "+1555"})}
    plan = Plan(plan_id="p-1", created_at="2026-11-28T00:00:00Z", workspace="FY1",
                version="live", lineage=LINEAGE, serial=4, config_digest="sha256:abc",
                recorded_entries=0, calls=diff(desired, {}))
    path = tmp_path / "plan.json"
    write_plan(plan, path)
    assert read_plan(path).calls == plan.calls
