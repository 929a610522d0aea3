"""What a plain YAML scalar means, and how to tell a user that it is not text.

This is the single source of truth for "what is not a string" in the desired state. It
follows the YAML 1.2 core schema (spec 10.3.2), which is what YAML 1.2 editors and
yaml-language-server apply: `true`, `null`, `~`, `12`, `+12`, `0123`, `0x1F`, `0o17`, `1e3`,
`.inf` are not text; `yes`, `no`, `on`, `2024-01-01`, `1:20`, `1_000`, `0b101` are. Quoted and
block scalars are always text. Keys never go through here: they are taken as source text.

The fast path (yaml_rs) resolves a superset of these forms to non-strings; that direction is
safe, because any non-string it reports only sends the file to the precise path, which asks
this module. `tests/test_config_scalars.py` pins that every form resolved here as non-text is
also non-text for yaml_rs.
"""

from __future__ import annotations

import math
import re
from typing import Final

import orjson

from reconciler.config.limits import SHOWN_LENGTH, shown

_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS: Final = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_DECIMAL: Final = re.compile(r"[-+]?[0-9]+\Z")
_OCTAL: Final = re.compile(r"0o[0-7]+\Z")
_HEX: Final = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INFINITY: Final = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN: Final = frozenset({".nan", ".NaN", ".NAN"})
# Every non-text form starts with one of these; checking it first keeps the common case
# (emails, tokens, ids) to one set lookup.
_MAYBE_NOT_TEXT: Final = frozenset("-+.0123456789~nNtTfF")

Scalar = str | int | float | bool | None


def _decimal_integer(text: str) -> int | float:
    """The integer `text` (digits with an optional sign), or an infinity of its sign when it
    has more digits than Python converts (4,300 by default): it is a number all the same,
    and never a valid value; messages show its source text, not this value."""
    try:
        return int(text)
    except ValueError:
        return -math.inf if text[0] == "-" else math.inf


def resolve_plain(text: str) -> Scalar:
    """The value of an untagged plain scalar under the YAML 1.2 core schema."""
    if text and text[0] not in _MAYBE_NOT_TEXT:
        return text
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _DECIMAL.match(text):
        return _decimal_integer(text)
    if _OCTAL.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INFINITY.match(text):
        return -math.inf if text[0] == "-" else math.inf
    if text in _NAN:
        return math.nan
    return text


def kind_of(value: object) -> str:
    """A short noun for what YAML made of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return "text" if isinstance(value, str) else type(value).__name__


def number_text(value: int | float) -> str:
    """`str(value)` cut to a readable length; in hex for an integer too long for Python's
    decimal conversion (whose limit, 4,300 digits by default, raises ValueError)."""
    try:
        text = str(value)
    except ValueError:  # only an int can be too long
        assert isinstance(value, int)
        text = hex(value)
    return text if len(text) <= SHOWN_LENGTH else shown(text, count=False).strip('"')


def _as_yaml_reads_it(value: object, written: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if len(written) > SHOWN_LENGTH:
        return "a number"  # the number itself, written out, would only repeat the source
    if isinstance(value, float):
        if math.isnan(value):
            return "the number NaN"
        if math.isinf(value):
            return "the number " + ("-infinity" if value < 0 else "infinity")
    if isinstance(value, int | float):
        return f"the number {number_text(value)}"
    return kind_of(value)


def not_text_message(
    label: str, value: object, source: str | None, *, if_empty: str = "give it a value"
) -> str:
    """Explain that a scalar is not text, showing the quoted form that would make it text.

    `source` is the scalar as written, known on the precise path; the fast path never needs
    a message (any problem sends the file to the precise path), so it falls back to the value.
    `if_empty` says what to do about a key written with no value at all.
    """
    if not isinstance(value, int | float | None):  # a mapping, a list, anything else
        return f"{label} must be text, not {kind_of(value)}"
    written = source if source is not None else ("" if value is None else number_text(value))
    if value is None:
        return _null_message(label, written, if_empty)
    reads = _as_yaml_reads_it(value, written)
    if len(written) > SHOWN_LENGTH:
        return (
            f"{label}: {shown(written)} is read by YAML as {reads}, not text; quote it if it "
            "is text"
        )
    quoted = orjson.dumps(written).decode()
    return f"{label}: {written} is read by YAML as {reads}, not text; quote it: {quoted}"


def _null_message(label: str, written: str, if_empty: str) -> str:
    """A null says what to write for "no value" (`email: ""` declares the channel empty).

    `~` is only ever YAML's spelling of null, never meant as text: quoting it would suggest
    the value `"~"`. A word (`null`, `NULL`) may be meant as text, so its quoted form is
    offered as well.
    """
    if written == "":
        return f"{label} has no value (YAML reads it as null); {if_empty}"
    said = f"{label}: {written} is read by YAML as null, not text; {if_empty}"
    if written.isalpha():
        return f"{said}, or quote it if it is text: {orjson.dumps(written).decode()}"
    return said
