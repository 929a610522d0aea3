"""The fast path (yaml_rs) must never change a result: it is used only when it provably
gives what the precise path (libyaml events) gives."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml_rs
from configgen import generate_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config import Config, load_config, loader
from reconciler.config.fast import load_fast
from reconciler.config.scalars import resolve_plain
from reconciler.errors import ConfigError, Problem

TRICKY = [
    "12345", "0123", "007", "0", "1", "-1", "+1", "-0", "+919879000000", "1_000", "12_3",
    "0x1F", "0o17", "0b101", "1e3", "1.5", ".5", "1.", "0.0", ".inf", "-.inf", ".nan", ".NaN",
    "yes", "no", "on", "off", "y", "true", "True", "TRUE", "false", "null", "Null", "~", "",
    "2024-01-01", "2024-01-01T10:00:00Z", "1:20", "fcm:abc", "a[]", "[]", "{}", "u-1", "a b",
    "x@example.com", "apns_token:def",
]


def _precise_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "load_fast", lambda text: None)


def _outcome(path: Path) -> Config | list[Problem]:
    try:
        return load_config([path], workspace="FYTEST0001")
    except ConfigError as error:
        return error.problems


def _render(text: str, style: int) -> str:
    if style == 1:
        return "'" + text.replace("'", "''") + "'"
    if style == 2:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


scalar = st.tuples(st.sampled_from(TRICKY), st.integers(0, 2)).map(lambda p: _render(*p))


@st.composite
def configurations(draw: st.DrawFn) -> str:
    lines = ["workspace: FYTEST0001", "profiles:"]
    for _ in range(draw(st.integers(1, 4))):
        lines.append(f"  {draw(scalar)}:")
        if draw(st.booleans()):
            lines[-1] += " {}"
            continue
        channel = draw(st.sampled_from(["email", "sms", "slack"]))
        lines.append(f"    {channel}: {draw(scalar)}")
        lines.append("    push:")
        lines.append(f"      - {draw(scalar)}")
        lines.append(f"      - token: {draw(scalar)}")
        if draw(st.booleans()):
            lines.append(f"        integration_id: {draw(scalar)}")
        if draw(st.booleans()):
            status = draw(st.sampled_from(["0", "1", "01", "0x1", "true", "1.0", "2", "'1'"]))
            lines.append(f"        status: {status}")
    return "\n".join(lines) + "\n"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=configurations())
def test_fast_path_result_equals_precise_path_result(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with_fast_path = _outcome(path)
    with monkeypatch.context() as patch:
        _precise_only(patch)
        precise = _outcome(path)
    assert with_fast_path == precise


def test_clean_file_with_numeric_ids_takes_the_fast_path() -> None:
    text = generate_config(3).replace("u-000001:", "12345:")
    data = load_fast(text)
    assert data is not None and "12345" in data["profiles"]


@pytest.mark.parametrize(
    "text",
    [
        "profiles:\n  0123: {}\n",  # would be 123 for yaml_rs
        "profiles:\n  1_0: {}\n  5: {}\n",  # 10 for yaml_rs
        "profiles:\n  +5: {}\n",
        "profiles:\n  -0: {}\n  u: {}\n",
        "profiles:\n  0x1F: {}\n",
        "profiles:\n  1: {}\n  '1': {}\n",  # one id, declared twice
        "profiles: {1: {}, 2: {}}\n",  # a flow mapping hides its keys from the scan
        "profiles:\n  u-1: {sms: !!str 12}\n",
        "profiles:\n  u-1: &a {}\n  u-2: *a\n",
        "profiles:\n  u-1: {<<: {}}\n",
        "%YAML 1.2\n---\nprofiles: {}\n",
        "profiles:\n  ? u-1\n  : {}\n",
        "profiles:\n  u-1: {email: \"a\u2028b\"}\n",
        "profiles: {}\n---\nprofiles: {}\n",
        "- profiles\n",
        "profiles:\n  true: {}\n",
        '{"profiles": {"u-1":&p {}, "u-2":*p}}\n',  # an alias right after a JSON-like key
        "{profiles: {u\r\n-1: {}}}\n",  # a key over two lines: yaml_rs takes "u -1"
        "\t{profiles: {}}\n",  # a tab where indentation stands: libyaml refuses it
        "profiles:\n \tu-1: {}\n",
    ],
)
def test_features_where_the_parsers_may_differ_take_the_precise_path(text: str) -> None:
    assert load_fast(text) is None


def test_the_ascii_guard_tests_the_same_characters_as_the_regex() -> None:
    from reconciler.config import fast

    regex = bytes(code for code in range(128) if fast._DISAGREEING_CHARACTERS.match(chr(code)))
    assert regex == fast._DISAGREEING_ASCII
    for code in regex:
        assert fast._suspicious(f"a: b{chr(code)}c\n"), code
    assert not fast._suspicious("a: b\tc\r\n")


def test_every_non_text_form_of_the_resolver_is_non_text_for_yaml_rs_too() -> None:
    # The fast path relies on this direction: a value that yaml_rs reads as text is text
    # for the precise path too.
    forms = [
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
        "0", "-0", "+0", "0123", "+12", "-12", "0o17", "0x1F", "0xff", "1.", ".5", "-.5",
        "+1.5", "1e3", "1E3", "1e-3", "1.5e+3", "-1.5E3", ".5e2", "1.e2", ".inf", "-.Inf",
        "+.INF", ".nan", ".NaN", ".NAN", "99999999999999999999999",
    ]
    for form in forms:
        value = resolve_plain(form)
        assert not isinstance(value, str), form
        fast = yaml_rs.loads(f"v: {form}", parse_datetime=False)["v"]
        assert not isinstance(fast, str), form
        assert fast == value or (math.isnan(value) and math.isnan(fast)), form


@pytest.mark.parametrize(
    "text",
    ["yes", "no", "on", "off", "2024-01-01", "1:20", "1_000", "0b101", "+0x1", ".nAn", "u-1"],
)
def test_forms_outside_the_yaml_1_2_core_schema_are_text(text: str) -> None:
    assert resolve_plain(text) == text


def test_plain_scalar_resolution_follows_the_core_schema() -> None:
    assert resolve_plain("") is None
    assert resolve_plain("0123") == 123
    assert resolve_plain("0o17") == 15
    assert resolve_plain("0x1F") == 31
    assert resolve_plain("-.inf") == -math.inf
    assert resolve_plain("TRUE") is True
