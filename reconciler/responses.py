"""The shape of the API's answers: the one place that judges a body against the response schema.

`schemas/fyno-responses.schema.json` says what a GET-profile body (`profile`) and a write or
error body (`envelope`) may look like; this module decodes bodies and reports, in one short
line, the first thing wrong with one. It judges shape only: what a status code means is the
caller's business (`answers.py`).

Messages name a JSON path and JSON types, never a value: a body holds personal data (phone
numbers, emails, tokens) and its problems end up in logs and reports.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from importlib import resources
from typing import Any, Final

import jsonschema_rs
import orjson

_SCHEMA_FILE: Final = "schemas/fyno-responses.schema.json"
_MORE_LIMIT: Final = 100  # errors counted past the first; a huge malformed body stays cheap
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TYPE_NAMES: Final = {
    "object": "an object", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "a boolean", "null": "null",
}


def decode_json(content: bytes) -> tuple[object | None, str | None]:
    """`(value, None)` for a JSON body, else `(None, "not JSON: <why>")`; never raises.

    A JSON `null` body decodes as `(None, None)`: the second item tells the cases apart.
    """
    try:
        return orjson.loads(content), None
    except orjson.JSONDecodeError as error:
        return None, f"not JSON: {_why_not_json(content, error)}"


def profile_problem(body: object) -> str | None:
    """None when `body` is a GET-profile body; else what is wrong with it, path first."""
    return _problem("profile", body)


def envelope_problem(body: object) -> str | None:
    """None when `body` is a `{"_message", "status"}` envelope; else what is wrong with it."""
    return _problem("envelope", body)


def _why_not_json(content: bytes, error: orjson.JSONDecodeError) -> str:
    """Why a body is not JSON, without quoting it (a proxy's page may echo the request)."""
    if not content.strip():
        return "the body is empty" if not content else "the body is only white space"
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"the body is not UTF-8 text (invalid byte at offset {bad.start})"
    if content.lstrip()[:1] == b"<":
        return f"the body looks like an HTML or XML page ({len(content)} bytes)"
    return f"{error.msg} (at offset {error.pos} of {len(content)} bytes)"


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("reconciler").joinpath(_SCHEMA_FILE).read_text("utf-8")
    document: dict[str, Any] = orjson.loads(text)
    return document


def _root(name: str) -> dict[str, Any]:
    """The schema document, entered at `$defs/<name>`."""
    return {**_schema(), "$ref": f"#/$defs/{name}"}


@functools.cache
def _validator(name: str) -> Any:
    """The validator of `$defs/<name>`, compiled on first use and kept."""
    return jsonschema_rs.validator_for(_root(name))


def _problem(name: str, body: object) -> str | None:
    validator = _validator(name)
    try:
        if validator.is_valid(body):
            return None
        errors = list(itertools.islice(validator.iter_errors(body), _MORE_LIMIT + 1))
    except (ValueError, TypeError, OverflowError) as error:
        return f"the body is not JSON data ({type(error).__name__})"
    if not errors:  # is_valid and iter_errors disagree: never seen, but never crash
        return "the body does not match the response schema"
    first = errors[0]
    message = _message(name, first)
    elsewhere = {tuple(error.instance_path) for error in errors[1:]}
    elsewhere.discard(tuple(first.instance_path))
    if elsewhere:
        count = f"{len(elsewhere)}+" if len(errors) > _MORE_LIMIT else str(len(elsewhere))
        message += f" (and problems at {count} more place{'s' if len(elsewhere) > 1 else ''})"
    return message


def _message(name: str, error: Any) -> str:
    """One schema error in words: where, what was expected, and the JSON type found."""
    path = list(error.instance_path)
    kind = type(error.kind).__name__
    if kind == "Required":
        return f"{_where([*path, error.kind.property])} is missing"
    try:
        expected = _expected(_node(_root(name), list(error.evaluation_path)[:-1]))
    except (AttributeError, KeyError, IndexError, TypeError):  # a path it cannot follow
        return f"{_where(path)} is not valid here ({kind}: {_found(error.instance, kind)})"
    return f"{_where(path)} must be {expected}, not {_found(error.instance, kind)}"


def _node(root: dict[str, Any], steps: list[str | int]) -> Any:
    """The schema node an error's evaluation path leads to (its last step is the keyword)."""
    node: Any = root
    for step in steps:
        node = _resolve(node["$ref"]) if step == "$ref" else node[step]
    return node


def _resolve(ref: str) -> Any:
    """A local reference such as `#/$defs/token`: the only kind the schema uses."""
    node: Any = _schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _expected(node: Any) -> str:
    """What a schema node allows, in words."""
    if not isinstance(node, dict):
        return "something else"
    if "enum" in node:
        return _either([json.dumps(value) for value in node["enum"]])
    types = node.get("type", [])
    words = []
    for name in [types] if isinstance(types, str) else types:
        if name == "string" and node.get("maxLength") == 0:
            words.append("an empty string")
        elif name == "string" and node.get("minLength", 0) >= 1:
            words.append("a non-empty string")
        elif name == "array" and node.get("maxItems") == 0:
            words.append("an empty list")
        else:
            words.append(_TYPE_NAMES.get(name, name))
    return _either(words) if words else "something else"


def _found(value: object, kind: str) -> str:
    """The JSON type of `value`, in words, and only as precise as the error needs."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "another number" if kind == "Enum" else "a number"
    if isinstance(value, str):
        if not value:
            return "an empty string"
        return "a non-empty string" if kind == "MaxLength" else "a string"
    if isinstance(value, list):
        if not value:
            return "an empty list"
        return "a non-empty list" if kind == "MaxItems" else "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _where(path: list[str | int]) -> str:
    """A JSON path as `channel.push[0].token`; the whole body is "the body"."""
    if not path:
        return "the body"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _NAME.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text
