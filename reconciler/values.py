"""Phone numbers and e-mail addresses: checked, normalised and compared by well-kept libraries.

`phonenumbers` (Google's libphonenumber) reads a phone number written in any common way and
gives its E.164 form; `email-validator` checks an address's syntax (never DNS). The loader
reads every value of the configuration with `desired_value`: what is wrong with it (as
`phone_problem` and `email_problem` say), and what it means (a phone number in E.164, which
is what a PATCH sends). The planner and the drift report compare values with
`same_value`, so that "+91 98790 00000" and "+919879000000" are one number whichever form
the configuration uses or the server stores (whether Fyno reformats what it stores is an
UNKNOWN of its API). A recorded value is compared by meaning, never rewritten: the state
records what the server holds.

Decisions:
- A phone number is written with + and its country code; spaces, dashes, dots, slashes and
  brackets may separate its digits. Letters, extensions and other characters are refused,
  although the library would read "+1-800-FLOWERS" or drop "ext 12": a configuration should
  say exactly the number it sends.
- A phone number must be *possible* (a length its country's numbers have), not *valid* (in
  a range allocated today): allocations change every month, and test numbers such as
  +1 555 0100 xxx are possible but never allocated.
- An e-mail address is compared in email-validator's normalised form: the domain in lower
  case (IDNA), the local part as written (a mail server may tell its cases apart). Desired
  addresses are sent as written.

Speed: a plan of 100,000 profiles checks 100,000 numbers and addresses, and the libraries
take about 60 µs for each, mostly spent finding a number or an address in free text. A
number in E.164 or in the library's international format (digits grouped by spaces or
dashes), or an ASCII address whose domain was checked before, takes a path of a few µs that
asks the libraries only what the free-text reading leaves to decide (the number's possible
lengths, the domain), and gives the same answer: `tests/test_values.py` compares both
paths. Results are cached, in bounded caches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Final, NamedTuple

from reconciler.model import ChannelValue

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

PHONE_CHANNELS: Final = frozenset({"sms", "whatsapp", "voice"})
EMAIL_CHANNEL: Final = "email"
_READ: Final = PHONE_CHANNELS | {EMAIL_CHANNEL}
CACHE_SIZE: Final = 8_192
"""Values kept read, per kind: a number repeated (the same for sms and whatsapp), or read
again by the planner. Small on purpose: 100,000 distinct values, each read once, would only
fill it and hold memory."""

EXAMPLE_PHONE: Final = "+919879000000"
"""Fyno's own example of a phone number."""
_E164: Final = re.compile(r"\+[1-9][0-9]{2,16}")  # ASCII digits only: "+" and 3 to 17 digits
_GROUPED: Final = re.compile(r"\+[1-9][0-9]*(?:[ -][0-9]+)*")  # "+1 201-555-0123" too
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM: Final = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")  # RFC 5322 3.2.3, ASCII
_MAX_EMAIL_LENGTH: Final = 254  # RFC 5321, as email-validator counts it
_SEPARATOR_CATEGORIES: Final = frozenset({"Zs", "Pd", "Ps", "Pe"})  # spaces, dashes, brackets


class _Read(NamedTuple):
    """What a value reads as: its normal form (None: it cannot be read) and its problem."""

    normal: str | None
    problem: str | None


# --- the interface -------------------------------------------------------------------------


def phone_problem(value: str) -> str | None:
    """What is wrong with `value` as a phone number, with what to write instead; None if
    nothing. The text follows the value in a message: 'sms "+1555" <problem>'."""
    return _phone(value).problem


def normal_phone(value: str) -> str:
    """`value` in E.164 when it reads as a phone number (see the module's decisions), else
    `value` unchanged."""
    normal = _phone(value).normal
    return value if normal is None else normal


def email_problem(value: str) -> str | None:
    """What is wrong with `value` as an e-mail address (syntax only, no DNS look-up), with a
    suggestion; None if nothing."""
    return _email(value).problem


