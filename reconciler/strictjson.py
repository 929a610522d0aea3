"""Reading back the JSON files the tool wrote: parsed strictly, checked against their schema.

Every file read back (the state, a saved plan, the audit ledger's records) goes through
`loads`, and then through `schema_problems` with the `validator` of its schema, before
anything is built from it. The problems name the place (a JSON pointer) and what is wrong,
never the value: values are personal data (emails, phone numbers, tokens).

Repeated keys.

orjson, like most parsers, keeps the last of two equal keys without a word: a state holding
`"profiles"` twice is read as its second half, and the next save drops the first. No file
this tool writes ever repeats a key, so a repeated key means a hand edit or a bad merge, and
every value it hides is one that some other reader (a person, `jq`, a first-wins parser)
believes. `loads` parses with orjson and proves the absence of repeated keys cheaply:

    the colons of the input (members, plus colons inside strings, plus `\\u003a` escapes)
    equal the colons of orjson's re-serialization of what it parsed

orjson never escapes a colon, and every string it parsed comes from the input with the same
colons, so the two counts are equal exactly when no member was dropped (a `\\u003a` that is
really an escaped backslash followed by `u003a` only makes the input count larger). That
costs about 6% of a 100,000-profile state load (bench/state_scale.py). Only when the counts
differ is the input parsed again, slowly, to find which key is repeated and where.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema_rs
import orjson

SHOWN_LENGTH: Final = 60
MAX_REPORTED_PROBLEMS: Final = 5


class JSONError(ValueError):
    """A file read back is not valid JSON; the message names the file and the place."""


class DuplicateKeyError(JSONError):
    """An object of the file holds a key twice; `pointer` is the repeated member's place."""

    def __init__(self, message: str, key: str, pointer: str) -> None:
        super().__init__(message)
        self.key = key
        self.pointer = pointer


def loads(data: bytes, *, what: str) -> Any:
    """The JSON value of `data`, refusing invalid JSON and any object that repeats a key.

    `what` names the input in messages ("state state/FY1-live.json", "audit.jsonl:12").
    Raises `JSONError`, or its subclass `DuplicateKeyError`.
    """
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise JSONError(f"{what} is not valid JSON: {err.msg} at line {err.lineno} "
                        f"column {err.colno}") from None
    try:
        unique = _colons(data) == orjson.dumps(document).count(b":")
    except orjson.JSONEncodeError:  # not expected of what orjson parsed: check the slow way
        unique = False
    if not unique:
        _raise_first_duplicate(data, what)
    return document


