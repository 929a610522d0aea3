"""Saved plans: round trip, and refusal of edited, malformed and stale plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import PlanEditedError, PlanFileError, PlanStaleError
from reconciler.model import ChannelData
from reconciler.plan import Plan, checksum
from reconciler.planfile import check_fresh, read_plan, write_plan
from reconciler.planner import diff

LINEAGE = "00000000-0000-0000-0000-000000000001"


def sample_plan() -> Plan:
    desired = {"u1": ChannelData.from_json({"email": "a@x.io", "push": [{"token": "new"}]}),
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
