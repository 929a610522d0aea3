"""Fuzzing the configuration loader: any text loads, or is a ConfigError naming the file.

Generated documents are configuration-shaped (so that they reach the semantic checks) with
hostile leaves and keys: huge integers, NULs and other control characters, separators,
surrogate-free Unicode, long texts, YAML 1.1 and 1.2 scalar forms, anchors and aliases,
tags, merge keys, duplicate keys, keys that are not text, flow and block layouts, block
scalars; then raw fragments (BOMs, directives, document markers, brackets, indicators) are
spliced in at random places. Bytes that are not UTF-8 are tried too.

The property: `load_config` returns a Config whose texts keep the limits, or raises a
ConfigError whose every problem names the file and a line and column (or the whole file,
for the few problems that concern it all), with no control character in its message. And
the fast path never changes the outcome.

The number of examples comes from the hypothesis profile (tests/conftest.py):
    HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz_*.py
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.config import Config, load_config, loader
from reconciler.config.limits import MAX_DISTINCT_ID_LENGTH, MAX_VALUE_LENGTH
from reconciler.errors import ConfigError, Problem
from reconciler.model import CHANNELS

WORKSPACE = "FYFUZZ0001"
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
WHOLE_FILE = ("the file is empty", "cannot read file", "the file is larger")

TRICKY = [
    "", "~", "null", "NULL", "true", "False", "yes", "no", "on", "0", "-0", "+1", "0123",
    "0x1F", "0o17", "0b101", "1_000", "1e3", ".5", "1.", ".inf", "-.Inf", ".nan", "12345",
    "+919879000000", "2024-01-01", "1:20", "a@b.c", "fcm:abc", "-", "?", ":", "#", "!", "&",
    "*", "|", ">", "%", "@", "`", "<<", "---", "...", "u-1", " lead", "trail ", "a: b",
    "a #b", "[a]", "{a: b}", "'q'", '"q"', "\\", "live", "test", "token", "status",
]
CONTROLS = [chr(code) for code in (*range(0x20), 0x7F, 0x85, 0x9B, 0xA0, 0x200B, 0x2028,
                                   0x2029, 0xFEFF, 0xFFFE)]
FRAGMENTS = [
    "\x00", "\x01", "\x1b[2J", "\t", "\r", "\r\n", "\n", "\ufeff", "\u2028", "\x85", "\ud7ff",
    "---\n", "--- ", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "&a ", "*a", "*a ",
    "!!int ", "!!str ", "!<%00> ", "!x ", "? ", ": ", ":", "- ", "{", "}", "[", "]", ",",
    "#", "'", '"', "\\", "<<: ", "|\n", ">-\n", "  ", "\n  ", "\n- ", "9" * 4400, "x" * 2100,
    "[" * 600, "{a: " * 50,
]

text_leaves = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=12),
    st.text(st.sampled_from(CONTROLS + list("ab:-' \"\\")), min_size=1, max_size=6),
    st.integers(4200, 4500).map(lambda digits: "9" * digits),  # past int("...")'s limit
    st.integers(0, 3).map(lambda extra: "u" * (MAX_DISTINCT_ID_LENGTH - 1 + extra)),
    st.integers(0, 3).map(lambda extra: "v" * (MAX_VALUE_LENGTH - 1 + extra)),
)


@dataclass
class Node:
    """A YAML node to render: a scalar (`text`), a list (`items`) or a mapping (`pairs`)."""

    kind: str  # "scalar", "list", "map", "alias"
    text: str = ""
    style: str = "plain"  # plain, single, double, literal
    items: list[Node] = field(default_factory=list)
    pairs: list[tuple[Node, Node]] = field(default_factory=list)
    anchor: str | None = None
    tag: str | None = None


@st.composite
def scalars(draw: st.DrawFn, leaves: st.SearchStrategy[str] = text_leaves) -> Node:
    node = Node("scalar", draw(leaves), draw(st.sampled_from(
        ["plain", "plain", "single", "double", "double", "literal"])))
    if draw(st.integers(0, 9)) == 0:
        node.tag = draw(st.sampled_from(["!!str", "!!int", "!!binary", "!", "!x", "!<%00>"]))
    return node


def _with_properties(draw: st.DrawFn, node: Node) -> Node:
    roll = draw(st.integers(0, 11))
    if roll == 0:
        node.anchor = draw(st.sampled_from(["a", "b"]))
    elif roll == 1:
        return Node("alias", draw(st.sampled_from(["a", "b", "nowhere"])))
    return node


nodes = st.recursive(
    scalars(),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: Node("list", items=items)),
        st.lists(st.tuples(scalars(), children), max_size=4).map(
            lambda pairs: Node("map", pairs=pairs)),
    ),
    max_leaves=12,
)
keys = st.one_of(
    scalars(st.sampled_from(["u-1", "u-2", "1", "01", "true", "null", "", "u-1 "])),
    scalars(text_leaves),
    nodes,  # a key that is a list or a mapping
)


@st.composite
def tokens(draw: st.DrawFn) -> Node:
    if draw(st.booleans()):
        return _with_properties(draw, draw(scalars()))
    names = st.sampled_from(["token", "integration_id", "status", "integration", "tokn"])
    pairs = [(Node("scalar", draw(names)), _with_properties(draw, draw(scalars())))
             for _ in range(draw(st.integers(0, 4)))]
    return _with_properties(draw, Node("map", pairs=pairs))


@st.composite
def profiles(draw: st.DrawFn) -> Node:
    pairs = []
    for _ in range(draw(st.integers(0, 4))):
        channel = draw(st.one_of(st.sampled_from(CHANNELS), st.sampled_from(TRICKY)))
        if channel in ("push", "inapp") and draw(st.booleans()):
            value = Node("list", items=draw(st.lists(tokens(), max_size=4)))
        else:
            value = draw(st.one_of(scalars(), nodes))
        pairs.append((Node("scalar", channel), _with_properties(draw, value)))
    return _with_properties(draw, Node("map", pairs=pairs))


@st.composite
def documents(draw: st.DrawFn) -> Node:
    pairs: list[tuple[Node, Node]] = []
    if draw(st.booleans()):
        pairs.append((Node("scalar", "workspace"), draw(st.one_of(
            st.just(Node("scalar", WORKSPACE)), scalars()))))
    if draw(st.integers(0, 3)) == 0:
        pairs.append((Node("scalar", "version"), draw(scalars(
            st.sampled_from(["live", "test", "prod", "", "1", "9" * 4400])))))
    ids = [(_with_properties(draw, draw(keys)), draw(profiles()))
           for _ in range(draw(st.integers(0, 5)))]
    pairs.append((Node("scalar", "profiles"), _with_properties(
        draw, Node("map", pairs=ids))))
    if draw(st.integers(0, 4)) == 0:
        pairs.append((draw(keys), draw(nodes)))
    order = draw(st.permutations(pairs))
    return Node("map", pairs=list(order))


def _double_quoted(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif " " <= char <= "~":
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _properties(node: Node) -> str:
    return "".join(f"{part} " for part in (node.tag, node.anchor and "&" + node.anchor)
                   if part)


def _flow(node: Node) -> str:
    if node.kind == "alias":
        return "*" + node.text
    if node.kind == "list":
        return _properties(node) + "[" + ", ".join(map(_flow, node.items)) + "]"
    if node.kind == "map":
        body = ", ".join(f"{_flow(key)}: {_flow(value)}" for key, value in node.pairs)
        return _properties(node) + "{" + body + "}"
    style = "double" if node.style == "literal" else node.style
    if style == "single":
        return _properties(node) + "'" + node.text.replace("'", "''") + "'"
    if style == "double":
        return _properties(node) + _double_quoted(node.text)
    return _properties(node) + node.text


def _block(node: Node, indent: int) -> str:
    """`node` as the value after "key:" or "-", in block layout where it is a collection."""
    pad = " " * indent
    if node.kind == "map" and node.pairs:
        lines = []
        for key, value in node.pairs:
            key_text = _flow(key)
            if key.kind != "scalar" or "\n" in key_text:
                lines.append(f"{pad}? {key_text}\n{pad}:{_block(value, indent + 2)}")
            else:
                lines.append(f"{pad}{key_text}:{_block(value, indent + 2)}")
        return (" " + _properties(node)).rstrip() + "\n" + "\n".join(lines)
    if node.kind == "list" and node.items:
        lines = [f"{pad}-{_block(item, indent + 2)}" for item in node.items]
        return (" " + _properties(node)).rstrip() + "\n" + "\n".join(lines)
    if node.kind == "scalar" and node.style == "literal":
        body = "\n".join(pad + line for line in node.text.split("\n"))
        return f" {_properties(node)}|\n{body}"
    return " " + _flow(node)


@st.composite
def hostile_texts(draw: st.DrawFn) -> str:
    document = draw(documents())
    if draw(st.booleans()):
        text = _block(document, 0).removeprefix("\n").lstrip(" ") + "\n"
    else:
        text = _flow(document) + "\n"
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]
    return text


def _outcome(path: Path, workspace: str | None) -> Config | list[Problem]:
    try:
        return load_config([path], workspace=workspace)
    except ConfigError as error:
        return error.problems


def check_loads_or_names_the_file(data: bytes, workspace: str | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "profiles.yaml"
        path.write_bytes(data)
        outcome = _outcome(path, workspace)
        if isinstance(outcome, Config):
            assert outcome.workspace and not FORBIDDEN.search(outcome.workspace)
            for distinct_id in outcome.profiles:
                assert 0 < len(distinct_id) <= MAX_DISTINCT_ID_LENGTH
                assert not FORBIDDEN.search(distinct_id)
        else:
            assert outcome, "a ConfigError lists at least one problem"
            for problem in outcome:
                assert problem.file == str(path), problem
                if (problem.line, problem.column) == (0, 0):
                    whole_file = problem.message.startswith(WHOLE_FILE)
                    assert whole_file or problem.message.startswith("no workspace"), problem
                else:
                    assert problem.line >= 1 and problem.column >= 1, problem
                assert not FORBIDDEN.search(problem.message), problem
        # The fast path only ever saves time: the precise path alone gives the same result.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loader, "load_fast", lambda text: None)
            assert _outcome(path, workspace) == outcome


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=hostile_texts(), workspace=st.sampled_from([None, WORKSPACE]))
# A flow mapping continued on another line inside a nested one: yaml_rs read "u -1" as a key.
@example(text="{profiles: {u-1: {}, u\r\n-1: {}}}\n", workspace=None)
# A tab where indentation stands: libyaml refused it, yaml_rs read the document.
@example(text="\t{profiles: {}}\n", workspace=None)
def test_hostile_documents_load_or_name_the_file(text: str, workspace: str | None) -> None:
    check_loads_or_names_the_file(text.encode("utf-8"), workspace)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200), prefix=st.sampled_from(
    [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"workspace: W\nprofiles:\n  u-1: "]))
def test_arbitrary_bytes_load_or_name_the_file(data: bytes, prefix: bytes) -> None:
    check_loads_or_names_the_file(prefix + data, WORKSPACE)
