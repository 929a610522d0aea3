"""Specifications of the JSON renderer and of `schemas/plan.schema.json`, which describes it."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from reconciler.mask import mask_change_json
from reconciler.model import ChannelData, Token
from reconciler.plan import Change, DeleteTokens, Plan
from reconciler.plandoc import call_line, checksum, document_lines, masked_call_line
from reconciler.planfile import read_plan, write_plan
from reconciler.planner import diff
from reconciler.render.json import render_json, write_json

SCHEMA = orjson.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_bytes())
VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA)


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def full_plan(**options: Any) -> Plan:
    """Every kind of call: PATCH (values, new tokens), Option 2 (removed and changed tokens),
    Option 1, re-add, forget."""
    desired = {
        "u 1001/ü": data(email="alice@example.com", sms="+919879111111",
                         push=[{"token": "fcm_token:new", "integration_id": "I1", "status": 0},
                               {"token": "fcm_token:kept", "status": 0}]),
        "u-1002": data(),
    }
    recorded = {
        "u 1001/ü": data(sms="+919879000000",
                         push=[{"token": "fcm_token:old"}, {"token": "fcm_token:kept"}]),
        "u-1002": data(slack="U024BE7LH", inapp=[{"token": "u-1002"}]),
        "u-gone": data(email="bob@example.org"),
    }
    defaults: dict[str, Any] = {
        "plan_id": "p-1", "created_at": "2024-05-01T10:00:00Z", "workspace": "FYTEST0001",
        "version": "live", "lineage": "lineage-1", "serial": 7, "config_digest": "sha256:00",
        "recorded_entries": 20, "calls": diff(desired, recorded),
        "targets": ("u 1001/ü",), "warnings": ("a warning",), "forced": True,
    }
    return Plan(**{**defaults, **options})


def errors(document: Any) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(document)]


def document_of(plan: Plan) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(render_json(plan, show_values=True))
    return loaded


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema_rs.meta.is_valid(SCHEMA)


@pytest.mark.parametrize("plan", [full_plan(), full_plan(lineage=None, serial=0, targets=(),
                                                         warnings=(), forced=False, calls=())])
def test_rendered_plan_validates_against_the_schema(plan: Plan) -> None:
    assert errors(orjson.loads(render_json(plan, show_values=True))) == []


def test_every_operation_is_exercised_by_the_schema_test() -> None:
    operations = {call["operation"] for call in document_of(full_plan())["calls"]}
    assert operations == {"patch_channel", "delete_tokens", "delete_channels", "readd_tokens"}


def test_a_changed_token_is_a_delete_then_a_re_add_in_the_document() -> None:
    document = document_of(full_plan())
    calls = [call for call in document["calls"] if call["distinct_id"] == "u 1001/ü"]
    assert [call["operation"] for call in calls] == ["patch_channel", "delete_tokens",
                                                     "readd_tokens"]
    changed = {"channel": "push", "before": {"token": "fcm_token:kept", "status": 1},
               "after": {"token": "fcm_token:kept", "status": 0}}
    assert calls[1]["changes"] == [
        {"channel": "push", "before": {"token": "fcm_token:old", "status": 1}}, changed]
    assert calls[2] == {"distinct_id": "u 1001/ü", "operation": "readd_tokens",
                        "changes": [changed]}
    assert document["summary"]["change"] == 2  # sms, and the token: once
    assert document["summary"]["calls"]["readd_tokens"] == 1


def test_json_with_values_is_the_saved_plan_and_reads_back(tmp_path: Path) -> None:
    plan = full_plan()
    text = render_json(plan, show_values=True)
    write_plan(plan, tmp_path / "plan.json")
    assert (tmp_path / "plan.json").read_text() == text
    (tmp_path / "printed.json").write_text(text)
    assert read_plan(tmp_path / "printed.json") == plan


def test_json_is_one_document_with_one_call_per_line() -> None:
    plan = full_plan()
    text = render_json(plan, show_values=True)
    lines = text.splitlines()
    assert len(lines) == len(plan.calls) + 2
    assert all(orjson.loads(line.rstrip(",")) == call.to_json()
               for line, call in zip(lines[1:-1], plan.calls, strict=True))
    document = orjson.loads(text)
    assert document["checksum"] == checksum(document)


def test_json_is_written_as_a_stream_of_blocks() -> None:
    out = io.BytesIO()
    write_json(full_plan(), out, show_values=True)
    assert out.getvalue().decode() == render_json(full_plan(), show_values=True)


def test_json_carries_full_values() -> None:
    text = render_json(full_plan(), show_values=True)
    for value in ("alice@example.com", "+919879000000", "+919879111111", "fcm_token:old",
                  "U024BE7LH", "bob@example.org"):
        assert value in text
    assert "•" not in text


def mutated(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(document_of(full_plan()))
    change(document)
    return document


@pytest.mark.parametrize(("name", "change"), [
    ("missing checksum", lambda doc: doc.pop("checksum")),
    ("unknown operation", lambda doc: doc["calls"][0].update(operation="delete_profile")),
    ("forget on a PATCH", lambda doc: doc["calls"][0].update(forget=True)),
    ("Option 1 without forget", lambda doc: doc["calls"][-1].pop("forget")),
    ("PATCH that removes", lambda doc: doc["calls"][0]["changes"][0].update(after=None)),
    ("token given as a string",
     lambda doc: doc["calls"][0]["changes"][-1].update(after="fcm_token:new")),
    ("a request body beside the changes",
     lambda doc: doc["calls"][1].update(body={"push": ["fcm_token:old"]})),
    ("unknown channel", lambda doc: doc["calls"][-1]["changes"][0].update(channel="fax")),
    ("an Option 1 delete of webpush",
     lambda doc: doc["calls"][-1]["changes"][0].update(channel="webpush")),
    ("a change with neither side", lambda doc: doc["calls"][0]["changes"][0].pop("after")),
    ("an Option 2 delete with no before",
     lambda doc: doc["calls"][1]["changes"][0].pop("before")),
    ("unknown version", lambda doc: doc.update(version="staging")),
    ("extra field", lambda doc: doc.update(note="hi")),
    ("negative serial", lambda doc: doc["state"].update(serial=-1)),
    ("summary without call counts", lambda doc: doc["summary"].pop("calls")),
    ("re-add that removes", lambda doc: doc["calls"][2]["changes"][0].update(after=None)),
    ("re-add of a new token", lambda doc: doc["calls"][2]["changes"][0].update(before=None)),
    ("re-add with a method", lambda doc: doc["calls"][2].update(method="POST")),
    ("re-add of a single value", lambda doc: doc["calls"][2]["changes"][0].update(
        channel="email", before="a@x.io", after="b@x.io")),
    ("unknown call count", lambda doc: doc["summary"]["calls"].update(create_profile=0)),
])
def test_schema_rejects_documents_plan_to_json_cannot_produce(name: str, change: Any) -> None:
    assert errors(mutated(change)), name


def test_printed_json_masks_every_value_unless_asked_and_cannot_be_applied(
        tmp_path: Path) -> None:
    from reconciler.errors import PlanFileError
    from reconciler.planfile import read_plan

    plan = full_plan()
    text = render_json(plan)
    for value in ("alice@example.com", "+919879111111"):
        assert value in render_json(plan, show_values=True)
        assert value not in text
    document = orjson.loads(text)
    assert document["masked"] is True
    assert document["checksum"] == document_of(plan)["checksum"]  # which saved plan it is
    assert [call["changes"][0]["after"] for call in document["calls"][:1]] == ["+91•••••1111"]
    assert b"".join(document_lines(plan, masked=True, checksum="sha256:given")).endswith(
        b'"checksum":"sha256:given"}\n')
    (tmp_path / "printed.json").write_text(text)
    with pytest.raises(PlanFileError, match="masked"):
        read_plan(tmp_path / "printed.json")


def every_kind_of_change() -> list[Change]:
    token = Token("fcm_token:abcdef123456", "I1", 0)
    return [Change("email", None, "alice@example.com"), Change("sms", "+919879000000", None),
            Change("push", None, token), Change("inapp", token, None),
            Change("email", "u1@example.com", "u2@example.com"),  # masks alike: fingerprints
            Change("push", Token("fcm_token:abcdef123456"), token),
            Change("webpush", '{"endpoint":"https://push.example/x"}', None),
            Change("slack", None, "U024BE7LH")]


@pytest.mark.parametrize("change", every_kind_of_change(), ids=str)
def test_a_masked_line_masks_each_change_as_mask_change_json_does(change: Change) -> None:
    call = DeleteTokens("u-1", (change,))
    line = orjson.loads(masked_call_line(call))
    expected = mask_change_json(change.to_json(compact=True))
    if "#" in str(expected):  # a fingerprint is keyed per process: compare its shape
        assert [side.split("#")[0] for side in (line["changes"][0]["before"],
                                                line["changes"][0]["after"])] == [
            expected["before"].split("#")[0], expected["after"].split("#")[0]]
    else:
        assert line["changes"] == [expected]


def test_a_call_line_is_the_calls_json_form() -> None:
    for call in full_plan().calls:
        assert orjson.loads(call_line(call)) == call.to_json()