def normal_email(value: str) -> str:
    """`value` with its domain normalised when it is a valid address, else unchanged."""
    normal = _email(value).normal
    return value if normal is None else normal


def desired_value(channel: str, value: str) -> tuple[str, str | None]:
    """The value the configuration means by `value` (phones in E.164, the rest as written)
    and what is wrong with it (None: nothing)."""
    if channel in PHONE_CHANNELS:
        normal, problem = _phone(value)
        return (value if normal is None else normal), problem
    if channel == EMAIL_CHANNEL:
        return value, _email(value).problem
    return value, None


def means_itself(channel: str, value: str) -> bool:
    """Whether `desired_value(channel, value)` is `(value, None)`: a valid value that means
    what is written. A phone in E.164 and a plain address are decided without the caches,
    which 100,000 distinct values, each read once, would only churn."""
    if channel in PHONE_CHANNELS:
        read = _plain_e164(value) or _phone(value)
        return read.problem is None and read.normal == value
    if channel == EMAIL_CHANNEL:
        return (_plain_email(value) or _email(value)).problem is None
    return True


def canonical(channel: str, value: str) -> str:
    """The form in which values of `channel` are compared: phones in E.164, e-mail addresses
    normalised, anything else as written."""
    if channel in PHONE_CHANNELS:
        return normal_phone(value)
    if channel == EMAIL_CHANNEL:
        return normal_email(value)
    return value


def same_value(channel: str, one: str, other: str) -> bool:
    """Whether two values of `channel` mean the same destination: phones by E.164, e-mail
    addresses by their normalised form, anything else exactly."""
    if one == other:
        return True
    return channel in _READ and canonical(channel, one) == canonical(channel, other)


def same_channels(one: Mapping[str, ChannelValue], other: Mapping[str, ChannelValue]) -> bool:
    """Whether two `channel` mappings hold the same data, single values by `same_value`
    (tokens exactly, in order)."""
    if one == other:
        return True
    if one.keys() != other.keys():
        return False
    for channel, value in one.items():
        held = other[channel]
        if value == held:
            continue
        if not (isinstance(value, str) and isinstance(held, str)
                and same_value(channel, value, held)):
            return False
    return True


# --- phone numbers -------------------------------------------------------------------------


@lru_cache(maxsize=CACHE_SIZE)
def _phone(value: str) -> _Read:
    # E.164 first: most numbers are written so, and it is one match instead of three steps.
    if _E164.fullmatch(value) or _GROUPED.fullmatch(value):
        read = _plain_e164(value.replace(" ", "").replace("-", ""))
        if read is not None:
            return read
    read = _written_phone(value)
    if read.normal is not None and read.normal != value:
        # The library strips one national prefix per reading: "+49 00 27180" reads as
        # +49027180, which reads as +4927180. The normal form is where readings stop (so
        # that it is one for every way of writing the number), and a configuration must
        # not leave the reader to choose.
        again = _phone(read.normal)  # one digit shorter at least: the recursion ends
        if again.normal != read.normal:
            return _Read(again.normal, read.problem or (
                f'holds national prefixes that read two ways ("{read.normal}", then '
                f'"{again.normal}"); write the number without them'))
    return read


def _plain_e164(value: str) -> _Read | None:
    """`value` ("+" and digits: what is left of a number in E.164 or grouped as the
    library's international format groups it) read as `phonenumbers.parse` reads it, or
    None when only the full parse can tell: the parse finds the country code in the first 1
    to 3 digits and, when the rest starts with its country's national prefix (a trunk 0,
    say), may strip that prefix; a national number starting with 0 keeps its zero apart."""
    if not _E164.fullmatch(value):
        return None
    found = _country_code(value[1:4])
    if found is None:
        return None
    code, size, prefix = found
    national = value[1 + size:]
    if len(national) < 2 or national[0] == "0" or prefix is None or prefix.match(national):
        return None
    return _Read(value, _impossible_length(code, len(national)))


