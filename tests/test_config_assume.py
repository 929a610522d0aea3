"""A large configuration taken for its assumed meaning while the checks confirm it beside:
the same configs, the same problems, as the slow way; nothing returned or raised before the
checks have spoken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from configgen import generate_config
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.beside import PROCESSES_VARIABLE
from reconciler.config import Config, load_configs, load_configs_then
from reconciler.config import loader as loader_module
from reconciler.config.assume import assumed_document, assumed_text, confirms
from reconciler.config.checks import check_document
from reconciler.errors import ConfigError, StateError


@pytest.fixture(autouse=True)
def _assume_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROCESSES_VARIABLE, raising=False)
    monkeypatch.setattr(loader_module, "ASSUME_FROM", 0)


def the_slow_way(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setenv(PROCESSES_VARIABLE, "1")
        try:
            return load_configs(paths)
        except ConfigError as error:
            return [str(problem) for problem in error.problems]


def loaded(paths: list[Path], calls: list[tuple[Config, ...]]) -> Any:
    def meanwhile(configs: tuple[Config, ...]) -> int:
        calls.append(configs)
        return len(calls)

    try:
        configs, outcome = load_configs_then(paths, meanwhile)
    except ConfigError as error:
        return [str(problem) for problem in error.problems]
    assert outcome == len(calls)  # what the last run of `meanwhile` gave
    assert calls[-1] == configs
    return configs


def write(tmp_path: Path, text: str, name: str = "profiles.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_clean_configuration_is_confirmed_and_meanwhile_runs_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, generate_config(50))
    assert confirms(path.read_text())
    calls: list[tuple[Config, ...]] = []
    configs = loaded([path], calls)
    assert len(calls) == 1
    assert configs == the_slow_way([path], monkeypatch)
    assert configs[0].digest == the_slow_way([path], monkeypatch)[0].digest


@pytest.mark.parametrize(("name", "text"), [
    ("a phone the checks normalise", 'profiles:\n  u-1:\n    sms: "+91 98790 00000"\n'),
    ("an address the checks refuse", "profiles:\n  u-1:\n    email: not-an-address\n"),
    ("a repeated token", "profiles:\n  u-1:\n    push: [a1, a1]\n"),
    ("an unprintable token", 'profiles:\n  u-1:\n    push: ["a\\u00ad1"]\n'),
    ("a token status out of range", "profiles:\n  u-1:\n    push: [{token: a, status: 3}]\n"),
    ("an alias, read only the precise way", "profiles:\n  u-1: &x {email: a@b.io}\n"
                                            "  u-2: *x\n"),
    ("ownership, never assumed", "ownership: owned\nprofiles:\n  u-1: {email: a@b.io}\n"),
    ("a removal, never assumed", "profiles:\n  u-1:\n    remove: {email: a@b.io}\n"),
    ("an unknown channel", "profiles:\n  u-1:\n    fax: '123'\n"),
    ("a value that is not text", "profiles:\n  u-1:\n    email: 12\n"),
    ("a workspace the checks refuse", "workspace: nope\nprofiles:\n  u-1: {}\n"),
    ("a null profile", "profiles:\n  u-1:\n"),
])
def test_what_the_checks_would_change_or_refuse_ends_as_the_slow_way_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    path = write(tmp_path, generate_config(20) + text.removeprefix("profiles:\n")
                 if text.startswith("profiles:\n") else text)
    calls: list[tuple[Config, ...]] = []
    assert loaded([path], calls) == the_slow_way([path], monkeypatch), name


def test_files_assumed_and_not_are_merged_as_the_slow_way_merges_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = write(tmp_path, generate_config(30), "a.yaml")
    owned = write(tmp_path, "ownership: owned\nprofiles:\n  x-1: {email: a@b.io}\n", "b.yaml")
    other = write(tmp_path, generate_config(5, workspace="FYOTHER"), "c.yaml")
    twice = write(tmp_path, generate_config(2, start=29), "d.yaml")  # u-000029 again
    for paths in ([clean, owned, other], [clean, twice]):
        calls: list[tuple[Config, ...]] = []
        assert loaded(paths, calls) == the_slow_way(paths, monkeypatch)


def test_an_error_of_meanwhile_waits_for_the_checks(tmp_path: Path) -> None:
    clean = write(tmp_path, generate_config(10))

    def meanwhile(configs: tuple[Config, ...]) -> None:
        raise StateError("the state is locked")

    with pytest.raises(StateError, match="locked"):
        load_configs_then([clean], meanwhile)
    broken = write(tmp_path, generate_config(10) + "  u-x:\n    email: nope\n", "b.yaml")
    with pytest.raises(ConfigError):  # the configuration's problems come first
        load_configs_then([broken], meanwhile)


def test_meanwhile_runs_again_on_the_checked_meaning_when_the_assumption_fails(
        tmp_path: Path) -> None:
    path = write(tmp_path, generate_config(3) + "  u-a: &x {email: a@b.io}\n  u-b: *x\n")
    seen: list[tuple[Config, ...]] = []
    configs, _ = load_configs_then([path], seen.append)
    assert len(seen) == 2 and seen[-1] == configs
    assert configs[0].profiles["u-b"] == configs[0].profiles["u-a"]


def test_with_one_process_nothing_is_assumed(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROCESSES_VARIABLE, "1")
    monkeypatch.setattr(loader_module, "assumed_text", _never)
    path = write(tmp_path, generate_config(10))
    assert load_configs([path])[0].profiles


def _never(text: str) -> None:
    raise AssertionError("nothing is assumed with one process")


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_token = st.one_of(_text, st.fixed_dictionaries(
    {"token": _text}, optional={"integration_id": _text,
                                "status": st.one_of(st.integers(-1, 2), st.booleans())}))
_profile = st.dictionaries(
    st.sampled_from(["sms", "whatsapp", "voice", "email", "slack", "push", "inapp"]),
    st.one_of(_text, st.sampled_from(["+919879000000", "+1 415 555 0100", "a@b.io"]),
              st.lists(_token, max_size=3)),
    max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _profile, max_size=4), st.sampled_from([None, "FY1", "x"]))
def test_an_assumed_meaning_that_the_checks_find_clean_is_the_checked_meaning(
        profiles: dict[str, Any], workspace: str | None) -> None:
    data: dict[str, Any] = {"profiles": profiles}
    if workspace is not None:
        data["workspace"] = workspace
    assumed = assumed_document(data)
    checked = check_document(data)
    if assumed is not None and not checked.findings:
        assert assumed == checked


def test_assumed_text_takes_what_yaml_rs_reads() -> None:
    assumed = assumed_text("profiles:\n  u-1: {email: a@b.io, push: [t1]}\n")
    assert assumed is not None
    assert assumed.profiles["u-1"].channels["email"] == "a@b.io"
    assert assumed_text("profiles: [\n") is None
