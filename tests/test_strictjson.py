"""Strict reading of the JSON files the tool reads back: a repeated key is refused wherever it
is, nothing else is, and schema problems name the place and never the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import strictjson
from reconciler.audit import AuditContext, AuditLedger, read_records
from reconciler.audit.ledger import ledger_path
from reconciler.errors import AuditError
from reconciler.strictjson import DuplicateKeyError, JSONError

# --- repeated keys ----------------------------------------------------------------------------


def test_a_repeated_top_level_key_is_refused_naming_the_file_and_the_key() -> None:
    data = b'{"serial": 1, "profiles": {"u-1": {}}, "profiles": {}}'
    with pytest.raises(DuplicateKeyError) as raised:
        strictjson.loads(data, what="state state/FY1-live.json")
    assert str(raised.value).startswith(
        'state state/FY1-live.json holds the key "profiles" twice in one object (at '
        '"/profiles"): a JSON reader keeps only one of the two values')
    assert (raised.value.key, raised.value.pointer) == ("profiles", "/profiles")


@pytest.mark.parametrize(("data", "where"), [
    (b'{"p": {"u-1": {"push": [{"token": "a", "status": 1, "status": 0}]}}}',
     "/p/u-1/push/0/status"),
    (b'[1, [2, {"a": {"b": 1, "b": 1}}]]', "/1/1/a/b"),
    # An escaped key is the same key: \u0070 is "p".
    (b'{"profiles": 1, "\\u0070rofiles": 2}', "/profiles"),
    (b'{"a/b~c": {"x": 1}, "a/b~c": 2}', "/a~1b~0c"),
    (b'{"u\\u0000": 1, "u\\u0000": 2}', "/u\x00"),
    (b'{"\xc3\xbc-1": 1, "\xc3\xbc-1": 2}', "/\u00fc-1"),
    # The outer repeated key is named first, even though the inner one closes first.
    (b'{"a": {"b": 1, "b": 2}, "a": 3}', "/a"),
    # A colon escaped as \u003a, which could balance a dropped member's colon.
    (b'{"k\\u003a": 1, "k\\u003a": 2, "x": "a:b"}', "/k:"),
])
def test_a_repeated_key_is_found_at_any_depth(data: bytes, where: str) -> None:
    with pytest.raises(DuplicateKeyError) as raised:
        strictjson.loads(data, what="f")
    assert raised.value.pointer == where


@pytest.mark.parametrize("data", [
    b'{"a:b": "c:d", "e": ":::", "f": {"g": [":", {"h": "::"}]}}',
    b'{"k\\u003a": 1, "x": "a:b"}',  # escaped colons: the fast check counts them
    b'{"k\\\\u003a": 1}',  # an escaped backslash before "u003a": no colon at all
    b'{"a": 1, "b": {"a": 1}, "c": [{"a": 1}, {"a": 2}]}',  # equal keys in other objects
    b'{"\xc3\xbc": "\xe7\x94\xa8\xe6\x88\xb7", "\xf0\x9f\x8e\x89": 1}',
    b'{}', b'[]', b'"x:y"', b'12', b'null',
])
def test_documents_without_a_repeated_key_read_as_json_says(data: bytes) -> None:
    assert strictjson.loads(data, what="f") == json.loads(data)


@pytest.mark.parametrize(("data", "message"), [
    (b'{"a": 1', "f is not valid JSON: unexpected end of data at line 1 column 8"),
    (b"", "f is not valid JSON"),
    (b"\xff{}", "f is not valid JSON"),
    (b'{"a": NaN}', "f is not valid JSON"),
    (b'"\\ud800"', "f is not valid JSON: no low surrogate"),
])
def test_invalid_json_is_a_json_error_naming_the_input(data: bytes, message: str) -> None:
    with pytest.raises(JSONError) as raised:
        strictjson.loads(data, what="f")
    assert not isinstance(raised.value, DuplicateKeyError)
    assert str(raised.value).startswith(message)


# Random documents written with repeated keys or not, compact or indented, with colons and
# escapes in keys and strings: `loads` refuses exactly those with a repeated key.
_keys = st.sampled_from(["a", "b", "a:", ":", "profiles", "u\u00fc", "k\\u003a"]) | st.text(
    st.sampled_from("ab:\\\"\u00fc\x00"), max_size=4)
_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(
    st.sampled_from("x:\\\"\u00fc\n"), max_size=4)
_trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3).map(lambda items: ("list", items))
    | st.lists(st.tuples(_keys, children), max_size=4).map(lambda pairs: ("object", pairs)),
    max_leaves=12,
)


def _written(tree: Any, ascii_only: bool, indent: bool) -> str:
    space = "\n  " if indent else ""
    if isinstance(tree, tuple) and tree[0] == "list":
        items = (_written(item, ascii_only, indent) for item in tree[1])
        return "[" + ("," + space).join(items) + "]"
    if isinstance(tree, tuple):
        return "{" + ("," + space).join(
            json.dumps(key, ensure_ascii=ascii_only) + ": " + _written(value, ascii_only, indent)
            for key, value in tree[1]) + "}"
    return json.dumps(tree, ensure_ascii=ascii_only)


def _repeats(tree: Any) -> bool:
    if isinstance(tree, tuple) and tree[0] == "list":
        return any(_repeats(item) for item in tree[1])
    if isinstance(tree, tuple):
        keys = [key for key, _ in tree[1]]
        return len(set(keys)) < len(keys) or any(_repeats(value) for _, value in tree[1])
    return False


@given(_trees, st.booleans(), st.booleans())
def test_loads_refuses_exactly_the_documents_with_a_repeated_key(
        tree: Any, ascii_only: bool, indent: bool) -> None:
    data = _written(tree, ascii_only, indent).encode()
    if _repeats(tree):
        with pytest.raises(DuplicateKeyError):
            strictjson.loads(data, what="f")
    else:
        assert strictjson.loads(data, what="f") == json.loads(data)


# --- schema problems --------------------------------------------------------------------------

def test_schema_problems_name_the_place_and_what_is_wrong_but_never_the_value() -> None:
    checker = strictjson.validator("state.schema.json")
    document = {
        "format_version": 1, "lineage": "0b7c2a4e-5d1f-4c3b-9a8e-6f2d1c0b9a87",
        "serial": 2**53, "workspace": "FY1", "version": "live",
        "profiles": {"u-1": {"sms": 919879000000, "email": "",
                             "push": [{"token": "secret-token", "status": 7}]},
                     "u\x00": {}},
        "missing": ["alice@example.com", "alice@example.com"],
    }
    problems = strictjson.schema_problems(checker, document)
    assert problems == [
        "at /serial: an integer above the maximum 9007199254740991",
        "at /profiles/u-1/sms: an integer where a string is expected",
        "at /profiles/u-1/email: an empty string",
        "at /profiles/u-1/push/0/status: not one of 0, 1",
        'at /profiles: the key "u\\u0000" is not allowed: holds the control character U+0000',
        "(further problems not shown)",
    ]
    assert not any(secret in problem for problem in problems
                   for secret in ("919879000000", "secret-token", "alice@"))


def test_a_valid_document_has_no_schema_problems() -> None:
    checker = strictjson.validator("state.schema.json")
    assert strictjson.schema_problems(checker, {
        "format_version": 1, "lineage": "0b7c2a4e-5d1f-4c3b-9a8e-6f2d1c0b9a87", "serial": 1,
        "workspace": "FY1", "version": "live",
        "profiles": {"\u00fc-\u7528\u6237": {"push": [{"token": "t", "integration_id": None,
                                                       "status": 0}]}}}) == []


# --- the ledger's records, read back ----------------------------------------------------------

def _ledger(tmp_path: Path) -> Path:
    context = AuditContext(actor="ci-bot", commit=None, plan_id="p-1", workspace="FY1",
                           version="live")
    path = ledger_path(tmp_path)
    with AuditLedger(path) as book:
        for email in ("alice@example.com", "carol@example.com"):
            book.append(context.entry("u-1", "patch_channel", request={"channel": {}},
                                      status=200, message="ok", attempts=1,
                                      before={}, after={"email": email}))
    return path


def test_reading_the_ledger_refuses_a_record_with_a_repeated_key(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    # A forged value in front of the real one: orjson would keep the last, the real one, and
    # the record's hash would still match; a reader of the file sees the forged one first.
    lines[1] = lines[1].replace(b',"operation":', b',"operation":"erase","operation":', 1)
    path.write_bytes(b"".join(lines))
    with pytest.raises(AuditError) as raised:
        list(read_records(path))
    assert str(raised.value).startswith(f'{path}:2 holds the key "operation" twice in one object')


def test_appending_refuses_to_chain_to_a_last_record_with_a_repeated_key(
        tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    content = path.read_bytes().replace(b'{"actor":', b'{"actor":"x","actor":')
    path.write_bytes(content)
    context = AuditContext(actor="ci-bot", commit=None, plan_id="p-2", workspace="FY1",
                           version="live")
    with AuditLedger(path) as book, pytest.raises(AuditError) as raised:
        book.check()
    assert f"{path}:2: the last line is not an audit record (it holds the key \"actor\" " \
        "twice" in str(raised.value)
    with AuditLedger(path) as book, pytest.raises(AuditError):
        book.append(context.entry("u-1", "patch_channel", request={}, status=200,
                                  message="ok", attempts=1, before={}, after={}))
    assert path.read_bytes() == content


def test_a_torn_last_line_with_a_repeated_key_is_not_taken_for_a_whole_record(
        tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    content = path.read_bytes()
    last = content.splitlines()[-1].replace(b'{"actor":', b'{"actor":"x","actor":')
    content = content[:content.rindex(b"\n", 0, len(content) - 1) + 1] + last  # no newline
    path.write_bytes(content)
    context = AuditContext(actor="ci-bot", commit=None, plan_id="p-2", workspace="FY1",
                           version="live")
    with AuditLedger(path) as book, pytest.raises(AuditError) as raised:
        book.append(context.entry("u-1", "patch_channel", request={}, status=200,
                                  message="ok", attempts=1, before={}, after={}))
    assert 'holds the key "actor" twice' in str(raised.value)
    assert path.read_bytes() == content
