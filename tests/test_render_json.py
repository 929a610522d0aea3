"""Specifications of the JSON renderer and of `schemas/plan.schema.json`, which describes it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from reconciler.model import ChannelData
from reconciler.plan import Plan, checksum
from reconciler.planner import diff
from reconciler.render.json import render_json

SCHEMA = orjson.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_bytes())
VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA)


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def full_plan(**options: Any) -> Plan:
    """Every kind of call: PATCH (values, new and updated tokens), Option 2, Option 1, forget."""
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


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema_rs.meta.is_valid(SCHEMA)


@pytest.mark.parametrize("plan", [full_plan(), full_plan(lineage=None, serial=0, targets=(),
                                                         warnings=(), forced=False, calls=())])
def test_rendered_plan_validates_against_the_schema(plan: Plan) -> None:
    assert errors(orjson.loads(render_json(plan))) == []


def test_every_operation_is_exercised_by_the_schema_test() -> None:
    operations = {call["operation"] for call in full_plan().to_json()["calls"]}
    assert operations == {"patch_channel", "delete_tokens", "delete_channels"}


def test_json_round_trips_through_plan_from_json() -> None:
    plan = full_plan()
    assert Plan.from_json(orjson.loads(render_json(plan))) == plan


def test_json_is_the_saved_plan_document_sorted_and_indented() -> None:
    plan = full_plan()
    text = render_json(plan)
    assert text == orjson.dumps(plan.to_json(),
                                option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    document = orjson.loads(text)
    assert list(document) == sorted(document)
    assert document["checksum"] == checksum(document)


def test_json_carries_full_values() -> None:
    text = render_json(full_plan())
    for value in ("alice@example.com", "+919879000000", "+919879111111", "fcm_token:old",
                  "U024BE7LH", "bob@example.org"):
        assert value in text
    assert "•" not in text


def mutated(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(full_plan().to_json())
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
    ("Option 2 body with objects",
     lambda doc: doc["calls"][1]["body"].update(push=[{"token": "fcm_token:old"}])),
    ("unknown channel", lambda doc: doc["calls"][-1]["body"].update(channel=["fax"])),
    ("unknown version", lambda doc: doc.update(version="staging")),
    ("extra field", lambda doc: doc.update(note="hi")),
    ("negative serial", lambda doc: doc["state"].update(serial=-1)),
    ("summary without call counts", lambda doc: doc["summary"].pop("calls")),
])
def test_schema_rejects_documents_plan_to_json_cannot_produce(name: str, change: Any) -> None:
    assert errors(mutated(change)), name