@cache
def _country_code(head: str) -> tuple[int, int, re.Pattern[str] | None] | None:
    """The country calling code that a number whose first digits are `head` starts with (as
    `phonenumbers.parse` looks it up: the shortest that is one), its number of digits, and
    its `_national_prefix`; None when none of 1 to 3 digits is a code. At most 1,000 heads:
    looked up once each, not once per number."""
    codes = _country_codes()
    for size in (1, 2, 3):
        code = codes.get(head[:size])
        if code is not None:
            return code, size, _national_prefix(code)
    return None


@cache
def _impossible_length(code: int, length: int) -> str | None:
    """`_impossible` for every national number of this length: libphonenumber's possible
    numbers depend on their length only, not on their digits (its documentation says so)."""
    import phonenumbers

    number = phonenumbers.PhoneNumber(country_code=code, national_number=int("9" * length))
    return _impossible(number)


@cache
def _country_codes() -> Mapping[str, int]:
    """Country calling codes by their digits, as `phonenumbers.parse` looks them up."""
    import phonenumbers  # on first use only: most commands never read a phone number

    return {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


@cache
def _national_prefix(code: int) -> re.Pattern[str] | None:
    """The pattern of a national prefix the parse strips, for a country calling code;
    None when the country's metadata is missing (the full parse then decides)."""
    import phonenumbers

    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return None
    pattern = metadata.national_prefix_for_parsing
    return re.compile(pattern or "(?!)")  # (?!) never matches: nothing to strip


def _is_separator(char: str) -> bool:
    return char in "./" or unicodedata.category(char) in _SEPARATOR_CATEGORIES


def _written_phone(value: str) -> _Read:
    """Any phone number as written: separators allowed, read by `phonenumbers.parse`."""
    import phonenumbers

    text = "".join(char for char in value if not _is_separator(char))
    plus = text[:1] in ("+", "\uff0b")  # the full-width plus is a plus to the library
    digits = text[1:] if plus else text
    odd = next((char for char in digits if not char.isdecimal()), None)
    failure = phonenumbers.NumberParseException.NOT_A_NUMBER
    try:
        number: PhoneNumber | None = phonenumbers.parse(value)
    except phonenumbers.NumberParseException as error:
        number, failure = None, error.error_type
    normal = None
    if number is not None and not number.extension:
        normal = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if odd is not None or not digits:
        what = f"holds {_quoted(odd)}, which is not part of" if odd is not None else "is not"
        return _Read(None, f"{what} a phone number; {_instead(number)}")
    if not plus:
        return _Read(None, _no_country_code(digits))
    if number is None:
        return _Read(None, _unreadable(failure))
    return _Read(normal, _impossible(number))


def _instead(number: PhoneNumber | None) -> str:
    """What to write: the number the library read, when it is a possible one."""
    import phonenumbers

    if number is not None and _impossible(number) is None:
        return f'write "{phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)}"'
    return f'write + and the country code, then the number, e.g. "{EXAMPLE_PHONE}"'


def _no_country_code(digits: str) -> str:
    if digits.startswith("00"):  # the international prefix of most countries
        international = "+" + digits[2:]
        if _phone(international).problem is None:
            return f'has no country code; write + instead of the 00 before it: "{international}"'
    national = digits[1:] if digits.startswith("0") else digits
    trunk = " (without the leading 0)" if national is not digits else ""
    return (f'has no country code; write + and the country code before the number{trunk}: '
            f'"+<country code>{national}", e.g. +1 for the United States, +44 for the '
            f'United Kingdom, +91 for India')


def _unreadable(failure: int) -> str:
    import phonenumbers

    errors = phonenumbers.NumberParseException
    if failure == errors.INVALID_COUNTRY_CODE:
        return ("does not start with a country calling code; write + and the country code, "
                f'then the number, e.g. "{EXAMPLE_PHONE}"')
    what = "too long" if failure == errors.TOO_LONG else "too short"
    return f'is {what} for a phone number; e.g. "{EXAMPLE_PHONE}"'


def _impossible(number: PhoneNumber) -> str | None:
    """Why `number` is not a possible number (libphonenumber's lengths), or None."""
    import phonenumbers

    reason = phonenumbers.is_possible_number_with_reason(number)
    result = phonenumbers.ValidationResult
    if reason == result.IS_POSSIBLE:
        return None
    code = number.country_code
    if reason == result.INVALID_COUNTRY_CODE:
        return (f"does not start with a country calling code (+{code} is none); write + and "
                f'the country code, then the number, e.g. "{EXAMPLE_PHONE}"')
    what = {result.TOO_LONG: "too long", result.INVALID_LENGTH: "of no possible length"}.get(
        reason, "too short")
    local = ""
    if reason == result.IS_POSSIBLE_LOCAL_ONLY:
        local = " (a local number: add its area code)"
    lengths, example = _country(code)
    return (f"is {what}{local}: a +{code} number has {lengths} digits after the +{code}"
            + (f', e.g. "{example}"' if example else ""))


@cache
def _country(code: int) -> tuple[str, str | None]:
    """The possible lengths of a country calling code's national numbers, as words, and an
    example of its numbers in E.164 (a mobile one where there is one)."""
    import phonenumbers

    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    lengths = sorted({n for n in metadata.general_desc.possible_length if n > 0}) if (
        metadata is not None and metadata.general_desc is not None) else []
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        example = phonenumbers.example_number_for_non_geo_entity(code)
    else:
        example = (phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
                   or phonenumbers.example_number(region))
    shown = None if example is None else phonenumbers.format_number(
        example, phonenumbers.PhoneNumberFormat.E164)
    return _lengths(lengths), shown


def _lengths(lengths: list[int]) -> str:
    if not lengths:
        return "another number of"
    if len(lengths) == 1:
        return str(lengths[0])
    if lengths == list(range(lengths[0], lengths[-1] + 1)):
        return f"{lengths[0]} to {lengths[-1]}"
    return ", ".join(map(str, lengths[:-1])) + f" or {lengths[-1]}"


def _quoted(char: str) -> str:
    if char.isprintable() and char != '"':
        return f'"{char}"'
    return f"U+{ord(char):04X}"


# --- e-mail addresses ----------------------------------------------------------------------


@lru_cache(maxsize=CACHE_SIZE)
def _email(value: str) -> _Read:
    return _plain_email(value) or _written_email(value)


def _plain_email(value: str) -> _Read | None:
    """An ASCII dot-atom local part (which email-validator accepts as it is) and a domain it
    accepted before; None when only the full check can tell."""
    if not value.isascii() or len(value) > _MAX_EMAIL_LENGTH:
        return None
    local, at, domain = value.rpartition("@")
    if not at or not _DOT_ATOM.fullmatch(local):
        return None
    normal = _domain(domain)
    if normal is None or not normal.isascii():
        return None
    return _Read(f"{local}@{normal}", None)


@lru_cache(maxsize=4_096)
def _domain(domain: str) -> str | None:
    """A domain in email-validator's normal form, or None if it refuses it."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def _written_email(value: str) -> _Read:
    from email_validator import EmailNotValidError, validate_email

    try:
        return _Read(validate_email(value, check_deliverability=False).normalized, None)
    except EmailNotValidError as error:
        reason = str(error).rstrip(".")
        first = reason.split(" ", 1)[0]
        if len(first) == 1 or not first.isupper():  # "A display name", not "IDNA"
            reason = reason[0].lower() + reason[1:]
        return _Read(None, f"is not a valid e-mail address: {reason}; {_email_instead(value)}")


def _email_instead(value: str) -> str:
    """A repair of a common slip that makes a valid address, or the form to follow."""
    inside = value[value.find("<") + 1:value.rfind(">")] if "<" in value else value
    for repaired in (value.strip(), value.strip().removeprefix("mailto:"), inside.strip(),
                     "".join(value.split())):
        if repaired != value and repaired and _email(repaired).problem is None:
            return f'did you mean "{repaired}"?'
    return "an address has the form name@example.com"