def pointer(path: Sequence[str | int]) -> str:
    """An RFC 6901 JSON pointer ("" is the whole document), unambiguous whatever keys hold."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@cache
def validator(schema: str, definition: str | None = None) -> Any:
    """The validator of `schemas/<schema>` (as installed with the package), or of one of its
    `$defs` (`definition`: e.g. the state's "channel", for a journal's events), built once."""
    document = orjson.loads((resources.files("reconciler") / "schemas" / schema).read_bytes())
    if definition is not None:
        document = {"$schema": document["$schema"], "$defs": document["$defs"],
                    "$ref": f"#/$defs/{definition}"}
    return jsonschema_rs.validator_for(document, validate_formats=True)


def schema_problems(checker: Any, document: Any) -> list[str]:
    """What makes `document` fail `checker` (a `validator`), at most a few, each with its
    place; empty when it passes."""
    try:
        if checker.is_valid(document):  # the common case, at a third of the cost of listing
            return []
    except UnicodeEncodeError:  # never from a file read back: JSON text holds no lone surrogate
        return ["at the top level: holds text that is not Unicode (a lone surrogate, as a "
                "command-line argument that is not UTF-8 gives)"]
    problems: list[str] = []
    for error in checker.iter_errors(document):
        if len(problems) == MAX_REPORTED_PROBLEMS:
            problems.append("(further problems not shown)")
            break
        where = pointer(error.instance_path) or "the top level"
        problems.append(f"at {_cut(where, 2 * SHOWN_LENGTH)}: {_described(error)}")
    return problems


def quoted(text: str, limit: int = SHOWN_LENGTH) -> str:
    """`text` as a JSON string (control characters escaped), cut in the middle if long."""
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]}…{text[-half:]}"
    return json.dumps(text, ensure_ascii=False)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}…{text[-half:]}"


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number" if isinstance(value, float) and not value.is_integer() else "an integer"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def shown_json(value: Any) -> str:
    """`value` as JSON, cut in the middle if long: for values that are not personal."""
    return _cut(orjson.dumps(value).decode(), SHOWN_LENGTH)


def _described(error: Any) -> str:
    """What `error` (a jsonschema_rs ValidationError) found wrong, without the value itself,
    which the library's own message quotes."""
    kind = error.kind
    name = kind.name
    details = kind.as_dict()
    if name == "type":
        types = " or ".join("null" if t == "null" else f"{'an' if t[0] in 'aeiou' else 'a'} {t}"
                            for t in details["types"])
        return f"{_kind_of(error.instance)} where {types} is expected"
    if name == "enum":
        return "not one of " + ", ".join(shown_json(option) for option in details["options"])
    if name == "const":
        return f"not {shown_json(details['expected_value'])}"
    if name == "required":
        return f"the member {quoted(details['property'])} is missing"
    if name == "additionalProperties":
        unexpected = [quoted(key) for key in details["unexpected"]]
        return "unexpected member " + ", ".join(unexpected[:3]) + (
            f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else "")
    if name == "propertyNames":
        nested = kind.error
        return f"the key {quoted(str(nested.instance))} is not allowed: {_described(nested)}"
    if name == "minLength":
        return "an empty string" if details["limit"] == 1 else (
            f"shorter than {details['limit']} characters")
    if name == "maxLength":
        return f"longer than {details['limit']} characters"
    if name == "pattern":
        return _pattern_problem(error.instance, details["pattern"])
    if name == "minItems":
        return "an empty array" if details["limit"] == 1 else (
            f"fewer than {details['limit']} items")
    if name == "minProperties":
        return "an empty object"
    if name == "uniqueItems":
        return "the same item appears twice"
    if name in ("minimum", "maximum"):
        side = "below the minimum" if name == "minimum" else "above the maximum"
        return f"{_kind_of(error.instance)} {side} {details['limit']}"
    if name == "format":
        return f"not a valid {details['format']}"
    if name in ("anyOf", "oneOfNotValid"):
        return f"{_kind_of(error.instance)} that matches none of the allowed forms"
    if name == "not":
        return f"{_kind_of(error.instance)} of a form that is not allowed here"
    return f"does not match the schema ({name})"


def _pattern_problem(text: Any, pattern: str) -> str:
    """Why `text` fails `pattern`; for a pattern of forbidden characters (`^[^...]*$`, as for
    ids and workspaces), which character it holds."""
    if isinstance(text, str) and pattern.startswith("^[^") and pattern.endswith("]*$"):
        allowed = re.compile(pattern[:-2])
        for char in text:
            if not allowed.fullmatch(char):
                if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
                    return f"holds the control character U+{ord(char):04X}"
                if char in "/\\":
                    return "holds a path separator (/ or \\)"
                return f"holds the character {quoted(char)}, which is not allowed here"
    return f"does not match the pattern {_cut(pattern, 2 * SHOWN_LENGTH)}"


def _colons(data: bytes) -> int:
    count = data.count(b":")
    if b"\\" in data:  # rare in files we write: only control characters are escaped
        count += data.count(b"\\u003a") + data.count(b"\\u003A")
    return count


class _Repeated(dict[str, Any]):
    """An object whose key `key` appeared more than once."""

    key: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    repeated = _Repeated(result)
    for key, _ in pairs:
        if key in seen:
            repeated.key = key
            break
        seen.add(key)
    return repeated


def _raise_first_duplicate(data: bytes, what: str) -> None:
    """Raise `DuplicateKeyError` for the first repeated key in document order, if any."""
    try:
        document = json.loads(data, object_pairs_hook=_pairs)
    except (RecursionError, ValueError):  # beyond what the standard library parses
        raise JSONError(f"{what} cannot be checked for repeated keys (nested too deeply, "
                        "or numbers too long)") from None
    # Pre-order, so that an outer repeated key is named before one inside its values.
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, _Repeated):
            where = pointer((*path, value.key))
            raise DuplicateKeyError(
                f"{what} holds the key {quoted(value.key)} twice in one object (at "
                f"{quoted(where)}): a JSON reader keeps only one of the two values, so the "
                "file is ambiguous; remove one of them", value.key, where)
        if isinstance(value, dict):
            pending.extend((item, (*path, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((item, (*path, index))
                           for index, item in reversed(list(enumerate(value))))
