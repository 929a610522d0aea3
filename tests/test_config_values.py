"""The loader checks phone numbers and e-mail addresses (`reconciler.values`), reports each
bad one with its file, line and column, and reads phone numbers into E.164."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config, loader
from reconciler.errors import ConfigError, Problem

FIXTURES = Path(__file__).parent / "fixtures" / "config"


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config([str(path)])
    return caught.value.problems


# One fixture per failure mode: (fixture, line, column, the whole message).
FAILURES = [
    ("phone_without_country_code.yaml", 5, 10,
     'sms "9879000000" has no country code; write + and the country code before the number: '
     '"+<country code>9879000000", e.g. +1 for the United States, +44 for the United '
     "Kingdom, +91 for India"),
    ("phone_too_short.yaml", 4, 15,
     'whatsapp "+15550001" is too short (a local number: add its area code): a +1 number '
     'has 10 digits after the +1, e.g. "+12015550123"'),
    ("phone_with_letters.yaml", 4, 12,
     'voice "+1-800-FLOWERS" holds "F", which is not part of a phone number; '
     'write "+18003569377"'),
    ("phone_unknown_country_code.yaml", 4, 12,
     'sms "+999 1234 5678" does not start with a country calling code; write + and the '
     'country code, then the number, e.g. "+919879000000"'),
    ("email_without_at_sign.yaml", 5, 12,
     'email "alice.example.com" is not a valid e-mail address: an email address must have '
     "an @-sign; an address has the form name@example.com"),
    ("email_with_display_name.yaml", 3, 16,
     'email "Alice <alice@example.com>" is not a valid e-mail address: a display name and '
     'angle brackets around the email address are not permitted here; did you mean '
     '"alice@example.com"?'),
]


@pytest.mark.parametrize(("fixture", "line", "column", "message"), FAILURES)
def test_each_bad_value_is_reported_with_file_line_column_and_a_suggestion(
    fixture: str, line: int, column: int, message: str
) -> None:
    path = FIXTURES / fixture
    assert problems_of(path) == [Problem(str(path), line, column, message)]


def test_every_bad_value_of_every_profile_is_reported_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "workspace: FYTEST0001\n"
        "profiles:\n"
        "  u-1:\n"
        '    sms: "+15550001"\n'
        '    whatsapp: "+91 98790 00000"\n'
        "    email: alice@example\n"
        "  u-2:\n"
        '    voice: "98790 00000"\n'
        "    email: bob@example.com\n"
        '    slack: "not checked"\n'
        "  u-3: {sms: '+911', email: '@example.com'}\n"
    )
    problems = problems_of(path)
    assert [(problem.line, problem.column, problem.message.split(" ", 2)[:2])
            for problem in problems] == [
        (4, 10, ["sms", '"+15550001"']),
        (6, 12, ["email", '"alice@example"']),
        (8, 12, ["voice", '"98790']),
        (11, 14, ["sms", "\"+911\""]),
        (11, 29, ["email", '"@example.com"']),
    ]


VALID = (
    "workspace: FYTEST0001\n"
    "profiles:\n"
    "  u-1:\n"
    '    sms: "+91 98790 00000"\n'
    '    whatsapp: "+919879000000"\n'
    '    voice: "+1 (201) 555-0123"\n'
    "    email: Alice@EXAMPLE.com\n"
)


def test_phone_numbers_are_read_into_e164_and_addresses_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(VALID)
    config = load_config([str(path)])
    assert dict(config.profiles["u-1"].channels) == {
        "sms": "+919879000000", "whatsapp": "+919879000000", "voice": "+12015550123",
        "email": "Alice@EXAMPLE.com"}


def test_the_fast_and_the_precise_path_read_the_same_values(tmp_path: Path) -> None:
    valid = tmp_path / "valid.yaml"
    valid.write_text(VALID)
    invalid = FIXTURES / "phone_too_short.yaml"
    fast = load_config([str(valid)])
    fast_problems = problems_of(invalid)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "load_fast", lambda text: None)
        assert load_config([str(valid)]) == fast
        assert problems_of(invalid) == fast_problems


def test_the_same_number_written_two_ways_has_one_digest(tmp_path: Path) -> None:
    one, other = tmp_path / "one.yaml", tmp_path / "other.yaml"
    one.write_text(VALID)
    other.write_text(VALID.replace('"+91 98790 00000"', '"+919879000000"'))
    assert load_config([str(one)]).digest == load_config([str(other)]).digest
