"""`schemas/profiles.schema.json` agrees with the loader, and the precise path's YAML rules."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from reconciler.config import load_config
from reconciler.config.findings import Finding
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


def test_schema_error_on_a_branch_the_checks_reported_is_dropped() -> None:
    data = {"profiles": {"u-1": {"sms": 1}}, "extra": 1}
    custom = [Finding(("profiles", "u-1", "sms"), "clearer message")]
    findings = schema_findings(data, custom)
    assert findings == [Finding(("extra",), 'extra: "extra" is not allowed here (schema)', True)]


def test_reported_problem_is_the_custom_message_alone(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("workspace: W\nprofiles:\n  u-1:\n    sms: +91\n")
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    assert [problem.message for problem in caught.value.problems] == [
        'sms: +91 is read by YAML as the number 91, not text; quote it: "+91"'
    ]


def test_aliases_are_resolved_on_the_precise_path(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "workspace: W\nprofiles:\n  u-1: &shared\n    push: [&t fcm:abc]\n"
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
