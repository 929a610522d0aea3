"""Saved plans: round trip, and refusal of edited, malformed and stale plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import PlanEditedError, PlanFileError, PlanStaleError
from reconciler.model import ChannelData
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
    with pytest.raises(PlanFileError, match="not a valid saved plan: at calls/0/operation"):
        read_plan(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "invalid JSON"),
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
