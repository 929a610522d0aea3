"""`schemas/profiles.schema.json` agrees with the loader, and the precise path's YAML rules."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from reconciler.config import load_config, schema
from reconciler.config.findings import Finding
from reconciler.config.limits import (
    MAX_DISTINCT_ID_LENGTH,
    MAX_VALUE_LENGTH,
    MAX_WORKSPACE_LENGTH,
    TEXT_PATTERN,
    WORKSPACE_PATTERN,
)
from reconciler.config.precise import ALIAS_BUDGET, parse_precise
from reconciler.config.schema import schema_findings
from reconciler.errors import ConfigError
from reconciler.model import ChannelData, Token

SCHEMA = Path(__file__).parent.parent / "schemas" / "profiles.schema.json"


def validator() -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))


def test_schema_accepts_the_documented_example() -> None:
    document = {
        "workspace": "FYXXXXXXXX",
        "version": "live",
        "profiles": {
            "u-1001": {
                "email": "alice@example.com",
                "sms": "+919879000000",
                "push": [
                    {"token": "fcm_token:abc", "integration_id": "IXXXXXXX", "status": 1},
                    "apns_token:def",
                ],
                "inapp": [{"token": "u-1001"}],
            },
            "u-1002": {},
        },
    }
    assert validator().is_valid(document)


@pytest.mark.parametrize(
    "profile",
    [
        {"sms": 919879000000},
        {"emial": "a@b"},
        {"push": [""]},
        {"push": [{"token": "a", "status": 2}]},
        {"push": [{"token": "a", "integration": "I"}]},
        {"push": [{"integration_id": "I"}]},
        {"push": "fcm:abc"},
    ],
)
def test_schema_rejects_what_the_checks_reject(profile: dict[str, object]) -> None:
    assert not validator().is_valid({"profiles": {"u-1": profile}})


def test_schema_states_the_limits_of_the_loader() -> None:
    schema = json.loads(SCHEMA.read_text())
    token = schema["$defs"]["token"]["oneOf"]
    texts = [
        schema["properties"]["profiles"]["propertyNames"], schema["$defs"]["single"], token[0],
        token[1]["properties"]["token"], token[1]["properties"]["integration_id"],
    ]
    assert schema["properties"]["workspace"]["maxLength"] == MAX_WORKSPACE_LENGTH
    assert schema["properties"]["workspace"]["pattern"] == WORKSPACE_PATTERN
    assert texts[0]["maxLength"] == MAX_DISTINCT_ID_LENGTH
    assert {text["maxLength"] for text in texts[1:]} == {MAX_VALUE_LENGTH}
    assert {text["pattern"] for text in texts} == {TEXT_PATTERN}


@pytest.mark.parametrize(
    "document",
    [
        {"workspace": "FY\x00", "profiles": {}},
        {"workspace": "a/b", "profiles": {}},
        {"workspace": "W" * 51, "profiles": {}},
        {"profiles": {"u\x1b": {}}},
        {"profiles": {"u" * 2049: {}}},
        {"profiles": {"u": {"email": "a\u2028"}}},
        {"profiles": {"u": {"email": "a" * 4097}}},
        {"profiles": {"u": {"push": ["t\x85"]}}},
        {"profiles": {"u": {"push": [{"token": "t", "integration_id": "i\n"}]}}},
    ],
)
def test_schema_rejects_what_the_limits_reject(document: dict[str, object]) -> None:
    assert not validator().is_valid(document)


def test_schema_error_on_a_branch_the_checks_reported_is_dropped() -> None:
    data = {"profiles": {"u-1": {"sms": 1}}, "extra": 1}
    custom = [Finding(("profiles", "u-1", "sms"), "clearer message")]
    findings = schema_findings(data, custom)
    assert findings == [Finding(("extra",), 'extra: "extra" is not allowed here (schema)', True)]


def test_items_the_checks_reported_are_left_out_and_the_rest_keep_their_index() -> None:
    data = {"profiles": {"u-1": {"push": [1, "ok", {"token": "t", "bogus": 1}]}}}
    findings = schema_findings(data, [Finding(("profiles", "u-1", "push", 0), "a number")])
    assert [finding.path for finding in findings] == [("profiles", "u-1", "push", 2)]


def test_a_hundred_thousand_problems_make_no_schema_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each covered item left in place would be one schema error to drop: seconds, gigabytes.
    seen: list[object] = []
    real = schema._validator()

    class Recording:
        def iter_errors(self, instance: object) -> object:
            seen.append(instance)
            return real.iter_errors(instance)

    monkeypatch.setattr(schema, "_validator", Recording)
    data = {"profiles": {"u-1": {"push": [1] * 100_000}}}
    custom = [Finding(("profiles", "u-1", "push", index), "a number") for index in range(100_000)]
    assert schema_findings(data, custom) == []
    assert seen == [{"profiles": {"u-1": {"push": []}}}]


def test_reported_problem_is_the_custom_message_alone(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("workspace: FYW\nprofiles:\n  u-1:\n    sms: +91\n")
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    assert [problem.message for problem in caught.value.problems] == [
        'sms: +91 is read by YAML as the number 91, not text; quote it: "+91"'
    ]


def test_aliases_are_resolved_on_the_precise_path(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "workspace: FYW\nprofiles:\n  u-1: &shared\n    push: [&t fcm:abc]\n"
        "  u-2: *shared\n  u-3:\n    inapp: [*t]\n"
    )
    profiles = load_config([path]).profiles
    push = ChannelData({"push": (Token("fcm:abc"),)})
    inapp = ChannelData({"inapp": (Token("fcm:abc"),)})
    assert profiles == {"u-1": push, "u-2": push, "u-3": inapp}


def test_alias_expansion_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    document = parse_precise("\n".join(lines) + "\n")
    assert any(f"more than {ALIAS_BUDGET:,} nodes" in p.message for p in document.problems)


def test_schema_ships_inside_the_package() -> None:
    from importlib import resources

    text = resources.files("reconciler").joinpath("schemas/profiles.schema.json").read_text()
    assert json.loads(text)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
