"""Specification of `reconciler.values`: phone numbers and e-mail addresses, checked,
normalised and compared by phonenumbers and email-validator."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import values
from reconciler.model import Token
from reconciler.values import (
    canonical,
    desired_value,
    email_problem,
    normal_email,
    normal_phone,
    phone_problem,
    same_channels,
    same_value,
)

# -- phone numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "e164"),
    [("+919879000000", "+919879000000"),
     ("+91 98790 00000", "+919879000000"),
     ("+91-98790-00000", "+919879000000"),
     ("(+91) 98790.00000", "+919879000000"),
     ("+1 (201) 555-0123", "+12015550123"),
     ("+44 (0)20 7946 0000", "+442079460000"),  # the trunk 0 a British number is written with
     ("+39 06 1234 5678", "+390612345678"),  # an Italian number keeps its leading 0
     ("+800 1234 5678", "+80012345678"),  # a country code of no country
     ("\uff0b91 98790 00000", "+919879000000")],  # a full-width plus
)
def test_a_phone_number_written_any_common_way_is_read_as_its_e164_form(
    written: str, e164: str
) -> None:
    assert phone_problem(written) is None
    assert normal_phone(written) == e164
    assert desired_value("sms", written) == (e164, None)


def test_a_possible_number_is_accepted_though_no_operator_was_given_its_range() -> None:
    number = phonenumbers.parse("+15550100001")
    assert not phonenumbers.is_valid_number(number)  # 555-01xx: reserved for fiction
    assert phone_problem("+15550100001") is None


@pytest.mark.parametrize(
    ("written", "problem"),
    [("9879000000",
      'has no country code; write + and the country code before the number: '
      '"+<country code>9879000000", e.g. +1 for the United States, +44 for the United '
      'Kingdom, +91 for India'),
     ("09879000000", 'before the number (without the leading 0): "+<country code>9879000000"'),
     ("00919879000000", 'has no country code; write + instead of the 00 before it: '
      '"+919879000000"'),
     ("+15550001", 'is too short (a local number: add its area code): a +1 number has 10 '
      'digits after the +1, e.g. "+12015550123"'),
     ("+9198790", 'is too short: a +91 number has 8 to 13 digits after the +91'),
     ("+44 7400 123456 789", "is too long: a +44 number has 7, 9 or 10 digits after the +44"),
     ("+911", 'is too short for a phone number; e.g. "+919879000000"'),
     ("+999 1234567", "does not start with a country calling code; write + and the country "
      'code, then the number, e.g. "+919879000000"'),
     ("+1-800-FLOWERS", 'holds "F", which is not part of a phone number; write "+18003569377"'),
     ("+91 98790 00000 ext 12",
      'holds "e", which is not part of a phone number; write "+919879000000"'),
     ("tel:+919879000000", 'holds "t", which is not part of a phone number'),
     ("+91 98790 00000!", 'holds "!", which is not part of a phone number'),
     ("+91abc", 'holds "a", which is not part of a phone number; write + and the country '
      'code, then the number, e.g. "+919879000000"'),
     ("+", "is not a phone number; write + and the country code"),
     ("+49 00 27180", 'holds national prefixes that read two ways ("+49027180", then '
      '"+4927180"); write the number without them')],
)
def test_a_phone_number_that_is_not_possible_is_a_problem_saying_what_to_write(
    written: str, problem: str
) -> None:
    found = phone_problem(written)
    assert found is not None and problem in found
    assert desired_value("voice", written)[1] == found


def test_a_value_that_is_no_phone_number_is_left_as_it_is() -> None:
    for value in ("+1-800-FLOWERS", "tel:+919879000000", "9879000000", "+91abc"):
        assert normal_phone(value) == value


def test_only_phone_channels_are_read_as_phone_numbers() -> None:
    assert desired_value("slack", "9879000000") == ("9879000000", None)
    assert desired_value("teams", "+91 98790 00000") == ("+91 98790 00000", None)
    assert not same_value("slack", "+91 98790 00000", "+919879000000")


# Phone numbers as people write them: a country calling code, digits, separators.
_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@st.composite
def written_phones(draw: st.DrawFn) -> str:
    code = draw(st.sampled_from(_CODES))
    digits = draw(st.text("0123456789", min_size=1, max_size=15))
    separators = draw(st.lists(st.sampled_from(" -.()/\u00a0"), max_size=len(digits)))
    body = list(digits)
    for index, separator in enumerate(separators):
        body.insert(draw(st.integers(0, len(body))) if index else 0, separator)
    plus = draw(st.sampled_from(["+", "+", "\uff0b"]))
    return f"{plus}{code}{''.join(body)}"


@given(written_phones())
def test_a_phone_number_and_its_normal_form_are_the_same_number(written: str) -> None:
    try:
        phonenumbers.parse(written)
    except phonenumbers.NumberParseException:
        return
    normal = normal_phone(written)
    assert same_value("sms", normal, written)
    assert same_value("whatsapp", written, normal)
    assert normal_phone(normal) == normal


@given(st.sampled_from(_CODES), st.lists(st.tuples(st.sampled_from(["", " ", "-"]),
                                                  st.text("0123456789", min_size=1,
                                                          max_size=6)), min_size=1, max_size=6))
def test_the_quick_reading_of_a_grouped_number_agrees_with_the_full_parse(
    code: int, groups: list[tuple[str, str]]
) -> None:
    value = f"+{code}" + "".join(separator + digits for separator, digits in groups)
    quick = values._plain_e164(value.replace(" ", "").replace("-", ""))
    if quick is not None:
        assert quick == values._written_phone(value)


@pytest.mark.parametrize("format_", [phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                                     phonenumbers.PhoneNumberFormat.RFC3966])
def test_a_number_as_a_server_may_format_it_is_the_same_number(format_: int) -> None:
    number = phonenumbers.parse("+919879000000")
    formatted = phonenumbers.format_number(number, format_)
    if format_ == phonenumbers.PhoneNumberFormat.INTERNATIONAL:
        assert formatted == "+91 98790 00000"
        assert same_value("sms", formatted, "+919879000000")
    else:  # "tel:+91-98790-00000": letters, no phone number as written
        assert not same_value("sms", formatted, "+919879000000")


def test_the_canonical_form_is_e164_for_phones_and_the_normal_address_for_email() -> None:
    assert canonical("sms", "+91 98790 00000") == "+919879000000"
    assert canonical("email", "Alice@EXAMPLE.com") == "Alice@example.com"
    assert canonical("slack", "+91 98790 00000") == "+91 98790 00000"


def test_different_numbers_are_different() -> None:
    assert not same_value("sms", "+91 98790 00000", "+919879000001")
    assert not same_value("voice", "+15550100001", "+15550100002")


# -- e-mail addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "problem"),
    [("alice", "is not a valid e-mail address: an email address must have an @-sign; an "
      "address has the form name@example.com"),
     ("alice@example", "the part after the @-sign is not valid. It should have a period"),
     ("alice@@example.com", "the part after the @-sign contains invalid characters: '@'"),
     ("a..b@example.com", "an email address cannot have two periods in a row"),
     ("alice@corp.local", "a special-use or reserved name"),
     (" alice@example.com", 'did you mean "alice@example.com"?'),
     ("mailto:alice@example.com", 'did you mean "alice@example.com"?'),
     ("Alice <alice@example.com>", "a display name and angle brackets around the email "
      'address are not permitted here; did you mean "alice@example.com"?')],
)
def test_an_address_that_is_not_valid_is_a_problem_saying_what_is_wrong(
    written: str, problem: str
) -> None:
    found = email_problem(written)
    assert found is not None and problem in found
    assert desired_value("email", written) == (written, found)


def test_an_address_is_checked_without_asking_dns() -> None:
    # No such domain exists; only its syntax is checked.
    assert email_problem("someone@no-such-domain-for-reconciler-tests.example") is None


def test_an_address_is_sent_as_written_and_compared_with_its_domain_in_any_case() -> None:
    assert desired_value("email", "Alice@EXAMPLE.com") == ("Alice@EXAMPLE.com", None)
    assert normal_email("Alice@EXAMPLE.com") == "Alice@example.com"
    assert same_value("email", "Alice@EXAMPLE.com", "Alice@example.com")
    assert not same_value("email", "Alice@example.com", "alice@example.com")
    assert same_value("email", "ålice@exämple.com", "ålice@EXÄMPLE.com")


_ATEXT = "abcXYZ019.!#$%&'*+/=?^_`{|}~-@ "


@given(st.one_of(st.emails(),
                 st.text(_ATEXT, max_size=20).map(lambda local: f"{local}@example.com"),
                 st.builds(lambda local, domain: f"{local}@{domain}",
                           st.text(_ATEXT, min_size=1, max_size=8),
                           st.sampled_from(["example.com", "EXAMPLE.com", "localhost",
                                            "corp.local", "xn--exmple-cua.com", "a..b",
                                            "-a.com", "a.123", "b" * 64 + ".com"]))))
def test_the_quick_check_of_an_address_agrees_with_the_full_one(address: str) -> None:
    quick = values._plain_email(address)
    if quick is not None:
        assert quick == values._written_email(address)


def test_the_quick_paths_serve_the_common_values(monkeypatch: pytest.MonkeyPatch) -> None:
    def unexpected(value: str) -> None:
        raise AssertionError(f"{value} took the slow path")

    monkeypatch.setattr(values, "_written_phone", unexpected)
    monkeypatch.setattr(values, "_written_email", unexpected)
    read = values._phone.__wrapped__
    assert read("+919879000000") == read("+91 98790 00000") == ("+919879000000", None)
    assert read("+1 201-555-0123") == ("+12015550123", None)
    assert values._email.__wrapped__("user.1@EXAMPLE.com") == ("user.1@example.com", None)


def test_a_long_address_goes_to_the_full_check() -> None:
    address = "a" * 250 + "@example.com"
    assert values._plain_email(address) is None
    assert email_problem(address) is not None


# -- channels ----------------------------------------------------------------------------------


def test_channels_are_the_same_when_each_value_is_the_same() -> None:
    push = (Token("t1"),)
    assert same_channels({"sms": "+919879000000", "push": push},
                         {"sms": "+91 98790 00000", "push": push})
    assert not same_channels({"sms": "+919879000000"}, {"sms": "+919879000000", "push": push})
    assert not same_channels({"push": push}, {"push": (Token("t1", status=0),)})
    assert not same_channels({"email": "a@example.com"}, {"email": "b@example.com"})
